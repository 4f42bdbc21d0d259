"""Models as files and as prediction functions, per model format.

============  ===========  ==========================================================
format        file         what
============  ===========  ==========================================================
lightgbm      model.txt    a LightGBM ``Booster`` or scikit-learn wrapper (``LGBMModel``,
                           ``LGBMClassifier``, ...): LightGBM's own text format; the wrapper's
                           parameters and classes are kept in ``format_options`` (JSON)
xgboost       model.json   an XGBoost ``Booster`` or scikit-learn wrapper: XGBoost's own JSON
onnx          model.onnx   an ``onnx.ModelProto`` or serialized ONNX ``bytes``, stored as is
skops         model.skops  any scikit-learn estimator or pipeline, through ``skops.io``
pickle        model.pkl    anything else, only with ``allow_pickle=True`` (save and load)
============  ===========  ==========================================================

- :mod:`~fti.services.model_formats.files`: save and load in the safe format of each kind;
- :mod:`~fti.services.model_formats.introspection`: the features a model was fitted on, and
  whether it handles missing values;
- :mod:`~fti.services.model_formats.predictors`: the prediction function the model server
  calls per request, with the fast paths of the formats that have one (a LightGBM booster,
  scikit-learn trees).
"""

from fti.services.model_formats.files import SavedModel, load_model, save_model
from fti.services.model_formats.introspection import handles_missing_values, model_feature_info
from fti.services.model_formats.predictors import Predict, Prediction, predictor

__all__ = [
    "Predict",
    "Prediction",
    "SavedModel",
    "handles_missing_values",
    "load_model",
    "model_feature_info",
    "predictor",
    "save_model",
]
