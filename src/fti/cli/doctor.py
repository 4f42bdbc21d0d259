"""Checks behind ``fti doctor``: open each configured backend and report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fti.config import mask_url
from fti.errors import FtiError

if TYPE_CHECKING:
    from fti.store import FeatureStore

__all__ = ["checks"]


def checks(fs: FeatureStore) -> list[tuple[str, str, str, bool, str]]:
    """(part, url, source, ok, detail) for each backend; passwords in URLs and messages are
    masked."""
    ctx = fs._ctx
    out = []
    for part in ("offline", "online", "registry", "artifacts"):
        url = getattr(fs.config, part)
        source = fs.config.sources.get(part, "?")
        try:
            backend = getattr(ctx, part)
            detail = type(backend).__name__
            if part == "registry":
                detail += f", {len(backend.records('feature_group'))} feature group version(s)"
            ok = True
        except (FtiError, OSError) as e:
            ok, detail = False, str(e)
        except Exception as e:  # a driver's own error: report it, do not crash the doctor
            ok, detail = False, f"{type(e).__name__}: {e}"
        out.append((part, mask_url(url), source, ok, mask_url(detail)))
    return out
