"""Every exception fti raises.

One root, :class:`FtiError`; each error also inherits the matching builtin so that
``except ValueError`` keeps working, and carries the HTTP status the server maps it to::

    FtiError
    ├── ConfigError            (ValueError)       400  bad URL, unknown scheme, bad fti.toml
    ├── ValidationError        (ValueError)       422  bad input, rejected before any write
    │   └── SchemaError                           422  a frame or definition does not fit the schema
    ├── NotFoundError          (LookupError)      404  no such feature group / version / key
    ├── ConflictError                             409  a definition clashes with an existing one
    │   ├── NameConflictError                     409  a name equals another but for case
    │   └── DependantsError                       409  other objects depend on a delete's target
    ├── AuthError              (PermissionError)  401  no token, or an unknown/revoked one
    ├── ForbiddenError         (PermissionError)  403  a valid token whose scope does not allow it
    ├── IntegrityError                            500  stored data failed a check (e.g. sha256)
    ├── MissingDependencyError (ImportError)      500  an optional extra is not installed
    └── BackendUnavailableError(ConnectionError)  503  a configured service cannot be reached

and one warning, :class:`DeprecatedWarning` (``FutureWarning``): a deprecated object was used.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BackendUnavailableError",
    "ConfigError",
    "ConflictError",
    "DependantsError",
    "DeprecatedWarning",
    "ForbiddenError",
    "FtiError",
    "IntegrityError",
    "MissingDependencyError",
    "NameConflictError",
    "NotFoundError",
    "SchemaError",
    "ValidationError",
]


class FtiError(Exception):
    """Root of every error fti raises."""

    http_status: int = 500


class ConfigError(FtiError, ValueError):
    """The configuration (a URL, an env var, ``fti.toml``) is invalid."""

    http_status = 400


class ValidationError(FtiError, ValueError):
    """Input was rejected before anything was written."""

    http_status = 422


class SchemaError(ValidationError):
    """A frame or a definition does not fit the declared schema."""


class NotFoundError(FtiError, LookupError):
    """The named object does not exist."""

    http_status = 404


class ConflictError(FtiError):
    """A definition clashes with an existing one of the same name and version."""

    http_status = 409


class NameConflictError(ConflictError):
    """A new name equals an existing one of the same kind except for case (names are unique
    case-insensitively: ``Prices`` and ``prices`` cannot both exist)."""


class DependantsError(ConflictError):
    """A delete was refused because other objects still depend on the target; the message lists
    them. ``force=True`` deletes them too."""

    def __init__(self, message: str, dependants: list[str]) -> None:
        super().__init__(message)
        self.dependants = dependants


class AuthError(FtiError, PermissionError):
    """No token, or a token that is unknown, malformed or revoked (model server, web UI)."""

    http_status = 401


class ForbiddenError(FtiError, PermissionError):
    """A valid token whose scope does not allow the route."""

    http_status = 403


class IntegrityError(FtiError):
    """Stored data failed an integrity check."""

    http_status = 500


class MissingDependencyError(FtiError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""

    http_status = 500

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed. "
            f'Install it with: pip install "fti[{extra}]"'
        )


class BackendUnavailableError(FtiError, ConnectionError):
    """A configured backend service cannot be reached."""

    http_status = 503


class DeprecatedWarning(FutureWarning):
    """A deprecated feature group, feature view, training dataset or model version was used.

    A ``FutureWarning`` (shown by default, as Python recommends for warnings meant for the
    users of an application) rather than a ``DeprecationWarning`` (hidden outside ``__main__``).
    """
