"""What a pipeline is: a plain typed function marked as a feature, training or inference
pipeline, with its kind, name, signature and resolved type hints.

The runner works on this; ``decorators`` adds the direct call that records a run (it imports the
runner, so the runner never imports it).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fti.errors import ValidationError

__all__ = ["KINDS", "STORE_PARAMETER", "PipelineFunction"]

KINDS = ("feature", "training", "inference")
STORE_PARAMETER = "fs"


class PipelineFunction:
    """A marked pipeline function: its kind, name, signature and resolved type hints."""

    def __init__(self, fn: Callable[..., Any], *, kind: str, name: str | None = None) -> None:
        if kind not in KINDS:
            raise ValidationError(f"Unknown pipeline kind {kind!r}; expected one of {KINDS}.")
        self.fn = fn
        self.kind = kind
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)
        self.hints = _hints(fn, self.signature)

    @property
    def function_ref(self) -> str:
        """``"/abs/path/file.py:func"`` (or ``"module:func"`` when there is no file)."""
        try:
            source = inspect.getsourcefile(self.fn)
        except TypeError:
            source = None
        where = str(Path(source).resolve()) if source else self.fn.__module__
        return f"{where}:{self.fn.__qualname__}"

    @property
    def parameters(self) -> list[str]:
        """Names of the configurable parameters (everything except ``fs``)."""
        return [p for p in self.signature.parameters if p != STORE_PARAMETER]

    def __repr__(self) -> str:
        return f"<{self.kind} pipeline {self.name}{self.signature}>"


def _hints(fn: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(fn)
    except NameError as e:
        raise ValidationError(
            f"Cannot resolve the type hints of pipeline {fn.__qualname__!r}: {e}. Import the "
            "types the annotations name at module level."
        ) from None
    missing = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValidationError(
                f"Pipeline {fn.__qualname__!r} takes *{p.name}; pipelines need named, typed "
                "parameters so that runs can be configured and recorded. Replace it with "
                "explicit parameters."
            )
        if p.name not in hints and p.name != STORE_PARAMETER:
            missing.append(p.name)
    if missing:
        raise ValidationError(
            f"Pipeline {fn.__qualname__!r} has parameters without type hints: {missing}. "
            "Annotate every parameter (e.g. 'day: datetime', 'limit: int = 10') so that "
            "'fti run --param' can parse its value."
        )
    return hints
