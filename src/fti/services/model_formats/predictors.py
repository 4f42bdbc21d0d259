"""The prediction function of a loaded model: vectors in, ``(predictions, probabilities)`` out.

What the model server calls per request (a handful of rows), so each format's cheapest
correct call is chosen once, at load:

- a LightGBM scikit-learn classifier predicts through its booster (the wrapper spends ~2 ms
  per call re-validating; the booster gives the same probabilities in tens of microseconds);
- a scikit-learn tree gets a finite float32 array without its per-call input check (~300 us,
  most of a request): that array is exactly what the check would hand the tree; anything else
  (NaN, infinity, objects) takes the checked path;
- every other model gets its own ``predict`` / ``predict_proba``.

Vectors go in as a float array (objects if not numeric), never a pandas frame (building one
costs milliseconds per request).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from fti.errors import ValidationError
from fti.services.model_formats.lightgbm_native import NativeLightGBM

__all__ = ["Predict", "Prediction", "predictor"]

Prediction = tuple[list[Any], list[float] | None]
Predict = Callable[[list[list[Any]]], Prediction]

# scikit-learn warns when a model fitted on named columns gets a plain array; the array carries
# the fitted order (checked at load), so the warning has nothing to say.
_UNNAMED = "X does not have valid feature names"


def _single_threaded(model: Any) -> None:
    # A request predicts a handful of rows: a thread pool per call (LightGBM, forests) costs far
    # more than it saves, and with several workers the pools fight for the cores.
    get_params = getattr(model, "get_params", None)
    if callable(get_params) and "n_jobs" in get_params(deep=False):
        model.set_params(n_jobs=1)


def _permutation(model: Any, columns: list[str]) -> tuple[bool, list[int] | None]:
    """(fitted on named columns, the permutation from ``columns`` to the fitted order or None
    when it is the same). Other names are an error here, at load, not at the first request."""
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is None:
        return False, None
    fitted = [str(n) for n in fitted_names]
    if sorted(fitted) != sorted(columns):
        raise ValidationError(
            f"The model was fitted on the features {fitted}, but the feature view gives "
            f"{columns}. Register the model with the feature view and training dataset it "
            "was trained on."
        )
    return True, None if fitted == columns else [columns.index(n) for n in fitted]


def _lightgbm_booster(model: Any) -> Any:
    """The booster of a LightGBM scikit-learn model, None for anything else."""
    if not type(model).__module__.startswith("lightgbm"):
        return None
    return getattr(model, "booster_", None)


def _sklearn_tree(model: Any) -> bool:
    return type(model).__module__.startswith("sklearn.tree") and hasattr(model, "tree_")


def predictor(model: Any, names: Sequence[str]) -> Predict:
    """``model.predict`` over vectors -> ``(predictions, probabilities)``; probabilities are
    those of the positive class for binary classifiers with ``predict_proba``, else None.

    A model fitted on named columns (scikit-learn's ``feature_names_in_``) gets its columns in
    its own order; other names are a ValidationError now.

    >>> predict = predictor(model, ["distance", "carrier_AA"])                # doctest: +SKIP
    >>> predict([[1.5, 0.0]])                                                 # doctest: +SKIP
    ([1], [0.83])
    """
    import numpy as np

    columns = list(names)
    if isinstance(model, NativeLightGBM):
        return _native_predictor(model, columns)
    _single_threaded(model)
    named, perm = _permutation(model, columns)
    classes = getattr(model, "classes_", None)
    binary = (
        callable(getattr(model, "predict_proba", None))
        and classes is not None
        and len(classes) == 2
    )
    booster = _lightgbm_booster(model) if binary else None
    tree = _sklearn_tree(model)

    def checked(method: Callable[..., Any], X: Any) -> Any:
        """A scikit-learn call that validates its input (and may warn about the names)."""
        if not named:
            return np.asarray(method(X))
        with warnings.catch_warnings():  # only around this call: no process-wide filter
            warnings.filterwarnings("ignore", message=_UNNAMED, category=UserWarning)
            return np.asarray(method(X))

    def unchecked(X: Any) -> Any:
        if not tree or X.dtype != np.float64:
            return None
        with np.errstate(over="ignore"):  # an overflow is refused by the checked path
            X32 = np.ascontiguousarray(X, dtype=np.float32)
        return X32 if np.isfinite(X32).all() else None

    def predict(vectors: list[list[Any]]) -> Prediction:
        try:
            X: Any = np.array(vectors, dtype=np.float64)
        except (TypeError, ValueError):
            X = np.array(vectors, dtype=object)
        if perm is not None:
            X = X[:, perm]
        X32 = unchecked(X)
        # The fast paths validate nothing, so they have nothing to warn about either.
        if binary:
            if booster is not None:
                proba = np.asarray(booster.predict(X, num_threads=1))
            elif X32 is not None:
                proba = np.asarray(model.predict_proba(X32, check_input=False))[:, 1]
            else:
                proba = checked(model.predict_proba, X)[:, 1]
            return _binary(classes, proba)
        if X32 is not None:
            return list(np.asarray(model.predict(X32, check_input=False)).tolist()), None
        return list(checked(model.predict, X).tolist()), None

    return predict


def _native_predictor(model: NativeLightGBM, columns: list[str]) -> Predict:
    """What :func:`predictor` gives for the LightGBM model as loaded (booster or wrapper),
    through the C library: the same numbers, the same labels."""
    import numpy as np

    _, perm = _permutation(model, columns)
    classes = model.classes_

    def predict(vectors: list[list[Any]]) -> Prediction:
        X = np.array(vectors, dtype=np.float64)
        if perm is not None:
            X = X[:, perm]
        out = model.predict(X)
        if classes is None:
            return list(out.tolist()), None
        return _binary(classes, out)

    return predict


def _binary(classes: Any, proba: Any) -> Prediction:
    """Labels and probabilities of a binary classifier from the positive class's probability:
    argmax of (1 - p, p), as ``predict`` does (a tie goes to the first class)."""
    import numpy as np

    labels = np.asarray(classes)[(proba > 0.5).astype(np.int64)]
    return list(labels.tolist()), [float(x) for x in proba]
