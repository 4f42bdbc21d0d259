"""Save and load model files in a safe format for their kind (the table is in the package's
docstring, :mod:`fti.services.model_formats`).

skops refuses to load types that are not on its allow-list. Before loading, the types a file
needs beyond skops' defaults (``skops.io.get_untrusted_types``) are checked against fti's own
fixed allow-list (:mod:`fti.services.model_trust`) plus what the *caller* passes as
``trusted=``; a list stored in the registry (older versions recorded one) is never consulted, so
editing the registry and the file together cannot make ``load()`` trust ``posix.system``.

Optional libraries are imported only when a model of their kind is saved or loaded.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from fti.errors import MissingDependencyError, ValidationError
from fti.services import model_trust
from fti.services.model_formats import lightgbm_native
from fti.services.model_formats.introspection import from_package

__all__ = ["SavedModel", "load_model", "save_model"]

_EXTENSIONS = {
    "skops": "skops",
    "lightgbm": "txt",
    "xgboost": "json",
    "onnx": "onnx",
    "pickle": "pkl",
}
_LGBM_WRAPPERS = ("LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker")
_XGB_WRAPPERS = (
    "XGBModel",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
)


@dataclass(frozen=True)
class SavedModel:
    """A model written to a local file, and what is needed to read it back."""

    path: Path
    format: str
    framework: str
    libraries: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)


def _module(name: str, package: str, extra: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingDependencyError(package, extra, purpose) from None


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _libraries(*dists: str) -> dict[str, str]:
    out = {"python": platform.python_version(), "fti": _version("fti")}
    for d in dists:
        out[d] = _version(d)
    return out


def _kind(model: object) -> str:
    if isinstance(model, bytes | bytearray | memoryview):
        return "onnx"
    if type(model).__name__ == "ModelProto" and from_package(model, "onnx"):
        return "onnx"
    # LightGBM and XGBoost wrappers are scikit-learn estimators too: check them first.
    if from_package(model, "lightgbm"):
        lgb = importlib.import_module("lightgbm")
        if isinstance(model, lgb.Booster | lgb.LGBMModel):
            return "lightgbm"
    if from_package(model, "xgboost"):
        xgb = importlib.import_module("xgboost")
        if isinstance(model, xgb.Booster | xgb.XGBModel):
            return "xgboost"
    if from_package(model, "sklearn"):
        base = importlib.import_module("sklearn.base")
        if isinstance(model, base.BaseEstimator):
            return "skops"
    return "unknown"


def save_model(model: object, folder: Path, *, allow_pickle: bool = False) -> SavedModel:
    """Write ``model`` into ``folder`` (a fresh directory) in the safest format for its kind."""
    kind = _kind(model)
    if kind == "unknown":
        if not allow_pickle:
            raise ValidationError(
                f"fti has no safe format for a {type(model).__module__}.{type(model).__qualname__}"
                " model. Safe formats: scikit-learn (skops), LightGBM (text), XGBoost (JSON), "
                "ONNX (bytes or onnx.ModelProto). Convert it to one of these, or pass "
                "allow_pickle=True to store it with pickle — loading a pickle runs arbitrary "
                "code, so only load it from a store you trust."
            )
        kind = "pickle"
    path = folder / f"model.{_EXTENSIONS[kind]}"
    saver = {
        "skops": _save_skops,
        "lightgbm": _save_lightgbm,
        "xgboost": _save_xgboost,
        "onnx": _save_onnx,
        "pickle": _save_pickle,
    }[kind]
    return saver(model, path)


def load_model(
    path: Path,
    fmt: str,
    options: Mapping[str, Any],
    *,
    allow_pickle: bool = False,
    trusted: Sequence[str] = (),
    what: str = "This model file",
    native: bool = False,
) -> Any:
    """Read a file written by :func:`save_model` (its sha256 already verified by the caller).

    ``trusted`` names extra types a skops file may use, given by the caller (never read from
    the registry); ``what`` names the model in error messages. ``native=True`` (the model
    server): a LightGBM model with one output per row comes back as a
    :class:`~fti.services.model_formats.lightgbm_native.NativeLightGBM`, which only predicts,
    without importing the ``lightgbm`` package.
    """
    if fmt == "skops":
        sio = _module("skops.io", "skops", "ml", "Loading a scikit-learn model")
        try:
            found = sio.get_untrusted_types(file=path)
        except Exception as e:  # not a zip, no schema, a protocol this skops does not know
            raise ValidationError(f"{what} is not a readable skops file: {e}.") from e
        allowed = model_trust.check_skops_types(found, trusted, what=what)
        return sio.load(path, trusted=allowed)
    if fmt == "lightgbm":
        if native:
            lean = lightgbm_native.native_model(path.read_bytes(), options)
            if lean is not None:
                return lean
        return _load_lightgbm(path, options)
    if fmt == "xgboost":
        return _load_xgboost(path, options)
    if fmt == "onnx":
        data = path.read_bytes()
        try:
            onnx = importlib.import_module("onnx")
        except ImportError:
            return data  # no onnx installed: the bytes as stored
        return onnx.load_model_from_string(data)
    if fmt == "pickle":
        if not allow_pickle:
            raise ValidationError(
                "This model version was stored with pickle, and loading a pickle runs arbitrary "
                "code. If you trust this store, load it with mv.load(allow_pickle=True)."
            )
        import pickle

        with path.open("rb") as f:
            return pickle.load(f)  # noqa: S301 - explicit opt-in above, sha256 verified
    raise ValidationError(f"Unknown model format {fmt!r}.")


# ---------------------------------------------------------------------------- scikit-learn
def _save_skops(model: object, path: Path) -> SavedModel:
    sio = _module("skops.io", "skops", "ml", "Saving a scikit-learn model")
    try:
        sio.dump(model, path)
    except Exception as e:  # skops raises plain TypeErrors etc. for objects it cannot encode
        raise ValidationError(
            f"skops could not save this {type(model).__name__}: {e}. Make every part of it "
            "importable (no lambdas or local functions), or pass allow_pickle=True."
        ) from e
    # No list of types to trust is stored with the model: load() decides from fti's fixed
    # allow-list and the caller's trusted= (a custom class inside a pipeline needs the latter).
    return SavedModel(path, "skops", "scikit-learn", _libraries("scikit-learn", "skops"))


# ---------------------------------------------------------------------------- LightGBM
def _json_params(model: Any, what: str) -> dict[str, Any]:
    params = model.get_params()
    try:
        same = json.loads(json.dumps(params)) == params
    except (TypeError, ValueError):
        same = False
    if not same:
        raise ValidationError(
            f"The parameters of this {what} cannot be stored as JSON ({params!r}); callables, "
            "random generators and dicts with non-string keys do not round-trip. Register its "
            "booster instead (model.booster_ / model.get_booster()), or pass allow_pickle=True."
        )
    return dict(params)


def _save_lightgbm(model: Any, path: Path) -> SavedModel:
    lgb = importlib.import_module("lightgbm")
    options: dict[str, Any] = {}
    booster = model
    if isinstance(model, lgb.LGBMModel):
        if not getattr(model, "fitted_", False):
            raise ValidationError(
                f"This {type(model).__name__} is not fitted. Call fit() before registering it."
            )
        cls = type(model).__name__
        if cls not in _LGBM_WRAPPERS or type(model).__module__.split(".")[0] != "lightgbm":
            raise ValidationError(
                f"{type(model).__qualname__} subclasses a LightGBM estimator; only "
                f"{list(_LGBM_WRAPPERS)} can be rebuilt from LightGBM's text format. Register "
                "model.booster_ instead, or pass allow_pickle=True."
            )
        options = {
            "wrapper": cls,
            "params": _json_params(model, cls),
            "n_features_in": int(model.n_features_in_),
            "fitted_with_feature_names": bool(model._fitted_with_feature_names),
            # the text file holds the trees up to the best iteration; keep the number too
            "best_iteration": int(model.best_iteration_),
        }
        if isinstance(model, lgb.LGBMClassifier):
            options["classes"] = [_plain(c) for c in model.classes_]
        booster = model.booster_
    booster.save_model(str(path))
    return SavedModel(path, "lightgbm", "lightgbm", _libraries("lightgbm"), options)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value


def _load_lightgbm(path: Path, options: Mapping[str, Any]) -> Any:
    lgb = _module("lightgbm", "lightgbm", "ml", "Loading a LightGBM model")
    booster = lgb.Booster(model_file=str(path))
    wrapper = options.get("wrapper")
    if wrapper is None:
        return booster
    if wrapper not in _LGBM_WRAPPERS:
        raise ValidationError(f"Unknown LightGBM wrapper {wrapper!r}; expected {_LGBM_WRAPPERS}.")
    # Rebuild the fitted scikit-learn wrapper around the booster: the attributes set here are
    # the ones LGBMModel.fit / LGBMClassifier.fit set (checked against lightgbm 4.x).
    model = getattr(lgb, wrapper)(**options.get("params", {}))
    model._Booster = booster
    model._n_features = booster.num_feature()
    model._n_features_in = int(options.get("n_features_in", booster.num_feature()))
    model._fitted_with_feature_names = bool(options.get("fitted_with_feature_names", False))
    best = int(options.get("best_iteration", booster.best_iteration))
    if best > 0:
        booster.best_iteration = best
    model._best_iteration = best
    model._best_score = booster.best_score
    model._evals_result = {}
    # fit() resolves a default objective (None) to the booster's ("binary", "regression", ...)
    model._objective = model.objective or booster.params.get("objective")
    if "classes" in options:
        np = importlib.import_module("numpy")
        sk_lgb = importlib.import_module("lightgbm.sklearn")
        model._le = sk_lgb._LGBMLabelEncoder().fit(np.asarray(options["classes"]))
        model._classes = model._le.classes_
        model._n_classes = len(model._classes)
        model._class_map = dict(
            zip(model._le.classes_, model._le.transform(model._le.classes_), strict=True)
        )
    model.fitted_ = True
    return model


# ---------------------------------------------------------------------------- XGBoost
def _save_xgboost(model: Any, path: Path) -> SavedModel:
    xgb = importlib.import_module("xgboost")
    options: dict[str, Any] = {}
    if isinstance(model, xgb.XGBModel):
        cls = type(model).__name__
        if cls not in _XGB_WRAPPERS or type(model).__module__.split(".")[0] != "xgboost":
            raise ValidationError(
                f"{type(model).__qualname__} subclasses an XGBoost estimator; only "
                f"{list(_XGB_WRAPPERS)} can be rebuilt from XGBoost's JSON format. Register "
                "model.get_booster() instead, or pass allow_pickle=True."
            )
        options["wrapper"] = cls
    # Both Booster and the scikit-learn wrappers write their own JSON (the wrappers include
    # their scikit-learn attributes) when the file name ends in .json.
    model.save_model(str(path))
    return SavedModel(path, "xgboost", "xgboost", _libraries("xgboost"), options)


def _load_xgboost(path: Path, options: Mapping[str, Any]) -> Any:
    xgb = _module("xgboost", "xgboost", "ml", "Loading an XGBoost model")
    wrapper = options.get("wrapper")
    if wrapper is None:
        return xgb.Booster(model_file=str(path))
    if wrapper not in _XGB_WRAPPERS:
        raise ValidationError(f"Unknown XGBoost wrapper {wrapper!r}; expected {_XGB_WRAPPERS}.")
    model = getattr(xgb, wrapper)()
    model.load_model(str(path))
    return model


# ---------------------------------------------------------------------------- ONNX, pickle
def _save_onnx(model: Any, path: Path) -> SavedModel:
    if isinstance(model, bytes | bytearray | memoryview):
        data = bytes(model)
        try:
            onnx = importlib.import_module("onnx")
        except ImportError:
            onnx = None  # cannot check it: stored as given
        if onnx is not None:
            try:
                onnx.load_model_from_string(data)
            except Exception as e:  # protobuf raises DecodeError, not a ValueError
                raise ValidationError(
                    f"These {len(data)} bytes are not an ONNX model ({e}). Pass the bytes of "
                    "a .onnx file or an onnx.ModelProto."
                ) from e
    else:
        data = model.SerializeToString()
    path.write_bytes(data)
    return SavedModel(path, "onnx", "onnx", _libraries("onnx", "onnxruntime"))


def _save_pickle(model: object, path: Path) -> SavedModel:
    import pickle

    with path.open("wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    root = type(model).__module__.split(".")[0]
    framework = "python" if root == "builtins" else root
    return SavedModel(path, "pickle", framework, _libraries())
