"""fti: feature, training and inference pipelines around a feature store.

>>> import fti
>>> fs = fti.connect()                                                        # doctest: +SKIP
"""

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
