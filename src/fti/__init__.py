"""fti: feature, training and inference pipelines around a feature store.

>>> import fti
>>> fs = fti.connect()                                                        # doctest: +SKIP
"""

from fti.definitions.fields import Field
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
    "NotFoundError",
    "SchemaError",
    "ValidationError",
    "__version__",
    "connect",
]
