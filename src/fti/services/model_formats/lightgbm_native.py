"""LightGBM models served through LightGBM's C library, without its Python package.

``import lightgbm`` imports scikit-learn, SciPy and pandas when they are installed (its
``compat`` module): about a second of a model server's start, for a model that only ever
predicts a handful of float rows. The library ``lib_lightgbm`` that the package ships is
loaded here directly (found where the package's own ``libpath`` looks, without running the
package), and :class:`NativeLightGBM` calls the functions of LightGBM's C API that
``Booster.predict`` calls for a 2-D float64 array, with the same arguments: the predictions are
the same numbers (tests compare them exactly with ``lightgbm``'s). It also skips the Python
layer's per-call work (a predictor object, a parameter string, array checks).

Only models whose answer is a single number per row take this path: a ``Booster`` or a
``LGBMRegressor`` / ``LGBMRanker`` / ``LGBMModel`` with one output, a binary
``LGBMClassifier``. Anything else (multiclass, a library that cannot be found) is loaded by the
``lightgbm`` package as before (:func:`native_model` returns None).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NativeLightGBM", "native_model"]

_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64
_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL
_ROW_MAJOR = 1
# The prediction parameters fti's predictor passes to Booster.predict: a request predicts a
# few rows, where an OpenMP pool per call costs more than it saves.
_PARAMS = b"num_threads=1"
_ONE_OUTPUT_WRAPPERS = (None, "LGBMModel", "LGBMRegressor", "LGBMRanker", "LGBMClassifier")


def _library_path() -> Path | None:
    """Where ``lightgbm.libpath.find_lib_path`` looks, without importing ``lightgbm``."""
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    if sys.platform == "win32":
        names = ["lib_lightgbm.dll"]
    elif sys.platform == "darwin":
        names = ["lib_lightgbm.dylib", "lib_lightgbm.so"]
    else:
        names = ["lib_lightgbm.so"]
    for folder in (package.parent, package / "bin", package / "lib"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


@functools.cache
def _library() -> ctypes.CDLL | None:
    """The loaded library, or None if there is none to load (looked for once)."""
    path = _library_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:  # e.g. its OpenMP runtime is missing: the package fails too
        return None
    lib.LGBM_GetLastError.restype = ctypes.c_char_p
    lib.LGBM_BoosterPredictForMat.argtypes = [
        ctypes.c_void_p,  # handle
        ctypes.c_void_p,  # data
        ctypes.c_int,  # data type
        ctypes.c_int32,  # rows
        ctypes.c_int32,  # columns
        ctypes.c_int,  # row major
        ctypes.c_int,  # predict type
        ctypes.c_int,  # start iteration
        ctypes.c_int,  # number of iterations
        ctypes.c_char_p,  # parameters
        ctypes.POINTER(ctypes.c_int64),  # out length
        ctypes.c_void_p,  # out results (double*)
    ]
    return lib


def _check(lib: ctypes.CDLL, code: int) -> None:
    if code != 0:
        message = lib.LGBM_GetLastError()
        raise ValueError(f"LightGBM: {message.decode('utf-8', 'replace') if message else code}")


class NativeLightGBM:
    """A LightGBM model loaded through the C library; ``predict(X)`` is ``Booster.predict(X,
    num_threads=1)`` for a 2-D float array. ``classes_`` is set for a binary classifier,
    ``feature_names_in_`` when the scikit-learn wrapper was fitted on named columns (as the
    wrapper has them)."""

    def __init__(
        self,
        lib: ctypes.CDLL,
        text: bytes,
        *,
        num_iteration: int,
        classes: list[Any] | None = None,
        named: bool = False,
    ) -> None:
        self._lib = lib
        self._handle = ctypes.c_void_p()
        iterations = ctypes.c_int(0)
        _check(
            lib,
            lib.LGBM_BoosterLoadModelFromString(
                ctypes.c_char_p(text), ctypes.byref(iterations), ctypes.byref(self._handle)
            ),
        )
        self._num_iteration = num_iteration
        out = ctypes.c_int(0)
        _check(lib, lib.LGBM_BoosterGetNumClasses(self._handle, ctypes.byref(out)))
        self.num_class = out.value
        _check(lib, lib.LGBM_BoosterGetNumFeature(self._handle, ctypes.byref(out)))
        self.num_feature = out.value
        self.classes_ = None if classes is None else np.unique(np.asarray(classes))
        if named:
            self.feature_names_in_ = np.array(self._feature_names())

    def _feature_names(self) -> list[str]:
        n = self.num_feature
        size = 255
        while True:
            buffers = [ctypes.create_string_buffer(size) for _ in range(n)]
            pointers = (ctypes.c_char_p * n)(
                *(ctypes.c_char_p(ctypes.addressof(b)) for b in buffers)
            )
            got, needed = ctypes.c_int(0), ctypes.c_size_t(0)
            _check(
                self._lib,
                self._lib.LGBM_BoosterGetFeatureNames(
                    self._handle,
                    ctypes.c_int(n),
                    ctypes.byref(got),
                    ctypes.c_size_t(size),
                    ctypes.byref(needed),
                    pointers,
                ),
            )
            if needed.value <= size:
                return [b.value.decode("utf-8") for b in buffers[: got.value]]
            size = needed.value

    def predict(self, X: np.ndarray) -> np.ndarray:
        """One number per row of ``X`` (the positive class's probability for a classifier)."""
        data = np.ascontiguousarray(X, dtype=np.float64)
        if data.ndim != 2:
            raise ValueError("LightGBM: the input must be a 2-D array of rows.")
        rows, cols = data.shape
        out = np.empty(rows, dtype=np.float64)
        got = ctypes.c_int64(0)
        # One output per row (checked at load); LightGBM checks the number of columns.
        _check(
            self._lib,
            self._lib.LGBM_BoosterPredictForMat(
                self._handle,
                data.ctypes.data,
                _DTYPE_FLOAT64,
                rows,
                cols,
                _ROW_MAJOR,
                _PREDICT_NORMAL,
                0,
                self._num_iteration,
                _PARAMS,
                ctypes.byref(got),
                out.ctypes.data,
            ),
        )
        if got.value != rows:
            raise ValueError(f"LightGBM: {got.value} predictions for {rows} rows, not one per row.")
        return out

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._lib.LGBM_BoosterFree(handle)
            handle.value = None


def native_model(text: bytes, options: Mapping[str, Any]) -> NativeLightGBM | None:
    """The model stored as ``text`` (LightGBM's text format, with fti's ``format_options``) as
    a :class:`NativeLightGBM`, or None when it does not qualify (see the module docstring)."""
    wrapper = options.get("wrapper")
    if wrapper not in _ONE_OUTPUT_WRAPPERS:
        return None
    classes = options.get("classes") if wrapper == "LGBMClassifier" else None
    if wrapper == "LGBMClassifier" and (classes is None or len(set(classes)) != 2):
        return None
    lib = _library()
    if lib is None:
        return None
    # Booster.predict's default: the best iteration when one is set (the wrapper's loader
    # sets it from the options), else all of them (-1).
    best = int(options.get("best_iteration", 0) or 0)
    model = NativeLightGBM(
        lib,
        text,
        num_iteration=best if best > 0 else -1,
        classes=classes,
        named=wrapper is not None and bool(options.get("fitted_with_feature_names", False)),
    )
    return model if model.num_class == 1 else None
