"""What a fitted model says about itself: the features it was fitted on and whether it handles
missing values, read from its attributes and tags (nothing is imported, nothing is run)."""

from __future__ import annotations

import importlib
from typing import Any

from fti.services.model_formats.lightgbm_native import NativeLightGBM

__all__ = ["from_package", "handles_missing_values", "model_feature_info"]


def from_package(model: object, package: str) -> bool:
    """True if the model's class (or a base class) comes from ``package``; imports nothing."""
    return any(
        (c.__module__ or "").split(".")[0] == package
        for c in type(model).__mro__
        if c is not object
    )


def model_feature_info(model: Any) -> tuple[list[str] | None, int | None]:
    """The feature names and count the model was fitted on, where it records them.

    Reads scikit-learn's ``feature_names_in_`` / ``n_features_in_`` (also LightGBM and XGBoost
    wrappers), a LightGBM ``Booster``'s ``feature_name()`` / ``num_feature()`` and an XGBoost
    ``Booster``'s ``feature_names`` / ``num_features()``. Generated names (``Column_0``,
    ``f0``) mean the model was fitted without names and only the count is returned.
    """
    names: Any = None
    count: Any = None
    if from_package(model, "lightgbm") and hasattr(model, "num_feature"):
        count = model.num_feature()
        generated = [f"Column_{i}" for i in range(count)]
        names = list(model.feature_name())
        if names == generated:
            names = None
    elif from_package(model, "xgboost") and hasattr(model, "num_features"):
        count = model.num_features()
        names = model.feature_names
    else:
        try:
            names = getattr(model, "feature_names_in_", None)
        except Exception:  # a wrapper's property may raise instead of AttributeError
            names = None
        try:
            count = getattr(model, "n_features_in_", None)
        except Exception:
            count = None
    out_names = None if names is None else [str(n) for n in names]
    out_count = None if count is None else int(count)
    return out_names, out_count


def handles_missing_values(model: Any) -> bool:
    """True if ``model`` predicts on inputs with missing values (NaN) by rules of its own.

    Decided from what the model is, never by trying it (a model may accept NaN and answer
    nonsense): LightGBM and XGBoost models always (learned default directions); a
    scikit-learn estimator when its ``allow_nan`` tag says so (trees, forests,
    HistGradientBoosting; not linear models, SVMs, ...); a pipeline when an imputer of NaN comes
    before any step that refuses NaN. Anything else (ONNX, pickled objects without
    scikit-learn tags): False, so the server refuses vectors with missing values (HTTP 422)
    instead of guessing.
    """
    lightgbm = from_package(model, "lightgbm") or isinstance(model, NativeLightGBM)
    if lightgbm or from_package(model, "xgboost"):
        return True
    steps = getattr(model, "steps", None)
    if from_package(model, "sklearn") and isinstance(steps, list):  # a Pipeline
        for step in steps:
            estimator = step[1] if isinstance(step, tuple) and len(step) >= 2 else step
            if estimator is None or estimator == "passthrough":
                continue
            if _imputes_nan(estimator):
                return True
            if not handles_missing_values(estimator):
                return False
        return True
    return _allow_nan_tag(model)


def _imputes_nan(step: Any) -> bool:
    """A scikit-learn imputer whose missing marker is NaN: nothing missing comes out of it."""
    cls = type(step)
    if not cls.__module__.startswith("sklearn.impute") or cls.__name__ == "MissingIndicator":
        return False
    marker = getattr(step, "missing_values", None)
    return isinstance(marker, float) and marker != marker


def _allow_nan_tag(model: Any) -> bool:
    if not hasattr(model, "__sklearn_tags__"):
        return False
    try:
        get_tags = importlib.import_module("sklearn.utils").get_tags
        return bool(get_tags(model).input_tags.allow_nan)
    except Exception:  # an estimator with broken tags: treat it as refusing NaN
        return False
