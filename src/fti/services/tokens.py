"""API tokens in the registry (kind ``"token"``): create, list, revoke, and check a presented
token against its stored hash in constant time.

A token is created once and shown once; the registry keeps only its sha256 and scopes
(:class:`~fti.definitions.token.TokenInfo`), so a leaked registry does not leak usable tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from fti.definitions.token import TokenInfo, normalize_scopes
from fti.errors import FtiError, NotFoundError
from fti.services.context import StoreContext

__all__ = [
    "KIND",
    "PREFIX",
    "create_token",
    "list_tokens",
    "matches",
    "revoke_token",
    "token_id",
]

KIND = "token"
PREFIX = "fti_"
_NO_HASH = "0" * 64


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    ctx: StoreContext, scope: str | Sequence[str], *, description: str = ""
) -> tuple[str, TokenInfo]:
    """Create a token with one scope or several; returns ``(token, info)``. The token is not
    stored and cannot be shown again.

    >>> token, info = create_token(ctx, ["predict", "read"])                 # doctest: +SKIP
    """
    scopes = normalize_scopes(scope)
    for _ in range(5):
        tid = secrets.token_hex(6)
        token = f"{PREFIX}{tid}_{secrets.token_urlsafe(32)}"
        info = TokenInfo(
            id=tid,
            scope=scopes,
            sha256=_hash(token),
            created_at=datetime.now(UTC).isoformat(),
            description=description,
            revoked=False,
        )
        if ctx.registry.get(KIND, tid, 1) is None:
            ctx.registry.create(KIND, tid, 1, info.to_body())
            return token, info
    raise FtiError("Could not find a free token id; retry.")  # pragma: no cover


def list_tokens(ctx: StoreContext) -> list[TokenInfo]:
    """Every token record (hashes and scopes only)."""
    return [TokenInfo.from_body(r.name, r.body) for r in ctx.registry.records(KIND)]


def revoke_token(ctx: StoreContext, token_id: str) -> None:
    """Mark a token revoked; servers stop accepting it within ~10 seconds."""
    rec = ctx.registry.get(KIND, token_id, 1)
    if rec is None:
        raise NotFoundError(f"Token {token_id!r} does not exist. List tokens with: fti token list")
    ctx.registry.update(KIND, token_id, 1, {**rec.body, "revoked": True}, revision=rec.revision)


def token_id(token: str) -> str | None:
    """The id part of ``fti_<id>_<secret>``, None if the text is not shaped like a token."""
    if not token.startswith(PREFIX):
        return None
    return token[len(PREFIX) :].partition("_")[0] or None


def matches(token: str, info: TokenInfo | None) -> bool:
    """True if ``token`` hashes to ``info``'s stored hash and ``info`` is not revoked. The hash
    is computed and compared in constant time also when ``info`` is None (an unknown id), so
    timing does not tell which ids exist."""
    expected = info.sha256 if info is not None else _NO_HASH
    same = hmac.compare_digest(_hash(token), expected)
    return same and info is not None and not info.revoked
