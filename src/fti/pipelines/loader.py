"""Load ``FILE.py:FUNCTION`` references (the form ``fti run`` and schedules use)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from fti.errors import NotFoundError, ValidationError
from fti.pipelines.decorators import Pipeline

__all__ = ["load_pipeline", "split_ref"]

_modules: dict[tuple[str, float], ModuleType] = {}


def split_ref(ref: str) -> tuple[Path, str]:
    """``"flows/weather.py:hourly"`` -> (path, "hourly")."""
    path, sep, func = ref.rpartition(":")
    if not sep or not path or not func:
        raise ValidationError(
            f"Invalid pipeline reference {ref!r}: use FILE.py:FUNCTION, e.g. pipelines.py:weather."
        )
    return Path(path), func


def _load_module(path: Path) -> ModuleType:
    resolved = path.resolve()
    key = (str(resolved), resolved.stat().st_mtime)
    if key in _modules:
        return _modules[key]
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    module_name = f"fti_user_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ValidationError(f"Cannot import {str(path)!r} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    # Let the file import its sibling modules, as `python FILE.py` would.
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    _modules[key] = module
    return module


def load_pipeline(ref: str) -> Pipeline:
    """The pipeline ``FUNCTION`` defined in ``FILE.py``; clear errors when either is missing."""
    path, func = split_ref(ref)
    if not path.is_file():
        raise NotFoundError(
            f"Pipeline file {str(path)!r} does not exist (looked in {str(Path.cwd())!r}). "
            "Check the path; it is relative to the current folder."
        )
    module = _load_module(path)
    found = getattr(module, func, None)
    pipelines = sorted(n for n, v in vars(module).items() if isinstance(v, Pipeline))
    if found is None:
        raise NotFoundError(
            f"{str(path)!r} has no function {func!r}. Pipelines in that file: "
            f"{pipelines or 'none'}."
        )
    if not isinstance(found, Pipeline):
        raise ValidationError(
            f"{func!r} in {str(path)!r} is not marked as a pipeline. Decorate it with "
            "@fti.feature_pipeline, @fti.training_pipeline or @fti.inference_pipeline. "
            f"Pipelines in that file: {pipelines or 'none'}."
        )
    return found
