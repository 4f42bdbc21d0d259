"""API tokens: what the registry holds about a bearer token (never the token itself).

A token looks like ``fti_<id>_<secret>``; its record (name ``<id>``) keeps only the sha256 of
the whole token and its scopes. Scopes: ``predict`` (predictions), ``read`` (feature vectors,
metrics), ``admin`` (everything, including reloading the model); a token may hold several
(stored space-separated, ``"predict read"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fti.errors import ValidationError

__all__ = ["ANY_SCOPE", "SCOPES", "TokenInfo", "normalize_scopes"]

SCOPES = ("predict", "read", "admin")
ANY_SCOPE = "any"  # what a route open to every valid token needs (e.g. the API description)


def normalize_scopes(scope: str | Sequence[str]) -> str:
    """One scope or several -> the stored form (known scopes, space-separated, in
    ``SCOPES`` order)."""
    wanted = [scope] if isinstance(scope, str) else list(scope)
    for s in wanted:
        if s not in SCOPES:
            raise ValidationError(f"Unknown token scope {s!r}. Use one of {list(SCOPES)}.")
    if not wanted:
        raise ValidationError(f"A token needs a scope: one or more of {list(SCOPES)}.")
    return " ".join(s for s in SCOPES if s in wanted)


@dataclass(frozen=True)
class TokenInfo:
    """What the registry holds about a token (never the token itself)."""

    id: str
    scope: str
    sha256: str
    created_at: str
    description: str
    revoked: bool

    def grants(self, needed: str) -> bool:
        """True if this token's scopes allow a route that needs ``needed``."""
        granted = self.scope.split()
        return "admin" in granted or needed == ANY_SCOPE or needed in granted

    @classmethod
    def from_body(cls, name: str, body: dict[str, Any]) -> TokenInfo:
        return cls(
            id=name,
            scope=str(body["scope"]),
            sha256=str(body["sha256"]),
            created_at=str(body.get("created_at", "")),
            description=str(body.get("description", "")),
            revoked=bool(body.get("revoked", False)),
        )

    def to_body(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "sha256": self.sha256,
            "created_at": self.created_at,
            "description": self.description,
            "revoked": self.revoked,
        }
