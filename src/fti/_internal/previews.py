"""Bounded reprs of user input for error messages.

An error names the value that failed, but never echoes a whole large input: a 20,000-key
entity or a 4,096-character key would otherwise travel back in every error response.

>>> preview({f"k{i}": i for i in range(20_000)})
"{'k0': 0, 'k1': 1, 'k2': 2, 'k3': 3, 'k4': 4, … 19995 more}"
>>> preview("x" * 1000, max_chars=20)
"'xxxxxxxxxxxxxxxxxx… (1002 characters)"
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any

__all__ = ["MAX_CHARS", "MAX_ITEMS", "clip", "preview"]

MAX_CHARS = 200  # one value, as shown
MAX_ITEMS = 5  # items of a mapping or sequence, as shown


def clip(text: str, max_chars: int = MAX_CHARS) -> str:
    """``text`` cut to about ``max_chars``, saying how long it was."""
    if len(text) <= max_chars:
        return text
    return f"{text[: max(1, max_chars - 1)]}… ({len(text)} characters)"


def preview(value: Any, *, max_chars: int = MAX_CHARS, max_items: int = MAX_ITEMS) -> str:
    """``repr(value)`` with at most ``max_items`` items of a mapping, list or tuple, each item
    (and a scalar) cut to ``max_chars`` characters."""
    if isinstance(value, Mapping):
        shown = [
            f"{clip(repr(k), max_chars)}: {clip(repr(v), max_chars)}"
            for k, v in islice(value.items(), max_items)
        ]
        more = len(value) - len(shown)
        return "{" + ", ".join(shown + ([f"… {more} more"] if more > 0 else [])) + "}"
    if isinstance(value, list | tuple):
        items = [clip(repr(v), max_chars) for v in value[:max_items]]
        more = len(value) - len(items)
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
        return open_ + ", ".join(items + ([f"… {more} more"] if more > 0 else [])) + close
    return clip(repr(value), max_chars)
