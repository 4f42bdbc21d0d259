"""Exceptions of the engines fti drives (DuckDB, deltalake, Arrow), as fti errors.

Applied at the boundaries where fti hands work to an engine — the offline store's methods and
the services that run DuckDB — so users catch :class:`~fti.errors.FtiError` and read one line
that says what failed, never a traceback or the SQL fti generated. The original exception stays
as ``__cause__``. Engines are recognised through ``sys.modules``: nothing is imported here.

=====================================================  ==========================
engine error                                           fti error
=====================================================  ==========================
DuckDB conversion / out-of-range / invalid input       ValidationError
Arrow invalid value, ``OverflowError``                 ValidationError
DuckDB out of memory, I/O                              BackendUnavailableError
deltalake table not found                              NotFoundError
deltalake commit lost to concurrent writers            ConflictError
deltalake schema mismatch                              SchemaError
object storage (S3) request failed                     BackendUnavailableError
any other deltalake error                              IntegrityError
any other DuckDB error (a bug of fti)                  FtiError
=====================================================  ==========================
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from fti.errors import (
    BackendUnavailableError,
    ConflictError,
    FtiError,
    IntegrityError,
    NotFoundError,
    SchemaError,
    ValidationError,
)

__all__ = ["engine_errors", "first_line", "translate"]

P = ParamSpec("P")
T = TypeVar("T")

_DUCKDB_BAD_VALUE = ("ConversionException", "OutOfRangeException", "InvalidInputException")
_DUCKDB_RESOURCE = ("OutOfMemoryException", "IOException")


def first_line(error: BaseException) -> str:
    """The engine's message without the statement it quotes (DuckDB adds ``LINE 1: <sql>``)."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return text.rstrip(".!") or type(error).__name__


def _is(error: BaseException, module: str, name: str) -> bool:
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return isinstance(cls, type) and isinstance(error, cls)


def translate(error: Exception, what: str) -> FtiError | None:
    """The FtiError for an engine error raised while doing ``what``; None if not an engine's."""
    why = first_line(error)
    if _is(error, "duckdb", "Error"):
        if any(_is(error, "duckdb", n) for n in _DUCKDB_BAD_VALUE):
            return ValidationError(f"A value was rejected while {what}: {why}. Check the input.")
        if any(_is(error, "duckdb", n) for n in _DUCKDB_RESOURCE):
            return BackendUnavailableError(
                f"DuckDB failed while {what}: {why}. Free memory or disk space (the memory cap "
                "is FTI_DUCKDB_MEMORY_LIMIT), or read a smaller range, then try again."
            )
        return FtiError(f"DuckDB failed while {what}: {why}. This is a bug in fti; report it.")
    if _is(error, "deltalake.exceptions", "DeltaError"):
        if _is(error, "deltalake.exceptions", "TableNotFoundError"):
            return NotFoundError(f"The offline table was not found while {what}: {why}.")
        if _is(error, "deltalake.exceptions", "CommitFailedError"):
            return ConflictError(f"Other writers kept committing while {what}: {why}. Try again.")
        if _is(error, "deltalake.exceptions", "SchemaMismatchError"):
            return SchemaError(f"The data does not fit the offline table while {what}: {why}.")
        return IntegrityError(
            f"The offline table could not be used while {what}: {why}. Its files or log may "
            "be damaged or changed outside fti."
        )
    if type(error) is OSError and " S3 error" in f" {error}":
        # deltalake's object store: an unreachable endpoint, a missing bucket, bad credentials.
        code = re.search(r"<Code>(\w+)</Code>", str(error))
        detail = code.group(1) if code else why
        return BackendUnavailableError(
            f"Object storage failed while {what}: {detail}. Check the bucket, the endpoint and "
            "the AWS credentials (fti doctor shows what is configured)."
        )
    if isinstance(error, OverflowError) or _is(error, "pyarrow", "ArrowInvalid"):
        return ValidationError(f"A value is out of range while {what}: {why}.")
    return None


def engine_errors(
    what: str, *, name_arg: int | None = None
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a function that drives an engine: its engine errors become fti errors.

    ``what`` says what the function does ("reading offline table {}"); with ``name_arg``, the
    positional argument at that index (e.g. the table name) fills the ``{}``.
    """

    def wrap(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return fn(*args, **kwargs)
            except FtiError:
                raise
            except Exception as e:
                doing = what.replace(" {}", "")
                if name_arg is not None and name_arg < len(args):
                    doing = what.format(repr(args[name_arg]))
                fti_error = translate(e, doing)
                if fti_error is None:
                    raise
                raise fti_error from e

        return inner

    return wrap
