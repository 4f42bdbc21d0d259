"""fti: feature, training and inference pipelines around a feature store.

>>> import fti
>>> fs = fti.connect()                                                        # doctest: +SKIP

The names below are imported on first use (PEP 562), so ``import fti`` and the ``fti`` command
start without loading pandas, pyarrow, DuckDB or deltalake.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti import expect
    from fti._internal.lineage_events import record_input_file
    from fti.definitions.aggregations import Aggregation
    from fti.definitions.fields import Field
    from fti.definitions.monitors import Window, window
    from fti.definitions.on_demand import OnDemandFeature, on_demand
    from fti.definitions.query import Query, col
    from fti.definitions.transformations import (
        Transformation,
        impute_constant,
        impute_mean,
        label_encoder,
        log_transform,
        min_max_scaler,
        one_hot_encoder,
        robust_scaler,
        standard_scaler,
        transformation,
    )
    from fti.errors import (
        BackendUnavailableError,
        ConfigError,
        ConflictError,
        DependantsError,
        DeprecatedWarning,
        FtiError,
        IntegrityError,
        MissingDependencyError,
        NameConflictError,
        NotFoundError,
        SchemaError,
        ValidationError,
    )
    from fti.handles.feature_group import FeatureGroup
    from fti.handles.feature_view import FeatureView
    from fti.handles.model import ModelRegistry, ModelVersion
    from fti.handles.monitor import Monitor
    from fti.handles.training_dataset import TrainingDataset
    from fti.pipelines import (
        Pipeline,
        PipelineRun,
        backfill,
        feature_pipeline,
        inference_pipeline,
        run_monolithic,
        run_pipeline,
        training_pipeline,
    )
    from fti.pipelines.streaming import StreamPipeline, stream_pipeline
    from fti.services.ingestion import InsertReport
    from fti.services.lineage_graph import LineageGraph
    from fti.store import FeatureStore, connect

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Aggregation": "fti.definitions.aggregations",
    "BackendUnavailableError": "fti.errors",
    "ConfigError": "fti.errors",
    "ConflictError": "fti.errors",
    "DependantsError": "fti.errors",
    "DeprecatedWarning": "fti.errors",
    "FeatureGroup": "fti.handles.feature_group",
    "FeatureStore": "fti.store",
    "FeatureView": "fti.handles.feature_view",
    "Field": "fti.definitions.fields",
    "FtiError": "fti.errors",
    "InsertReport": "fti.services.ingestion",
    "IntegrityError": "fti.errors",
    "LineageGraph": "fti.services.lineage_graph",
    "MissingDependencyError": "fti.errors",
    "ModelRegistry": "fti.handles.model",
    "ModelVersion": "fti.handles.model",
    "Monitor": "fti.handles.monitor",
    "NameConflictError": "fti.errors",
    "NotFoundError": "fti.errors",
    "OnDemandFeature": "fti.definitions.on_demand",
    "Pipeline": "fti.pipelines",
    "PipelineRun": "fti.pipelines",
    "Query": "fti.definitions.query",
    "SchemaError": "fti.errors",
    "StreamPipeline": "fti.pipelines.streaming",
    "TrainingDataset": "fti.handles.training_dataset",
    "Transformation": "fti.definitions.transformations",
    "ValidationError": "fti.errors",
    "Window": "fti.definitions.monitors",
    "backfill": "fti.pipelines",
    "col": "fti.definitions.query",
    "connect": "fti.store",
    "expect": "fti.expect",
    "feature_pipeline": "fti.pipelines",
    "impute_constant": "fti.definitions.transformations",
    "impute_mean": "fti.definitions.transformations",
    "inference_pipeline": "fti.pipelines",
    "label_encoder": "fti.definitions.transformations",
    "log_transform": "fti.definitions.transformations",
    "min_max_scaler": "fti.definitions.transformations",
    "on_demand": "fti.definitions.on_demand",
    "one_hot_encoder": "fti.definitions.transformations",
    "record_input_file": "fti._internal.lineage_events",
    "robust_scaler": "fti.definitions.transformations",
    "run_monolithic": "fti.pipelines",
    "run_pipeline": "fti.pipelines",
    "standard_scaler": "fti.definitions.transformations",
    "stream_pipeline": "fti.pipelines.streaming",
    "training_pipeline": "fti.pipelines",
    "transformation": "fti.definitions.transformations",
    "window": "fti.definitions.monitors",
}


__all__ = [
    "Aggregation",
    "BackendUnavailableError",
    "ConfigError",
    "ConflictError",
    "DependantsError",
    "DeprecatedWarning",
    "FeatureGroup",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FtiError",
    "InsertReport",
    "IntegrityError",
    "LineageGraph",
    "MissingDependencyError",
    "ModelRegistry",
    "ModelVersion",
    "Monitor",
    "NameConflictError",
    "NotFoundError",
    "OnDemandFeature",
    "Pipeline",
    "PipelineRun",
    "Query",
    "SchemaError",
    "StreamPipeline",
    "TrainingDataset",
    "Transformation",
    "ValidationError",
    "Window",
    "__version__",
    "backfill",
    "col",
    "connect",
    "expect",
    "feature_pipeline",
    "impute_constant",
    "impute_mean",
    "inference_pipeline",
    "label_encoder",
    "log_transform",
    "min_max_scaler",
    "on_demand",
    "one_hot_encoder",
    "record_input_file",
    "robust_scaler",
    "run_monolithic",
    "run_pipeline",
    "standard_scaler",
    "stream_pipeline",
    "training_pipeline",
    "transformation",
    "window",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fti' has no attribute {name!r}")
    imported = importlib.import_module(module)
    # a submodule (fti.expect) is itself the public name
    value = imported if module == f"fti.{name}" else getattr(imported, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
