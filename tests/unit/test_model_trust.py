"""Which types a skops model may load is decided by fti's code and the caller, never the registry.

The attack: someone who can write the registry and the artifact store replaces a model's file
with a skops file that references ``posix.system`` (or any class of theirs) and rewrites the
record to match (sha256, size, and the list of "trusted" types older versions stored there).
``load()`` must refuse it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import fti
from fti.services.model_trust import is_allowed_type


class Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A user's own transformer: not a type fti trusts by itself."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, x: Any) -> Any:
        return np.asarray(x) * 2


def frame(n: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.random(n), "b": rng.random(n)})
    return x, pd.Series((x["a"] > 0.5).astype("int64"), name="y")


def artifact_path(fs: fti.FeatureStore, mv: fti.ModelVersion) -> Path:
    return fs.config.root / "artifacts" / Path(*mv.artifact.key.split("/"))


def tamper(fs: fti.FeatureStore, mv: fti.ModelVersion, payload: object, tmp: Path) -> list[str]:
    """Replace the model's file with a skops dump of ``payload`` and rewrite its registry
    record to match: sha256, size and the stored trusted-type list. Returns the file's types."""
    evil = tmp / "evil.skops"
    sio.dump(payload, evil)
    types = sio.get_untrusted_types(file=evil)
    data = evil.read_bytes()
    artifact_path(fs, mv).write_bytes(data)
    registry = fs._ctx.registry
    rec = registry.get("model", mv.name, mv.version)
    assert rec is not None
    body = dict(rec.body)
    body["artifact"] = {
        **body["artifact"],
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    body["format_options"] = {**body.get("format_options", {}), "trusted_types": types}
    registry.update("model", mv.name, mv.version, body, revision=rec.revision)
    return types


def test_editing_the_record_and_the_file_together_cannot_make_load_trust_os_system(
    fs: fti.FeatureStore, tmp_path: Path
) -> None:
    x, y = frame()
    fs.models.register("victim", LogisticRegression().fit(x, y))
    mv = fs.models.get("victim")
    types = tamper(fs, mv, {"run": os.system}, tmp_path)
    assert types == [f"{os.system.__module__}.system"]  # posix.system on Linux

    tampered = fs.models.get("victim")
    assert tampered.artifact.sha256 != mv.artifact.sha256  # the record matches the new file
    with pytest.raises(fti.ValidationError, match=r"posix\.system") as err:
        tampered.load()
    assert "trusted=['posix.system']" in str(err.value)  # says how to opt in
    # the explicit opt-in is the caller's own decision, and only then does it load
    assert tampered.load(trusted=types) == {"run": os.system}


def test_a_custom_class_needs_the_callers_trusted_list(
    fs: fti.FeatureStore, tmp_path: Path
) -> None:
    x, y = frame()
    mv = fs.models.register("piped", make_pipeline(Doubler(), LogisticRegression()).fit(x, y))
    name = f"{Doubler.__module__}.Doubler"
    with pytest.raises(fti.ValidationError, match=rf"\['{name}'\]"):
        mv.load()
    loaded = mv.load(trusted=[name])
    assert type(loaded.steps[0][1]).__name__ == "Doubler"
    with pytest.raises(fti.ValidationError, match="list of type names"):
        mv.load(trusted=name)  # type: ignore[arg-type]

    # a stored list naming the class (what older versions wrote) does not help
    tamper(fs, mv, make_pipeline(Doubler(), LogisticRegression()).fit(x, y), tmp_path)
    with pytest.raises(fti.ValidationError, match="Doubler"):
        fs.models.get("piped").load()


def test_models_of_the_ml_libraries_load_without_a_stored_list(fs: fti.FeatureStore) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier

    x, y = frame()
    xc = x.assign(c=np.arange(len(x)) % 3)
    models = {
        "hgb_cat": (HistGradientBoostingClassifier(max_iter=3, categorical_features=[2]), xc),
        "forest": (RandomForestClassifier(n_estimators=3, random_state=0), x),
        "knn": (KNeighborsClassifier(algorithm="kd_tree"), x),
    }
    for name, (model, data) in models.items():
        model.fit(data, y)
        mv = fs.models.register(name, model)
        assert "trusted_types" not in mv.spec.format_options
        np.testing.assert_array_equal(mv.load().predict(data), model.predict(data))


def test_records_that_still_carry_a_stored_list_load_when_its_types_are_allowed(
    fs: fti.FeatureStore,
) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = frame()
    clf = HistGradientBoostingClassifier(max_iter=3).fit(x, y)
    mv = fs.models.register("old", clf)
    registry = fs._ctx.registry
    rec = registry.get("model", "old", mv.version)
    assert rec is not None
    trusted = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    body = {**rec.body, "format_options": {"trusted_types": trusted}}  # as older fti wrote it
    registry.update("model", "old", mv.version, body, revision=rec.revision)
    np.testing.assert_array_equal(fs.models.get("old").load().predict(x), clf.predict(x))


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", True),
        ("lightgbm.basic.Booster", True),
        ("xgboost.core.Booster", True),
        ("scipy.sparse.csr_matrix", True),
        ("numpy.float32", True),
        ("numpy.dtype", True),
        ("collections.OrderedDict", True),
        ("sklearn.utils.validation.check_array", True),
        ("posix.system", False),
        ("builtins.eval", False),
        ("numpy.load", False),  # a function: skops may call a "constructor" with file args
        ("numpy.memmap", False),  # a class whose constructor creates files
        ("sklearn.datasets.dump_svmlight_file", False),  # writes a file where it is told
        ("sklearn.utils._param_validation.Integral", False),  # numbers.Integral re-exported
        ("sklearn.no_such_module.Thing", False),
        ("xgboost.tracker.RabitTracker", False),  # its constructor opens a socket
        ("sklearnx.Thing", False),
        ("sklearn", False),
    ],
)
def test_allow_list(name: str, allowed: bool) -> None:
    assert is_allowed_type(name) is allowed
