"""The model server's LightGBM path (LightGBM's C library, not its Python package) gives exactly
what the model loaded by the ``lightgbm`` package gives, and falls back where it cannot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from fti.services.model_formats import load_model, predictor, save_model
from fti.services.model_formats.introspection import handles_missing_values
from fti.services.model_formats.lightgbm_native import NativeLightGBM

COLUMNS = ["a", "b", "c", "d"]


def _data(n: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=COLUMNS)
    X.loc[::5, "c"] = np.nan
    y = (X["a"] - X["d"] + rng.normal(size=n) > 0).astype(int).to_numpy()
    return X, y


def _model(kind: str) -> Any:
    X, y = _data()
    if kind == "classifier":
        return lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(X, y)
    if kind == "labels":  # string classes, fitted on a numpy array (no feature names)
        labels = np.where(y == 1, "late", "on time")
        return lgb.LGBMClassifier(n_estimators=15, verbose=-1).fit(X.to_numpy(), labels)
    if kind == "regressor":
        return lgb.LGBMRegressor(n_estimators=25, verbose=-1).fit(X, X["a"] * 2 + y)
    if kind == "booster":
        return lgb.train(
            {"objective": "regression", "verbose": -1}, lgb.Dataset(X, X["b"]), num_boost_round=10
        )
    raise AssertionError(kind)


def _both(model: Any, folder: Path, **override: Any) -> tuple[Any, Any]:
    saved = save_model(model, folder)
    options = json.loads(json.dumps(saved.options))  # as the registry keeps them
    options.update(override)
    return (
        load_model(saved.path, "lightgbm", options),
        load_model(saved.path, "lightgbm", options, native=True),
    )


@pytest.mark.parametrize("kind", ["classifier", "labels", "best_iteration", "regressor", "booster"])
def test_the_native_path_predicts_exactly_what_lightgbm_predicts(kind: str, tmp_path: Path) -> None:
    if kind == "best_iteration":  # a best iteration below the trees in the file: 7 of 30
        python, native = _both(_model("classifier"), tmp_path, best_iteration=7)
        assert python.booster_.best_iteration == 7
        assert python.booster_.num_trees() == 30
    else:
        python, native = _both(_model(kind), tmp_path)
    assert isinstance(native, NativeLightGBM)
    assert not isinstance(python, NativeLightGBM)
    assert handles_missing_values(native)
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(64, 4))
    rows[::3, 1] = np.nan
    rows[::4, 0] = np.inf
    vectors = rows.tolist()
    vectors[5][2] = None  # a missing value as the server passes it
    got = predictor(native, COLUMNS)(vectors)
    want = predictor(python, COLUMNS)(vectors)
    assert got == want
    # and what the model object itself says, independently of fti's predictor
    X = np.array(vectors, dtype=np.float64)
    if kind in ("classifier", "labels", "best_iteration"):
        assert got[0] == python.predict(X).tolist()
        assert got[1] == python.predict_proba(X)[:, 1].tolist()
    else:
        assert got == (python.predict(X).tolist(), None)


def test_columns_in_another_order_are_put_in_the_fitted_order(tmp_path: Path) -> None:
    python, native = _both(_model("classifier"), tmp_path)
    assert list(native.feature_names_in_) == COLUMNS
    order = ["d", "b", "a", "c"]
    X, _ = _data()
    vectors = X[order].head(40).to_numpy().tolist()
    assert predictor(native, order)(vectors) == predictor(python, order)(vectors)
    with pytest.raises(ValueError, match="fitted on the features"):
        predictor(native, ["a", "b", "c", "e"])


def test_a_wrong_number_of_columns_is_lightgbms_error(tmp_path: Path) -> None:
    _, native = _both(_model("regressor"), tmp_path)
    with pytest.raises(ValueError, match="LightGBM"):
        native.predict(np.zeros((2, 3)))


def test_multiclass_models_are_loaded_by_the_lightgbm_package(tmp_path: Path) -> None:
    X, y = _data()
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y + (X["b"] > 1).to_numpy())
    python, native = _both(model, tmp_path)
    assert type(native) is type(python) is lgb.LGBMClassifier
    vectors = X.head(10).to_numpy().tolist()
    assert predictor(native, COLUMNS)(vectors) == predictor(python, COLUMNS)(vectors)


def test_the_model_server_loads_a_lightgbm_model_without_the_package(tmp_path: Path) -> None:
    """In a fresh interpreter, as ``fti serve`` loads it: neither lightgbm nor scikit-learn
    nor pandas is imported, and the predictions are the package's."""
    import fti

    X, _ = _data()
    fs = fti.connect(tmp_path / "store")
    model = _model("classifier")
    fs.models.register("m", model, metrics={"auc": 0.5})
    vectors = X.head(20).to_numpy().tolist()
    want = predictor(fs.models.get("m", version=1).load(), COLUMNS)(vectors)
    fs.close()
    code = (
        "import json, sys\n"
        "import fti\n"
        "from fti.services import model_registry\n"
        "from fti.services.model_formats import predictor\n"
        "from fti.store import context_of\n"
        f"fs = fti.connect({str(tmp_path / 'store')!r})\n"
        "spec = fs.models.get('m', version=1).spec\n"
        "model = model_registry.load(context_of(fs), spec, native=True)\n"
        f"got = predictor(model, {COLUMNS!r})(json.loads(sys.stdin.read()))\n"
        "print(json.dumps([type(model).__name__, got,\n"
        "    [m for m in ('lightgbm', 'sklearn', 'pandas') if m in sys.modules]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(vectors),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kind, got, imported = json.loads(out)
    assert kind == "NativeLightGBM"
    assert imported == []
    assert [got[0], got[1]] == [want[0], want[1]]
