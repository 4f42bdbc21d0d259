"""Credentials never reach a screen or a log: every URL fti shows goes through ``mask_url``.

>>> mask_url("postgresql://fti:s3cret@db:5432/fti")
'postgresql://fti:***@db:5432/fti'
>>> mask_url("redis://:s3cret@127.0.0.1:6379/0?prefix=x")
'redis://:***@127.0.0.1:6379/0?prefix=x'
>>> mask_url("Cannot open https://host/x?token=abc&a=1: refused")
'Cannot open https://host/x?token=***&a=1: refused'
"""

from __future__ import annotations

import re

__all__ = ["mask_url"]

# scheme://user:password@ -> scheme://user:***@ (the user may be empty: redis://:pw@host)
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'\"]*):[^@\s'\"]*@")
# ?password=... / &token=... query parameters
_QUERY = re.compile(
    r"(?i)(?P<head>[?&](?:password|passwd|pwd|pass|secret|token|api_key|apikey|access_key|"
    r"secret_key|sslpassword|auth)=)[^&\s#'\"]*"
)


def mask_url(text: str) -> str:
    """``text`` (a URL, or a message holding URLs) with every password replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:***@", text)
    return _QUERY.sub(lambda m: f"{m['head']}***", text)
