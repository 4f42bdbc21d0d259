"""Lineage for the command line and for code holding a store: which runs, datasets, models and
raw files an object came from (upstream) and what was built on it (downstream).

The graph itself is built from run records in ``fti.services.lineage_graph`` (the facade's
``fs.lineage(obj)`` uses the same code).

>>> print(lineage(fs, "model", "delays:3"))                                 # doctest: +SKIP
"""

from __future__ import annotations

from fti.errors import ValidationError
from fti.pipelines.runs import get_run
from fti.services import lineage_graph
from fti.services.lineage_graph import LineageGraph
from fti.store import FeatureStore, context_of

__all__ = ["KIND_ALIASES", "lineage", "parse_target"]

KIND_ALIASES = {
    "fg": "feature_group",
    "feature_group": "feature_group",
    "fv": "feature_view",
    "feature_view": "feature_view",
    "td": "training_dataset",
    "training_dataset": "training_dataset",
    "model": "model",
    "prediction": "prediction",
    "predictions": "prediction",
    "run": "run",
    "file": "file",
}


def parse_target(kind: str, text: str) -> tuple[str, str, int | None]:
    """``("fg", "weather:1")`` -> ("feature_group", "weather", 1).

    A run is named by its id, a file by its path (neither takes a version). A training dataset
    is named ``FEATURE_VIEW_vFV_VERSION:VERSION`` (e.g. ``delays_v1:2``).
    """
    canonical = KIND_ALIASES.get(kind.lower())
    if canonical is None:
        raise ValidationError(
            f"Unknown lineage kind {kind!r}. Use one of: {sorted(set(KIND_ALIASES))}."
        )
    if canonical in ("run", "file"):
        return canonical, text, None
    name, _, version = text.rpartition(":") if ":" in text else (text, "", "")
    if not version:
        return canonical, name, None
    if not version.isdigit():
        raise ValidationError(
            f"Invalid version in {text!r}: use NAME or NAME:VERSION, e.g. delays:3."
        )
    return canonical, name, int(version)


def lineage(fs: FeatureStore, kind: str, text: str) -> LineageGraph:
    """The lineage of ``KIND NAME[:VERSION]`` as typed on the command line."""
    k, name, version = parse_target(kind, text)
    if k == "run":
        name = get_run(context_of(fs), name).id  # accept a unique prefix
    return lineage_graph.lineage(context_of(fs), k, name, version)
