"""Who may see the UI and act in it: the model server's tokens, carried by the browser in an
HttpOnly cookie (or an ``Authorization`` header), and a CSRF token on every form that changes
something."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request

from fti.serving.auth import TokenStore

__all__ = ["COOKIE", "Guard", "Viewer"]

COOKIE = "fti_ui_token"


@dataclass(frozen=True)
class Viewer:
    """The person behind a request: a token id (``local`` without auth) and whether it may act."""

    id: str
    admin: bool
    csrf: str


class Guard:
    """Checks the token of each request (when auth is on) and signs CSRF tokens with a secret
    that lives as long as the server process."""

    def __init__(self, tokens: TokenStore | None) -> None:
        self.tokens = tokens
        self._secret = secrets.token_bytes(32)

    def csrf_for(self, viewer_id: str) -> str:
        return hmac.new(self._secret, viewer_id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, viewer: Viewer, given: str) -> bool:
        return hmac.compare_digest(self.csrf_for(viewer.id), given or "")

    @staticmethod
    def credentials(request: Request) -> str | None:
        header = request.headers.get("authorization")
        if header:
            return header
        cookie = request.cookies.get(COOKIE)
        return f"Bearer {cookie}" if cookie else None

    def viewer(self, request: Request, needed: str = "read") -> Viewer:
        """The viewer, or AuthError (401) / ForbiddenError (403)."""
        if self.tokens is None:
            return Viewer("local", True, self.csrf_for("local"))
        info = self.tokens.check(self.credentials(request), needed)
        admin = "admin" in info.scope.split()
        return Viewer(info.id, admin, self.csrf_for(info.id))
