"""Artifacts under an ``s3://bucket/prefix`` (extra ``fti[s3]``, boto3).

A put uploads the file and records its sha256 both in the returned reference (which the
registry keeps) and as object metadata; a fetch downloads to the destination and verifies the
sha256 before returning, so a changed or corrupted object never reaches a caller. An upload is a
single PUT (or a multipart upload completed at once): readers see the whole object or nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from fti._internal.s3_location import S3Location
from fti.backends.artifacts import ArtifactRef, sha256_file
from fti.errors import BackendUnavailableError, IntegrityError, NotFoundError, ValidationError

__all__ = ["S3ArtifactStore"]


class S3ArtifactStore:
    """Artifacts as objects under a bucket prefix; credentials from the standard AWS chain."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = S3Location.parse(url)
        self._client: Any = self.location.client()

    @contextmanager
    def _requests(self, what: str) -> Iterator[None]:
        """S3 client errors (unreachable endpoint, missing bucket, denied) as fti errors."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "error")
            raise BackendUnavailableError(
                f"Object storage failed while {what} in {self.location.uri()}: {code}. Check the "
                "bucket, the endpoint and the AWS credentials (fti doctor shows the setup)."
            ) from e
        except (BotoCoreError, Boto3Error) as e:
            raise BackendUnavailableError(
                f"Object storage failed while {what} in {self.location.uri()}: {e}. Check the "
                "endpoint and the AWS credentials (fti doctor shows the setup)."
            ) from e

    def ping(self) -> None:
        """Reach the bucket (for ``fti doctor``); BackendUnavailableError if it cannot."""
        with self._requests("checking the bucket"):
            self._client.head_bucket(Bucket=self.location.bucket)

    def _key(self, key: str) -> str:
        parts = PurePosixPath(key).parts
        if not parts or any(p in ("..", "/") or p.startswith(".") for p in parts):
            raise ValidationError(f"Invalid artifact key {key!r}: use a relative path.")
        return self.location.key(*parts)

    def put(self, key: str, source: Path) -> ArtifactRef:
        object_key = self._key(key)
        digest = sha256_file(source)
        size = source.stat().st_size
        with self._requests(f"storing artifact {key!r}"):
            self._client.upload_file(
                str(source),
                self.location.bucket,
                object_key,
                ExtraArgs={"Metadata": {"sha256": digest}},
            )
            head = self._client.head_object(Bucket=self.location.bucket, Key=object_key)
        if int(head["ContentLength"]) != size:
            raise IntegrityError(
                f"Artifact {key!r}: uploaded {size} bytes but the server holds "
                f"{head['ContentLength']}. Retry the upload."
            )
        return ArtifactRef(key=key, sha256=digest, size=size)

    def fetch(self, ref: ArtifactRef, dest: Path) -> Path:
        from botocore.exceptions import ClientError

        object_key = self._key(ref.key)
        with self._requests(f"fetching artifact {ref.key!r}"):
            try:
                self._client.download_file(self.location.bucket, object_key, str(dest))
            except ClientError as e:
                code = str(e.response.get("Error", {}).get("Code"))
                if code in ("404", "NoSuchKey", "NotFound"):
                    dest.unlink(missing_ok=True)
                    raise NotFoundError(
                        f"Artifact {ref.key!r} is missing from {self.location.uri()}."
                    ) from None
                raise
        digest = sha256_file(dest)
        if digest != ref.sha256:
            dest.unlink(missing_ok=True)
            raise IntegrityError(
                f"Artifact {ref.key!r} failed its integrity check: sha256 {digest} != recorded "
                f"{ref.sha256}. The object was changed or corrupted; re-register it."
            )
        return dest

    def delete(self, key: str) -> None:
        # Deleting a missing object succeeds on S3, as unlink(missing_ok=True) does locally.
        object_key = self._key(key)
        with self._requests(f"deleting artifact {key!r}"):
            self._client.delete_object(Bucket=self.location.bucket, Key=object_key)
