"""fti: feature, training and inference pipelines around a feature store.

>>> import fti
>>> fs = fti.connect()                                                        # doctest: +SKIP
"""

from fti.definitions.fields import Field
from fti.definitions.on_demand import OnDemandFeature, on_demand
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
    FtiError,
    IntegrityError,
    MissingDependencyError,
    NotFoundError,
    SchemaError,
    ValidationError,
)
from fti.handles.feature_group import FeatureGroup
from fti.handles.model import ModelRegistry, ModelVersion
from fti.services.ingestion import InsertReport
from fti.store import FeatureStore, connect

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "ConflictError",
    "FeatureGroup",
    "FeatureStore",
    "Field",
    "FtiError",
    "InsertReport",
    "IntegrityError",
    "MissingDependencyError",
    "ModelRegistry",
    "ModelVersion",
    "NotFoundError",
    "OnDemandFeature",
    "SchemaError",
    "Transformation",
    "ValidationError",
    "__version__",
    "connect",
    "impute_constant",
    "impute_mean",
    "label_encoder",
    "log_transform",
    "min_max_scaler",
    "on_demand",
    "one_hot_encoder",
    "robust_scaler",
    "standard_scaler",
    "transformation",
]
