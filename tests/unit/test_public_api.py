"""The public API contract: the exported names, and what `import fti` must not pull in."""

from __future__ import annotations

import subprocess
import sys

import fti

EXPECTED = {
    # DESIGN.md's public API
    "connect", "FeatureStore", "FeatureGroup", "FeatureView", "TrainingDataset",
    "ModelRegistry", "ModelVersion", "standard_scaler", "one_hot_encoder", "Monitor", "window",
    # errors
    "FtiError", "ValidationError", "SchemaError", "NotFoundError", "ConflictError",
    "IntegrityError", "MissingDependencyError", "BackendUnavailableError", "ConfigError",
    "NameConflictError", "DependantsError", "DeprecatedWarning",
}  # fmt: skip


def test_all_is_sorted_unique_and_importable() -> None:
    names = list(fti.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(fti, name), name
    assert set(names) >= EXPECTED


def test_errors_share_one_root_and_carry_an_http_status() -> None:
    for name in fti.__all__:
        obj = getattr(fti, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, fti.FtiError), name
            assert 400 <= obj.http_status <= 599, name


def test_import_fti_does_not_import_optional_backends() -> None:
    code = (
        "import sys, fti\n"
        "heavy = ['redis', 'pyspark', 'confluent_kafka', 'psycopg', 'fastapi', 'uvicorn',\n"
        "         'sklearn', 'lightgbm', 'skops', 'matplotlib']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
