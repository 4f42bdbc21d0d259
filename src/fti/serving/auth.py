"""Bearer tokens for the HTTP server and the web UI: the server's cached view of the tokens
and the check of an ``Authorization`` header (tokens are created, listed and revoked by
:mod:`fti.services.tokens`; their scopes are described in :mod:`fti.definitions.token`). Every
scope may read the API description.
"""

from __future__ import annotations

import threading
import time

from fti.definitions.token import ANY_SCOPE, TokenInfo
from fti.errors import AuthError, ForbiddenError
from fti.services import tokens
from fti.services.context import StoreContext

__all__ = ["ANY_SCOPE", "TokenStore"]

_REFRESH_SECONDS = 10.0
_MISS_REFRESH_SECONDS = 1.0


class TokenStore:
    """The server's view of the tokens: cached, refreshed every few seconds (and on an unknown
    id, at most once a second, so unknown tokens cannot hammer the registry)."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenInfo] = {}
        self._loaded_at = -1e18
        self._refresh()

    def _refresh(self) -> None:
        found = {t.id: t for t in tokens.list_tokens(self._ctx)}
        with self._lock:
            self._tokens = found
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
        if scheme.lower() != "bearer" or not token.startswith(tokens.PREFIX):
            raise AuthError("Malformed Authorization header: expected 'Bearer fti_<id>_<secret>'.")
        token_id = tokens.token_id(token)
        info = self._lookup(token_id) if token_id else None
        if not tokens.matches(token, info) or info is None:
            raise AuthError("Invalid or revoked token.")
        if not info.grants(needed):
            raise ForbiddenError(
                f"Token {info.id!r} has scope {info.scope!r}; this route needs {needed!r}. "
                f"Create one with: fti token create --scope {needed}"
            )
        return info
