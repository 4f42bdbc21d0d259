"""The public API contract: the exported names, and what `import fti` must not pull in."""

from __future__ import annotations

import inspect
import pydoc
import subprocess
import sys
from pathlib import Path

import pytest

import fti

EXPECTED = {
    # DESIGN.md's public API
    "connect", "FeatureStore", "FeatureGroup", "FeatureView", "TrainingDataset",
    "ModelRegistry", "ModelVersion", "standard_scaler", "one_hot_encoder", "expect", "Monitor",
    "window",
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


_HEAVY = ("pandas", "pyarrow", "duckdb", "deltalake", "numpy", "sqlalchemy", "alembic")


def _imported_after(code: str) -> list[str]:
    """The heavy modules loaded once ``code`` ran (on a marked line: the code may print)."""
    probe = (
        code
        + f"\nimport sys\nprint('LOADED:' + ','.join(m for m in {_HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("LOADED:"))
    return [m for m in line.removeprefix("LOADED:").split(",") if m]


def test_import_fti_and_the_cli_are_light() -> None:
    """``import fti`` and building the CLI load none of the data libraries (they cost ~1 s);
    the public names load on first use. A structural check, not a timing."""
    assert _imported_after("import fti") == []
    assert _imported_after("import fti.cli.app") == []
    assert _imported_after("import fti\nfti.FtiError\nfti.col") == []
    # The store's modules load the data libraries, but not pandas (pyarrow.dataset imports
    # it, ~0.3 s of `fti serve`'s start): it loads when a frame or a dataset is first needed.
    loaded = _imported_after("import fti\nfti.connect")
    assert "pyarrow" in loaded
    assert "pandas" not in loaded


def test_fg_list_json_reads_metadata_only(tmp_path: Path) -> None:
    """``fti fg list --json`` answers from the registry and the Delta logs: no pandas, Arrow,
    DuckDB or deltalake, and no SQLAlchemy either (an embedded registry is read through
    ``sqlite3``; tests/e2e/test_cli_fg_list.py compares its output with the full registry's)."""
    root = tmp_path / "store"
    with fti.connect(root) as fs:
        fs.feature_group("g", primary_key=["k"]).insert([{"k": 1, "x": 1.0}, {"k": 2, "x": 2.0}])
    code = (
        "import sys\nfrom fti.cli.app import app\n"
        f"sys.argv = ['fti', 'fg', 'list', '--json', '--root', {str(root)!r}]\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
    )
    loaded = _imported_after(code)
    assert loaded == [], loaded


def test_getattr_and_dir_of_the_lazy_package() -> None:
    assert set(fti.__all__) <= set(dir(fti))
    assert fti.connect is fti.store.connect  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fti.nope  # type: ignore[attr-defined]  # noqa: B018


def test_feature_group_signature_shows_readable_defaults() -> None:
    sig = inspect.signature(fti.FeatureStore.feature_group)
    shown = {name: repr(p.default) for name, p in sig.parameters.items()}
    assert shown["online"] == "<stored, else False>"
    assert shown["event_time"] == "<stored, else None>"
    assert shown["description"] == "<stored, else ''>"
    assert "object at 0x" not in pydoc.render_doc(fti.FeatureStore.feature_group)
