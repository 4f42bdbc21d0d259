"""Where the store lives and which backend serves each part.

Precedence for every setting: argument > environment variable > ``fti.toml`` > default.

==========  ==============  ==============================  ============================
setting     env var         embedded default                other backends (by URL)
==========  ==============  ==============================  ============================
root        FTI_HOME        ``./.fti``                      any folder
offline     FTI_OFFLINE     ``<root>/offline`` (Delta)      ``file:///path``, ``s3://bucket/prefix``
online      FTI_ONLINE      ``sqlite:///<root>/online.db``  ``redis://host:port/db``
registry    FTI_REGISTRY    ``sqlite:///<root>/registry.db``  ``postgresql://host/db``
artifacts   FTI_ARTIFACTS   ``<root>/artifacts``            ``file:///path``, ``s3://bucket/prefix``
==========  ==============  ==============================  ============================
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fti.errors import ConfigError

__all__ = ["KNOWN_SCHEMES", "StoreConfig", "mask_url", "resolve_config"]

PARTS = ("offline", "online", "registry", "artifacts")

KNOWN_SCHEMES: dict[str, tuple[str, ...]] = {
    "offline": ("file", "s3"),
    "online": ("sqlite", "redis", "rediss"),
    "registry": ("sqlite", "postgresql", "postgresql+psycopg"),
    "artifacts": ("file", "s3"),
}


# scheme://user:password@ -> scheme://user:***@ (the user may be empty: redis://:pw@host)
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'\"]*):[^@\s'\"]*@")
# ?password=... / &token=... query parameters
_QUERY = re.compile(
    r"(?i)(?P<head>[?&](?:password|passwd|pwd|pass|secret|token|api_key|apikey|access_key|"
    r"secret_key|sslpassword|auth)=)[^&\s#'\"]*"
)


def mask_url(text: str) -> str:
    """``text`` (a URL, or a message holding URLs) with every password replaced by ``***``.
    Credentials never reach a screen or a log: every URL fti shows goes through it.

    >>> mask_url("postgresql://fti:s3cret@db:5432/fti")
    'postgresql://fti:***@db:5432/fti'
    >>> mask_url("redis://:s3cret@127.0.0.1:6379/0?prefix=x")
    'redis://:***@127.0.0.1:6379/0?prefix=x'
    >>> mask_url("Cannot open https://host/x?token=abc&a=1: refused")
    'Cannot open https://host/x?token=***&a=1: refused'
    """
    text = _USERINFO.sub(lambda m: f"{m['head']}:***@", text)
    return _QUERY.sub(lambda m: f"{m['head']}***", text)


@dataclass(frozen=True)
class StoreConfig:
    """The resolved location of every part of a store (all URLs absolute)."""

    root: Path
    offline: str
    online: str
    registry: str
    artifacts: str
    sources: dict[str, str]

    def __repr__(self) -> str:  # URLs may carry passwords: never show them
        parts = ", ".join(f"{p}={mask_url(getattr(self, p))!r}" for p in PARTS)
        return f"StoreConfig(root={str(self.root)!r}, {parts})"

    def scheme(self, part: str) -> str:
        return urlparse(str(getattr(self, part))).scheme


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}. Fix the file or remove it.") from e
    section = data.get("store", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [store] must be a table.")
    unknown = set(section) - {"root", *PARTS}
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown)}. Known keys: {['root', *PARTS]}."
        )
    base = path.parent
    out: dict[str, Any] = {}
    for k, v in section.items():
        if not isinstance(v, str):
            raise ConfigError(f"{path}: {k!r} must be a string, got {v!r}.")
        # Relative paths in the file are relative to the file, not to the current directory.
        out[k] = str(base / v) if "://" not in v and not Path(v).is_absolute() else v
    return out


def _normalize(part: str, value: str) -> str:
    if "://" not in value:
        path = Path(value).expanduser().resolve()
        value = f"sqlite:///{path}" if part in ("online", "registry") else f"file://{path}"
    parsed = urlparse(value)
    scheme = parsed.scheme
    if scheme == "s3" and "@" in parsed.netloc:
        raise ConfigError(
            f"The {part} URL must not carry credentials. Remove them from the s3:// URL and set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE instead."
        )
    if scheme not in KNOWN_SCHEMES[part]:
        raise ConfigError(
            f"Unknown {part} URL scheme {scheme!r} in {value!r}. "
            f"Known schemes for {part}: {list(KNOWN_SCHEMES[part])}."
        )
    return value


def resolve_config(
    root: str | os.PathLike[str] | None = None,
    *,
    offline: str | None = None,
    online: str | None = None,
    registry: str | None = None,
    artifacts: str | None = None,
    cwd: Path | None = None,
) -> StoreConfig:
    """Resolve settings from arguments, ``FTI_*`` env vars, ``fti.toml`` and defaults."""
    cwd = cwd or Path.cwd()
    toml_path = cwd / "fti.toml"
    file_cfg = _read_toml(toml_path) if toml_path.is_file() else {}
    args = {"offline": offline, "online": online, "registry": registry, "artifacts": artifacts}
    sources: dict[str, str] = {}

    if root is not None:
        root_path, sources["root"] = Path(root), "argument"
    elif os.environ.get("FTI_HOME"):
        root_path, sources["root"] = Path(os.environ["FTI_HOME"]), "FTI_HOME"
    elif "root" in file_cfg:
        root_path, sources["root"] = Path(file_cfg["root"]), str(toml_path)
    else:
        root_path, sources["root"] = cwd / ".fti", "default"
    root_path = root_path.expanduser().resolve()

    defaults = {
        "offline": str(root_path / "offline"),
        "online": f"sqlite:///{root_path / 'online.db'}",
        "registry": f"sqlite:///{root_path / 'registry.db'}",
        "artifacts": str(root_path / "artifacts"),
    }
    values: dict[str, str] = {}
    for part in PARTS:
        env = os.environ.get(f"FTI_{part.upper()}")
        if args[part] is not None:
            raw, src = args[part], "argument"
        elif env:
            raw, src = env, f"FTI_{part.upper()}"
        elif part in file_cfg:
            raw, src = file_cfg[part], str(toml_path)
        else:
            raw, src = defaults[part], "default"
        assert raw is not None
        values[part] = _normalize(part, raw)
        sources[part] = src
    return StoreConfig(root=root_path, sources=sources, **values)
