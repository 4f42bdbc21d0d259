"""Checks behind ``fti doctor``: open each configured backend and report."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse

from fti._internal.s3_location import credential_source
from fti.config import mask_url
from fti.errors import FtiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from fti.backends.artifacts import ArtifactStore
    from fti.backends.offline import OfflineStore
    from fti.backends.online import OnlineStore
    from fti.backends.registry import Registry
    from fti.store import FeatureStore

    Backend = OfflineStore | OnlineStore | Registry | ArtifactStore

__all__ = ["checks"]


def checks(fs: FeatureStore) -> list[tuple[str, str, str, bool, str]]:
    """(part, url, source, ok, detail) for each backend; passwords in URLs and messages are
    masked."""
    from fti.store import context_of

    ctx = context_of(fs)
    opened: dict[str, Callable[[], Backend]] = {
        "offline": lambda: ctx.offline,
        "online": lambda: ctx.online,
        "registry": lambda: ctx.registry,
        "artifacts": lambda: ctx.artifacts,
    }
    out = []
    for part, open_backend in opened.items():
        url = getattr(fs.config, part)
        source = fs.config.sources.get(part, "?")
        try:
            backend = open_backend()
            detail = type(backend).__name__
            if part == "registry":
                detail += f", {len(ctx.registry.records('feature_group'))} feature group version(s)"
            # one request each, so e.g. a wrong bucket or a stopped server shows here
            backend.ping()
            if urlparse(url).scheme == "s3":
                # Where the credentials came from, never what they are.
                detail += f", credentials: {credential_source()}"
            ok = True
        except (FtiError, OSError) as e:
            ok, detail = False, str(e)
        except Exception as e:  # a driver's own error: report it, do not crash the doctor
            ok, detail = False, f"{type(e).__name__}: {e}"
        out.append((part, mask_url(url), source, ok, mask_url(detail)))
    return out
