"""Which types a skops model file may make Python import and build: decided here, in code.

A skops file names the types it needs; loading it imports them and calls some of them (as
constructors) with arguments taken from the file. So whoever can write the file *and* say which
types to trust can run code. The registry record that carries a model's sha256 must therefore
not also carry its trust: an attacker who can edit the registry can rewrite both. fti trusts
only what this module allows, which no stored value can extend:

- a fixed set of exact names (``collections.OrderedDict``, ``functools.partial``, ``numpy.dtype``,
  and a few scikit-learn functions that fitted estimators reference);
- **classes** defined in scikit-learn, the model modules of LightGBM and XGBoost, or
  ``scipy.sparse`` (not their test or dataset modules), and NumPy scalar and dtype classes.
  The name is resolved to the object it denotes and the object itself is checked (a class,
  defined in an allowed module), because a module may re-export a function or class of another
  library under its own name, and a function named as a constructor would be called with
  arguments from the file.

Anything else is refused unless the *caller* lists it in ``trusted=`` at load time.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from fti.errors import ValidationError

__all__ = ["ALLOWED_PREFIXES", "check_skops_types", "is_allowed_type"]

# Modules whose *classes* may be built from a skops file: scikit-learn, the model modules of
# LightGBM and XGBoost (not, e.g., XGBoost's tracker, whose constructor opens a socket), and
# scipy's sparse matrices.
ALLOWED_PREFIXES = (
    "sklearn.",
    "lightgbm.basic.",
    "lightgbm.sklearn.",
    "xgboost.core.",
    "xgboost.sklearn.",
    "scipy.sparse.",
)
# Exact names that are not classes of those libraries but are harmless to build or reference.
_EXACT = frozenset(
    {
        "builtins.bytearray",
        "builtins.bytes",
        "builtins.complex",
        "builtins.frozenset",
        "builtins.slice",
        "collections.OrderedDict",
        "collections.defaultdict",
        "functools.partial",  # building a partial calls nothing; its function is checked too
        "numpy.dtype",
        "sklearn.utils.validation.check_array",  # HistGradientBoosting's categorical encoder
    }
)
# Parts of the allowed libraries that are not model code.
_EXCLUDED_PARTS = frozenset({"tests", "_testing", "externals", "datasets", "_build_utils"})


def _resolve(name: str) -> Any:
    """The object ``module.attr`` denotes, as skops would resolve it; None if it does not."""
    module, _, attr = name.rpartition(".")
    if not module or not attr:
        return None
    try:
        return getattr(importlib.import_module(module), attr, None)
    except Exception:  # an import that fails for any reason: not loadable, not trusted
        return None


def _numpy_class(obj: Any) -> bool:
    np = importlib.import_module("numpy")
    return isinstance(obj, type) and issubclass(obj, np.generic | np.dtype)


def is_allowed_type(name: str) -> bool:
    """True if fti trusts the type (or function) ``name`` found in a skops file by itself."""
    if name in _EXACT:
        return True
    module = name.rpartition(".")[0]
    if not module:
        return False
    if module.split(".")[0] == "numpy":
        obj = _resolve(name)
        return _numpy_class(obj) and (obj.__module__ or "").split(".")[0] == "numpy"
    if not _allowed_module(module):
        return False
    obj = _resolve(name)
    # The object must be a class defined in an allowed module: a function, or a class of another
    # library (or of a test module) re-exported under this name, is refused.
    return isinstance(obj, type) and _allowed_module(obj.__module__ or "")


def _allowed_module(module: str) -> bool:
    parts = module.split(".")
    return f"{module}.".startswith(ALLOWED_PREFIXES) and not _EXCLUDED_PARTS.intersection(parts)


def check_skops_types(found: Iterable[str], trusted: Iterable[str], *, what: str) -> list[str]:
    """The types of a skops file to pass to ``skops.io.load(trusted=...)``.

    ``found`` are the types the file needs beyond skops' own defaults; each must be allowed by
    fti or listed by the caller in ``trusted``; else ValidationError naming them.
    """
    given = set(trusted)
    needed = sorted(set(found))
    refused = [t for t in needed if t not in given and not is_allowed_type(t)]
    if refused:
        raise ValidationError(
            f"{what} references types fti does not trust: {refused}. fti loads by itself only "
            "scikit-learn, LightGBM, XGBoost, scipy.sparse and NumPy classes; loading any other "
            "type can run code from the file. If you trust where this file came from, load it "
            f"with mv.load(trusted={refused!r})."
        )
    return needed
