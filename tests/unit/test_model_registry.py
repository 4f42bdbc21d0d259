"""Model registry on the embedded store: formats, integrity, signatures, aliases, best, CLI."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import fti
import serving_world
from fti._internal.lineage_events import recording
from fti.cli.app import app
from fti.definitions.model_version import FeatureViewRef, TrainingDatasetRef
from fti.handles.model import ModelRegistry
from fti.services import model_formats

HAS_ONNX = importlib.util.find_spec("onnx") is not None


def frame(n: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"distance": rng.random(n) * 100, "dep_hour": rng.integers(0, 24, n)})
    x["dep_hour"] = x["dep_hour"].astype("int64")
    y = pd.Series((x["distance"] > 50).astype("int64"), name="delayed")
    return x, y


def logistic(x: pd.DataFrame | np.ndarray, y: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(x, y)


def stored_file(fs: fti.FeatureStore, mv: fti.ModelVersion) -> Path:
    return fs.config.root / "artifacts" / Path(*mv.artifact.key.split("/"))


@dataclass
class Threshold:
    """Not a known model kind: only storable with pickle."""

    cut: float

    def predict(self, x: pd.DataFrame) -> Any:
        return (x["distance"] > self.cut).astype(int)


@dataclass
class FakeField:
    name: str
    dtype: str


@dataclass
class FakeFeatureView:
    """What the registry reads from a feature view: name, version, features, labels."""

    name: str
    version: int
    features: list[FakeField]
    labels: list[str]


@dataclass
class FakeTrainingDataset:
    feature_view: FakeFeatureView
    version: int


# ---------------------------------------------------------------------------- formats
def test_sklearn_round_trip_via_skops(fs: fti.FeatureStore) -> None:
    x, y = frame()
    clf = logistic(x, y)
    mv = fs.models.register("delays", clf, metrics={"auc": 0.9}, input_example=x.head(3))
    assert (mv.name, mv.version, mv.format, mv.framework, mv.status) == (
        "delays",
        1,
        "skops",
        "scikit-learn",
        "ready",
    )
    assert re.fullmatch(r"models/delays/[0-9a-f]{32}/model\.skops", mv.artifact.key)
    data = stored_file(fs, mv).read_bytes()
    assert mv.artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert mv.artifact.size == len(data)
    assert mv.libraries["scikit-learn"]
    assert mv.libraries["skops"]
    assert mv.libraries["python"]
    loaded = mv.load()
    assert type(loaded) is type(clf)
    np.testing.assert_array_equal(loaded.predict_proba(x), clf.predict_proba(x))
    assert [(f.name, f.dtype) for f in mv.signature.inputs] == [
        ("distance", "float64"),
        ("dep_hour", "int64"),
    ]
    assert mv.signature.source == "input_example"


def test_skops_trust_comes_from_fti_not_from_the_record(fs: fti.FeatureStore) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = frame(60)
    clf = HistGradientBoostingClassifier(max_iter=3).fit(x, y)
    mv = fs.models.register("hgb", clf)
    assert "trusted_types" not in mv.spec.format_options  # nothing to trust is stored
    np.testing.assert_array_equal(mv.load().predict(x), clf.predict(x))
    # the file's TreePredictor is allowed by fti's fixed list, also outside the registry
    loaded = model_formats.load_model(stored_file(fs, mv), "skops", {})
    np.testing.assert_array_equal(loaded.predict(x), clf.predict(x))


def test_lightgbm_booster_and_wrappers_use_native_text(fs: fti.FeatureStore) -> None:
    import lightgbm as lgb

    x, y = frame(80)
    labels = np.where(y == 1, "late", "on_time")
    clf = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, labels)
    mv = fs.models.register("gbm", clf, input_example=x)
    assert mv.format == "lightgbm"
    assert stored_file(fs, mv).read_text().startswith("tree")  # LightGBM's own text format
    loaded = mv.load()
    assert isinstance(loaded, lgb.LGBMClassifier)
    assert list(loaded.classes_) == ["late", "on_time"]
    np.testing.assert_array_equal(loaded.predict(x), clf.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), clf.predict_proba(x))
    assert list(loaded.feature_names_in_) == ["distance", "dep_hour"]
    assert loaded.objective_ == clf.objective_ == "binary"

    stopped = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.3, verbose=-1)
    stopped.fit(
        x[:60],
        y[:60],
        eval_X=x[60:],
        eval_y=y[60:],
        callbacks=[lgb.early_stopping(3, verbose=False)],
    )
    again = fs.models.register("gbm", stopped).load()
    assert again.best_iteration_ == stopped.best_iteration_ < 200
    np.testing.assert_allclose(again.predict_proba(x), stopped.predict_proba(x))

    reg = lgb.LGBMRegressor(n_estimators=4, verbose=-1).fit(x, x["distance"] * 2)
    np.testing.assert_allclose(fs.models.register("gbm", reg).load().predict(x), reg.predict(x))

    booster = clf.booster_
    mv3 = fs.models.register("gbm", booster)
    assert mv3.version == 4
    loaded_booster = mv3.load()
    assert isinstance(loaded_booster, lgb.Booster)
    np.testing.assert_allclose(loaded_booster.predict(x), booster.predict(x))


def test_xgboost_uses_native_json(fs: fti.FeatureStore) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = frame(80)
    clf = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(x, y)
    mv = fs.models.register("xgb", clf, input_example=x)
    assert mv.format == "xgboost"
    assert re.fullmatch(r"models/xgb/[0-9a-f]{32}/model\.json", mv.artifact.key)
    assert stored_file(fs, mv).read_text().startswith("{")
    loaded = mv.load()
    assert isinstance(loaded, xgb.XGBClassifier)
    np.testing.assert_allclose(loaded.predict_proba(x), clf.predict_proba(x))
    booster = fs.models.register("xgb", clf.get_booster()).load()
    assert isinstance(booster, xgb.Booster)


@pytest.mark.skipif(HAS_ONNX, reason="with onnx installed, load returns a ModelProto")
def test_onnx_bytes_are_stored_as_is(fs: fti.FeatureStore) -> None:
    payload = bytes(range(256)) * 3
    mv = fs.models.register("onnx_model", payload)
    assert mv.format == "onnx"
    assert re.fullmatch(r"models/onnx_model/[0-9a-f]{32}/model\.onnx", mv.artifact.key)
    assert stored_file(fs, mv).read_bytes() == payload
    assert mv.load() == payload


def test_pickle_needs_opt_in_to_save_and_to_load(fs: fti.FeatureStore) -> None:
    with pytest.raises(fti.ValidationError, match="allow_pickle=True") as e:
        fs.models.register("rule", Threshold(50.0))
    assert "Threshold" in str(e.value)
    assert fs.models.list() == []  # nothing registered
    mv = fs.models.register("rule", Threshold(50.0), allow_pickle=True)
    assert (mv.format, mv.framework) == ("pickle", Threshold.__module__.split(".")[0])
    with pytest.raises(fti.ValidationError, match=r"allow_pickle=True"):
        mv.load()
    assert mv.load(allow_pickle=True) == Threshold(50.0)


# ---------------------------------------------------------------------------- integrity
@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_artifact_never_loads(fs: fti.FeatureStore, damage: str) -> None:
    x, y = frame()
    mv = fs.models.register("delays", logistic(x, y))
    path = stored_file(fs, mv)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:-1]))
    else:
        path.unlink()
    expected = fti.NotFoundError if damage == "delete" else fti.IntegrityError
    with pytest.raises(expected, match=re.escape(mv.artifact.key)):
        fs.models.get("delays").load()


def test_failed_artifact_write_leaves_no_version(
    fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = frame()
    store = fs._ctx.artifacts

    def broken_put(key: str, source: Path) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(store, "put", broken_put)
    with pytest.raises(OSError, match="disk full"):
        fs.models.register("delays", logistic(x, y))
    monkeypatch.undo()
    assert fs.models.list("delays") == []
    with pytest.raises(fti.NotFoundError, match="does not exist"):
        fs.models.get("delays")
    assert fs.models.register("delays", logistic(x, y)).version == 1
    assert fs.models.get("delays").version == 1


def test_failed_record_write_leaves_no_version_and_no_file(
    fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = frame()
    registry = fs._ctx.registry

    def broken_create_next(*args: Any) -> Any:
        raise fti.ConflictError("too many writers")

    monkeypatch.setattr(registry, "create_next", broken_create_next)
    with pytest.raises(fti.ConflictError):
        fs.models.register("delays", logistic(x, y))
    monkeypatch.undo()
    assert fs.models.list("delays") == []
    assert not list((fs.config.root / "artifacts").rglob("model.skops"))  # cleaned up


# ---------------------------------------------------------------------------- versions
def test_versions_latest_and_unknown(fs: fti.FeatureStore) -> None:
    x, y = frame()
    for _ in range(3):
        fs.models.register("delays", logistic(x, y))
    assert [m.version for m in fs.models.list("delays")] == [1, 2, 3]
    assert fs.models.get("delays").version == 3
    assert fs.models.get("delays", version=2).version == 2
    with pytest.raises(fti.NotFoundError, match=r"version 7 does not exist.*\[1, 2, 3\]"):
        fs.models.get("delays", version=7)
    with pytest.raises(fti.NotFoundError, match=r"'nope' does not exist.*\['delays'\]"):
        fs.models.get("nope")
    with pytest.raises(fti.ValidationError, match="Invalid model name"):
        fs.models.register("bad name", logistic(x, y))


def test_metrics_and_tags_are_validated(fs: fti.FeatureStore) -> None:
    x, y = frame()
    clf = logistic(x, y)
    with pytest.raises(fti.ValidationError, match="finite"):
        fs.models.register("delays", clf, metrics={"auc": float("nan")})
    with pytest.raises(fti.ValidationError, match="must be a number"):
        fs.models.register("delays", clf, metrics={"auc": "high"})
    with pytest.raises(fti.ValidationError, match="not a bool"):
        fs.models.register("delays", clf, metrics={"auc": True})
    mv = fs.models.register(
        "delays", clf, metrics={"auc": np.float64(0.75)}, tags={"team": "ops"}, description="d"
    )
    again = fs.models.get("delays")
    assert again.metrics == {"auc": 0.75}
    assert (again.tags, again.description) == ({"team": "ops"}, "d")
    assert again == mv


# ---------------------------------------------------------------------------- signatures
def test_signature_and_lineage_from_feature_view(fs: fti.FeatureStore) -> None:
    x, y = frame()
    fv = FakeFeatureView(
        "delays_fv",
        2,
        [FakeField("distance", "float64"), FakeField("dep_hour", "int64")],
        labels=["delayed"],
    )
    td = FakeTrainingDataset(fv, version=4)
    mv = fs.models.register("delays", logistic(x, y), feature_view=fv, training_dataset=td)
    assert mv.signature.input_names == ["distance", "dep_hour"]
    assert [(f.name, f.dtype) for f in mv.signature.outputs] == [("delayed", "unknown")]
    assert mv.signature.source in ("feature_view", "training_dataset")
    assert mv.feature_view_ref == FeatureViewRef("delays_fv", 2)
    assert mv.training_dataset_ref == TrainingDatasetRef("delays_fv", 2, 4)
    # a training dataset alone is enough to know the feature view
    assert fs.models.register("delays", logistic(x, y), training_dataset=td).feature_view_ref == (
        FeatureViewRef("delays_fv", 2)
    )


def test_signature_mismatch_names_the_difference(fs: fti.FeatureStore) -> None:
    x, y = frame()
    fields = [FakeField("distance", "float64"), FakeField("wind", "float64")]
    fv = FakeFeatureView("fv", 1, fields, [])
    with pytest.raises(fti.ValidationError, match=r"feature view 'fv' version 1") as e:
        fs.models.register("delays", logistic(x, y), feature_view=fv)
    assert "['dep_hour']" in str(e.value)
    assert "['wind']" in str(e.value)

    swapped = FakeFeatureView(
        "fv", 1, [FakeField("dep_hour", "int64"), FakeField("distance", "float64")], []
    )
    with pytest.raises(fti.ValidationError, match="another order"):
        fs.models.register("delays", logistic(x, y), feature_view=swapped)

    three = FakeFeatureView("fv", 1, [FakeField(n, "float64") for n in ("a", "b", "c")], [])
    with pytest.raises(fti.ValidationError, match=r"expects 2 features \(n_features_in_\)"):
        fs.models.register("delays", logistic(x.to_numpy(), y), feature_view=three)

    other = FakeTrainingDataset(FakeFeatureView("other", 3, [], []), 1)
    with pytest.raises(fti.ValidationError, match="not to the given feature view"):
        fs.models.register(
            "delays",
            logistic(x, y),
            feature_view=fv,
            training_dataset=other,
        )
    assert fs.models.list() == []  # every rejection wrote nothing


def test_signature_from_arrow_and_numpy_examples(fs: fti.FeatureStore) -> None:
    x, y = frame()
    table = pa.Table.from_pandas(x.head(), preserve_index=False)
    mv = fs.models.register("a", logistic(x, y), input_example=table)
    assert [(f.name, f.dtype) for f in mv.signature.inputs] == [
        ("distance", "float64"),
        ("dep_hour", "int64"),
    ]
    arr = x.to_numpy(dtype="float32")
    mv = fs.models.register("b", logistic(arr, y), input_example=arr[:2])
    assert [(f.name, f.dtype) for f in mv.signature.inputs] == [("0", "float32"), ("1", "float32")]
    with pytest.raises(fti.ValidationError, match="feature"):
        fs.models.register("c", logistic(x, y), input_example=x[["distance"]])


def test_feature_view_resolution(fs: fti.FeatureStore) -> None:
    x, y = frame()
    fields = [FakeField("distance", "float64"), FakeField("dep_hour", "int64")]
    fv = FakeFeatureView("fv", 1, fields, [])
    td = FakeTrainingDataset(fv, version=3)

    class View:
        def __init__(self, name: str, version: int) -> None:
            self.name, self.version = name, version

        def batch_data(self, *, training_dataset_version: int | None = None) -> Any:
            return ("batch", training_dataset_version)

        def get_training_dataset(self, version: int) -> tuple[str, int]:
            return ("td", version)

    class Store:
        def get_feature_view(self, name: str, *, version: int) -> View:
            return View(name, version)

    registry = ModelRegistry(fs._ctx, Store())
    mv = registry.register("delays", logistic(x, y), feature_view=fv, training_dataset=td)
    view = mv.feature_view()
    assert (view.name, view.version, view.training_dataset_version) == ("fv", 1, 3)
    assert view.batch_data() == ("batch", 3)  # bound to the training dataset version
    assert view.batch_data(training_dataset_version=1) == ("batch", 1)  # explicit wins
    assert isinstance(view.unbound, View)
    assert mv.training_dataset() == ("td", 3)
    # without feature views in the store: the recorded identifiers
    bare = ModelRegistry(fs._ctx, object()).get("delays")
    assert bare.feature_view() == FeatureViewRef("fv", 1)
    assert bare.training_dataset() == TrainingDatasetRef("fv", 1, 3)
    assert ModelRegistry(fs._ctx).register("plain", logistic(x, y)).feature_view() is None


def test_real_feature_view_with_transformations(fs: fti.FeatureStore) -> None:
    world = serving_world.build(fs, trips=120, model=False)
    x_train, y_train = world.td.read("train")
    clf = logistic(x_train.fillna(0), y_train)
    # the training dataset alone names the view; the one-hot columns come from its statistics
    mv = fs.models.register("trips", clf, training_dataset=world.td)
    assert mv.signature.input_names == list(x_train.columns)
    assert "carrier_AA" in mv.signature.input_names
    assert [(f.name, f.dtype) for f in mv.signature.outputs] == [("late", "int64")]
    assert mv.feature_view_ref == FeatureViewRef("trips_view", 1)
    bound = mv.feature_view()
    assert bound.training_dataset_version == world.td.version
    assert mv.training_dataset().version == world.td.version
    spine = pd.DataFrame({"trip_id": [1, 2], "ts": [serving_world.T0] * 2, "dep_hour": [3, 4]})
    assert list(bound.batch_data(spine=spine).columns) == mv.signature.input_names

    # a dataset version number works as well as the object
    by_number = fs.models.register("trips", clf, feature_view=world.fv, training_dataset=1)
    assert by_number.signature == mv.signature
    with pytest.raises(fti.NotFoundError, match=r"no training dataset version 9"):
        fs.models.register("trips", clf, feature_view=world.fv, training_dataset=9)
    with pytest.raises(fti.ValidationError, match="Pass training_dataset=td"):
        fs.models.register("trips", clf, feature_view=world.fv)
    small = logistic(x_train[["distance", "a_temp"]].fillna(0), y_train)
    with pytest.raises(fti.ValidationError, match=r"not fitted on: \['carrier_AA'"):
        fs.models.register("trips", small, feature_view=world.fv, training_dataset=world.td)


# ---------------------------------------------------------------------------- aliases, best
def test_aliases_are_unique_and_unknown_ones_list_the_known(fs: fti.FeatureStore) -> None:
    x, y = frame()
    for _ in range(3):
        fs.models.register("delays", logistic(x, y))
    fs.models.set_alias("delays", "production", 1)
    fs.models.set_alias("delays", "staging", 2)
    assert fs.models.get("delays", alias="production").version == 1
    fs.models.set_alias("delays", "production", 3)  # moves: an alias names one version
    assert fs.models.aliases("delays") == {"production": 3, "staging": 2}
    assert fs.models.get("delays", version=1).aliases == []
    assert fs.models.get("delays", version=3).aliases == ["production"]
    with pytest.raises(fti.NotFoundError, match=r"no alias 'champion'.*'production': 3"):
        fs.models.get("delays", alias="champion")
    with pytest.raises(fti.NotFoundError, match=r"Existing versions: \[1, 2, 3\]"):
        fs.models.set_alias("delays", "production", 9)
    with pytest.raises(fti.ValidationError, match="Invalid alias name"):
        fs.models.set_alias("delays", "prod-1", 1)
    with pytest.raises(fti.ValidationError, match="not both"):
        fs.models.get("delays", version=1, alias="production")
    assert fs.models.remove_alias("delays", "staging") == 2
    history = fs.models.alias_history("delays")
    assert [(h["action"], h["alias"], h["version"], h["previous"]) for h in history] == [
        ("set", "production", 1, None),
        ("set", "staging", 2, None),
        ("set", "production", 3, 1),
        ("remove", "staging", None, 2),
    ]


def test_concurrent_alias_writers_lose_nothing(fs: fti.FeatureStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    for _ in range(3):
        fs.models.register("m", b"\x08\x07")

    def writer(w: int) -> None:
        for i in range(8):
            fs.models.set_alias("m", f"a{w}_{i}", 1 + (w + i) % 3)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(writer, range(4)))
    expected = {f"a{w}_{i}": 1 + (w + i) % 3 for w in range(4) for i in range(8)}
    assert fs.models.aliases("m") == expected
    assert len(fs.models.alias_history("m")) == len(expected)


def test_best_by_metric(fs: fti.FeatureStore) -> None:
    x, y = frame()
    for auc, loss in [(0.7, 0.5), (0.8, 0.6), (0.8, 0.4)]:
        fs.models.register("delays", logistic(x, y), metrics={"auc": auc, "log_loss": loss})
    assert fs.models.best("delays", "auc").version == 3  # tie: the newest
    assert fs.models.best("delays", "log_loss", direction="min").version == 3
    assert fs.models.best("delays", "log_loss", direction="max").version == 2
    with pytest.raises(fti.NotFoundError, match=r"Recorded metrics: \['auc', 'log_loss'\]"):
        fs.models.best("delays", "f1")
    with pytest.raises(fti.ValidationError, match="'max' or 'min'"):
        fs.models.best("delays", "auc", direction="up")


ops = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.integers(1, 3))),
    max_size=12,
)


@settings(max_examples=15, deadline=None)
@given(ops=ops, aucs=st.lists(st.floats(0, 1), min_size=1, max_size=4))
def test_aliases_and_best_match_a_dict_oracle(
    ops: list[tuple[str, int | None]], aucs: list[float]
) -> None:
    with tempfile.TemporaryDirectory() as tmp, fti.connect(tmp) as fs:
        for auc in aucs:
            fs.models.register("m", b"\x08\x07", metrics={"auc": auc})
        n = len(aucs)
        oracle: dict[str, int] = {}
        for alias, version in ops:
            if version is None:
                if alias in oracle:
                    assert fs.models.remove_alias("m", alias) == oracle.pop(alias)
            elif version <= n:
                fs.models.set_alias("m", alias, version)
                oracle[alias] = version
        assert fs.models.aliases("m") == oracle
        for alias, version in oracle.items():
            assert fs.models.get("m", alias=alias).version == version
        best_version = max(range(1, n + 1), key=lambda v: (aucs[v - 1], v))
        assert fs.models.best("m", "auc").version == best_version


# ---------------------------------------------------------------------------- lineage, CLI
def test_register_and_load_report_lineage(fs: fti.FeatureStore) -> None:
    x, y = frame()
    with recording() as rec:
        mv = fs.models.register("delays", logistic(x, y))
        mv.load()
    assert rec.outputs == [
        {
            "kind": "model",
            "name": "delays",
            "version": 1,
            "sha256": mv.artifact.sha256,
            "format": "skops",
        }
    ]
    assert rec.inputs == [
        {"kind": "model", "name": "delays", "version": 1, "sha256": mv.artifact.sha256}
    ]


def test_cli_list_show_alias(fs: fti.FeatureStore) -> None:
    x, y = frame()
    fs.models.register("delays", logistic(x, y), metrics={"auc": 0.7}, input_example=x)
    fs.models.register("delays", logistic(x, y), metrics={"auc": 0.8})
    root = str(fs.config.root)
    runner = CliRunner()
    out = runner.invoke(app, ["models", "alias", "delays", "production", "1", "-r", root])
    assert out.exit_code == 0, out.output
    assert fs.models.aliases("delays") == {"production": 1}
    out = runner.invoke(app, ["models", "list", "-r", root])
    assert out.exit_code == 0
    assert "production" in out.output
    assert "auc=0.8" in out.output
    out = runner.invoke(app, ["models", "show", "delays@production", "-r", root])
    assert out.exit_code == 0, out.output
    assert "version 1" in out.output
    assert "distance" in out.output
    out = runner.invoke(app, ["models", "show", "delays:2", "-r", root])
    assert "version 2" in out.output
    out = runner.invoke(app, ["models", "list", "nope", "-r", root])
    assert isinstance(out.exception, fti.NotFoundError)
    out = runner.invoke(app, ["models", "show", "delays@nope", "-r", root])
    assert isinstance(out.exception, fti.NotFoundError)
    assert "production" in str(out.exception)
