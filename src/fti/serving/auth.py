"""Bearer tokens for the HTTP server: created once, stored hashed, compared in constant time.

A token looks like ``fti_<id>_<secret>``. The registry keeps one record per token (kind
``"token"``, name ``<id>``) holding only the sha256 of the whole token and its scope, so a leaked
registry does not leak usable tokens. Scopes: ``predict`` (predictions), ``read`` (feature
vectors, metrics), ``admin`` (everything, including reloading the model). A token may hold
several scopes (stored space-separated, ``"predict read"``). Every scope may read the API
description.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fti.backends.registry import Registry
from fti.errors import FtiError, NotFoundError, ValidationError

__all__ = [
    "KIND",
    "SCOPES",
    "AuthError",
    "ForbiddenError",
    "TokenInfo",
    "TokenStore",
    "create_token",
    "list_tokens",
    "revoke_token",
]

KIND = "token"
SCOPES = ("predict", "read", "admin")
ANY_SCOPE = "any"
_PREFIX = "fti_"
_REFRESH_SECONDS = 10.0
_MISS_REFRESH_SECONDS = 1.0


class AuthError(FtiError, PermissionError):
    """No token, or a token that is unknown, malformed or revoked."""

    http_status = 401


class ForbiddenError(FtiError, PermissionError):
    """A valid token whose scope does not allow the route."""

    http_status = 403


@dataclass(frozen=True)
class TokenInfo:
    """What the registry holds about a token (never the token itself)."""

    id: str
    scope: str
    sha256: str
    created_at: str
    description: str
    revoked: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(name: str, body: dict[str, Any]) -> TokenInfo:
    return TokenInfo(
        id=name,
        scope=str(body["scope"]),
        sha256=str(body["sha256"]),
        created_at=str(body.get("created_at", "")),
        description=str(body.get("description", "")),
        revoked=bool(body.get("revoked", False)),
    )


def create_token(
    registry: Registry, scope: str | Sequence[str], *, description: str = ""
) -> tuple[str, TokenInfo]:
    """Create a token with one scope or several; returns ``(token, info)``. The token is not
    stored and cannot be shown again."""
    wanted = [scope] if isinstance(scope, str) else list(scope)
    for s in wanted:
        if s not in SCOPES:
            raise ValidationError(f"Unknown token scope {s!r}. Use one of {list(SCOPES)}.")
    if not wanted:
        raise ValidationError(f"A token needs a scope: one or more of {list(SCOPES)}.")
    scope = " ".join(s for s in SCOPES if s in wanted)
    for _ in range(5):
        token_id = secrets.token_hex(6)
        token = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        body = {
            "scope": scope,
            "sha256": _hash(token),
            "created_at": datetime.now(UTC).isoformat(),
            "description": description,
            "revoked": False,
        }
        if registry.get(KIND, token_id, 1) is None:
            registry.create(KIND, token_id, 1, body)
            return token, _info(token_id, body)
    raise FtiError("Could not find a free token id; retry.")  # pragma: no cover


def list_tokens(registry: Registry) -> list[TokenInfo]:
    """Every token record (hashes and scopes only)."""
    return [_info(r.name, r.body) for r in registry.records(KIND)]


def revoke_token(registry: Registry, token_id: str) -> None:
    """Mark a token revoked; servers stop accepting it within ~10 seconds."""
    rec = registry.get(KIND, token_id, 1)
    if rec is None:
        raise NotFoundError(f"Token {token_id!r} does not exist. List tokens with: fti token list")
    registry.update(KIND, token_id, 1, {**rec.body, "revoked": True}, revision=rec.revision)


def _grants(scope: str, needed: str) -> bool:
    granted = scope.split()
    return "admin" in granted or needed == ANY_SCOPE or needed in granted


class TokenStore:
    """The server's view of the tokens: cached, refreshed every few seconds (and on an unknown
    id, at most once a second, so unknown tokens cannot hammer the registry)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenInfo] = {}
        self._loaded_at = -1e18
        self._refresh()

    def _refresh(self) -> None:
        tokens = {t.id: t for t in list_tokens(self._registry)}
        with self._lock:
            self._tokens = tokens
            self._loaded_at = time.monotonic()

    def _lookup(self, token_id: str) -> TokenInfo | None:
        age = time.monotonic() - self._loaded_at
        found = self._tokens.get(token_id)
        if age > _REFRESH_SECONDS or (found is None and age > _MISS_REFRESH_SECONDS):
            self._refresh()
            found = self._tokens.get(token_id)
        return found

    def check(self, authorization: str | None, needed: str) -> TokenInfo:
        """Return the token's info if the ``Authorization`` header grants ``needed``."""
        if not authorization:
            raise AuthError(
                "This route needs a token: send 'Authorization: Bearer <token>'. Create one "
                f"with: fti token create --scope {'predict' if needed == ANY_SCOPE else needed}"
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(_PREFIX):
            raise AuthError("Malformed Authorization header: expected 'Bearer fti_<id>_<secret>'.")
        token_id = token[len(_PREFIX) :].partition("_")[0]
        info = self._lookup(token_id) if token_id else None
        # Hash even when the id is unknown so timing does not reveal which ids exist.
        digest = _hash(token)
        expected = info.sha256 if info is not None else "0" * 64
        if not hmac.compare_digest(digest, expected) or info is None or info.revoked:
            raise AuthError("Invalid or revoked token.")
        if not _grants(info.scope, needed):
            raise ForbiddenError(
                f"Token {info.id!r} has scope {info.scope!r}; this route needs {needed!r}. "
                f"Create one with: fti token create --scope {needed}"
            )
        return info
