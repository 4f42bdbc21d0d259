"""Vectors with missing values and models that cannot take them.

A vector has missing values when its entity has no online row (``--allow-missing``), a joined
feature group has no row for it, or a stored feature is null or NaN. Models that handle missing
values by their own rules (see :func:`fti.services.model_formats.handles_missing_values`) get
the vector as it is; any other model never sees it: the request is refused with HTTP 422 naming
the entities and their missing features, instead of the model failing with a 500 (or, worse,
answering nonsense).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fti._internal.previews import preview
from fti.errors import ValidationError
from fti.services.feature_vectors import VectorBatch

__all__ = ["refuse_missing"]

_SHOWN = 5


def _is_missing(value: Any) -> bool:
    return value is None or bool(value != value)  # NaN is the only value unequal to itself


def refuse_missing(
    model: str,
    version: int,
    entities: Sequence[Mapping[str, Any]],
    batch: VectorBatch,
) -> None:
    """Raise a ValidationError (422) if a vector of ``batch`` has a missing value."""
    found: list[tuple[int, list[str]]] = []
    count = 0
    for i, vector in enumerate(batch.vectors):
        if any(_is_missing(v) for v in vector):
            count += 1
            if len(found) < _SHOWN:
                names = [n for n, v in zip(batch.names, vector, strict=True) if _is_missing(v)]
                found.append((i, names))
    if not found:
        return
    no_row = set(batch.missing)
    shown = "; ".join(
        f"{preview(dict(entities[i]))} "
        f"({'no online row, ' if i in no_row else ''}missing {preview(names, max_items=10)})"
        for i, names in found
    )
    more = f"; and {count - len(found)} more" if count > len(found) else ""
    raise ValidationError(
        f"Model {model!r} version {version} cannot predict with missing values, and "
        f"{count} of {len(entities)} entities have them: {shown}{more}. Send keys that have "
        "online rows with these features, impute them in the feature view (e.g. "
        "fti.impute_mean()), or serve a model that handles missing values (LightGBM, XGBoost, "
        "HistGradientBoosting, or a scikit-learn pipeline that starts with an imputer)."
    )
