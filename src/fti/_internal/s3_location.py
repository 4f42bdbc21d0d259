"""Where an ``s3://bucket/prefix`` store lives and how to reach it (endpoint, region, style).

Options come from the URL's query string, then environment variables, then defaults:

================  ======================  ===========================================
query parameter   environment variable    meaning
================  ======================  ===========================================
``endpoint``      ``FTI_S3_ENDPOINT``     an S3-compatible server, e.g. ``http://127.0.0.1:9000``
``region``        ``AWS_REGION``,         the bucket's region (default ``us-east-1``)
                  ``AWS_DEFAULT_REGION``
``path_style``    ``FTI_S3_PATH_STYLE``   ``true``: ``endpoint/bucket/key`` addressing
``allow_http``    ``FTI_S3_ALLOW_HTTP``   plain HTTP (default: true iff the endpoint is http)
``commit_lock``   ``FTI_S3_COMMIT_LOCK``  ``conditional`` (default) or ``registry``
================  ======================  ===========================================

Credentials never come from the URL: they come from the standard AWS chain (environment
variables, shared config/credentials files with ``AWS_PROFILE``, instance roles), read by
deltalake and boto3 themselves. This module only says *where* they came from.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlparse

from fti.errors import ConfigError, MissingDependencyError, NotFoundError

__all__ = ["S3Location", "credential_source", "is_s3", "object_facts"]

_OPTIONS = ("endpoint", "region", "path_style", "allow_http", "commit_lock")
_SECRET_WORDS = ("secret", "password", "token", "access_key", "key_id", "credential")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

CommitLock = Literal["conditional", "registry"]


def is_s3(url: str) -> bool:
    """True for an ``s3://`` URL."""
    return urlparse(url).scheme == "s3"


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"S3 option {name}={value!r} is not a boolean. Use true or false.")


@dataclass(frozen=True)
class S3Location:
    """A bucket, a key prefix and the connection options of an S3-compatible server."""

    bucket: str
    prefix: str
    endpoint: str | None
    region: str
    path_style: bool
    allow_http: bool
    commit_lock: CommitLock

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Read ``s3://bucket/prefix?option=value`` plus the ``FTI_S3_*`` / ``AWS_*`` env vars."""
        parts = urlparse(url)
        if parts.scheme != "s3":
            raise ConfigError(f"{url!r} is not an s3:// URL. Expected s3://bucket/prefix.")
        if parts.username or parts.password or "@" in parts.netloc:
            raise ConfigError(
                "An s3:// URL must not carry credentials. Remove them from the URL and set "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE instead."
            )
        if not parts.netloc:
            raise ConfigError(f"{url!r} names no bucket. Expected s3://bucket/prefix.")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        secret = [k for k in query if any(w in k.lower() for w in _SECRET_WORDS)]
        if secret:
            raise ConfigError(
                f"An s3:// URL must not carry credentials (found {sorted(secret)}). Use the "
                "AWS environment variables or a profile (AWS_PROFILE) instead."
            )
        unknown = sorted(set(query) - set(_OPTIONS))
        if unknown:
            raise ConfigError(
                f"Unknown S3 option(s) {unknown} in {parts.scheme}://{parts.netloc}{parts.path}. "
                f"Known options: {list(_OPTIONS)}."
            )
        env = os.environ
        endpoint = query.get("endpoint") or env.get("FTI_S3_ENDPOINT") or None
        region = (
            query.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        ) or "us-east-1"
        path_style = _flag(
            "path_style", query.get("path_style") or env.get("FTI_S3_PATH_STYLE") or "false"
        )
        http_default = "true" if endpoint and endpoint.startswith("http://") else "false"
        allow_http = _flag(
            "allow_http", query.get("allow_http") or env.get("FTI_S3_ALLOW_HTTP") or http_default
        )
        lock = query.get("commit_lock") or env.get("FTI_S3_COMMIT_LOCK") or "conditional"
        if lock not in ("conditional", "registry"):
            raise ConfigError(
                f"S3 option commit_lock={lock!r} is unknown. Use 'conditional' (the server "
                "supports If-None-Match puts, as AWS S3 does) or 'registry' (a lock held in the "
                "registry around each commit)."
            )
        return cls(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=endpoint,
            region=region,
            path_style=path_style,
            allow_http=allow_http,
            commit_lock="registry" if lock == "registry" else "conditional",
        )

    def uri(self, *keys: str) -> str:
        """``s3://bucket/prefix/keys...`` without options (what deltalake and Spark open)."""
        path = "/".join(p for p in (self.prefix, *keys) if p)
        return f"s3://{self.bucket}/{path}" if path else f"s3://{self.bucket}"

    def key(self, *keys: str) -> str:
        """An object key under the prefix."""
        return "/".join(p for p in (self.prefix, *keys) if p)

    def delta_options(self) -> dict[str, str]:
        """``storage_options`` for deltalake (object_store's names); no credentials."""
        opts = {"AWS_REGION": self.region}
        if self.endpoint:
            opts["AWS_ENDPOINT_URL"] = self.endpoint
        if self.path_style:
            opts["AWS_FORCE_PATH_STYLE"] = "true"
        if self.allow_http:
            opts["AWS_ALLOW_HTTP"] = "true"
        return opts

    def spark_options(self) -> dict[str, str]:
        """Hadoop ``fs.s3a.*`` settings for a Spark session reading the same tables."""
        opts = {
            "spark.hadoop.fs.s3a.endpoint.region": self.region,
            "spark.hadoop.fs.s3a.path.style.access": str(self.path_style).lower(),
            "spark.hadoop.fs.s3a.aws.credentials.provider": (
                "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
            ),
        }
        if self.endpoint:
            opts["spark.hadoop.fs.s3a.endpoint"] = self.endpoint
            opts["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(not self.allow_http).lower()
        return opts

    def client(self) -> Any:
        """A boto3 S3 client for this server (extra ``fti[s3]``); credentials from the chain."""
        if importlib.util.find_spec("boto3") is None:
            raise MissingDependencyError("boto3", "s3", f"Reading {self.uri()}")
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            use_ssl=not (self.endpoint or "").startswith("http://"),
            config=Config(
                s3={"addressing_style": "path" if self.path_style else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )


def credential_source() -> str:
    """Where AWS credentials come from (never what they are), for ``fti doctor``."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return "environment (AWS_ACCESS_KEY_ID)"
    if os.environ.get("AWS_PROFILE"):
        return f"profile {os.environ['AWS_PROFILE']!r}"
    if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"
    return "default AWS chain (shared credentials file or instance role)"


def object_facts(url: str) -> dict[str, Any]:
    """Size, ETag and (when the writer recorded it) sha256 of one object, from a HEAD request;
    nothing is downloaded. For lineage records of raw input files given as ``s3://`` URLs."""
    from botocore.exceptions import ClientError

    loc = S3Location.parse(url)
    try:
        head = loc.client().head_object(Bucket=loc.bucket, Key=loc.prefix)
    except ClientError as e:
        if str(e.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            raise NotFoundError(
                f"Input file {loc.uri()!r} does not exist. Pass the URL of an existing object."
            ) from None
        raise
    facts: dict[str, Any] = {
        "etag": str(head.get("ETag", "")).strip('"'),
        "size": int(head["ContentLength"]),
    }
    sha = (head.get("Metadata") or {}).get("sha256")
    if sha:
        facts["sha256"] = str(sha)
    return facts
