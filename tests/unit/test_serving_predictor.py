"""The server's prediction function gives what the model's own predict / predict_proba give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fti.services.model_formats import predictor


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "c", "d"])
    X.loc[::7, "b"] = np.nan
    y = (X["a"] + rng.normal(size=300) > 0).astype(int).to_numpy()
    return X, y


@pytest.mark.parametrize("kind", ["lightgbm", "sklearn", "regressor", "tree"])
def test_predictor_matches_the_model(kind: str) -> None:
    X, y = _data()
    if kind == "lightgbm":
        import lightgbm as lgb

        model = lgb.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=2).fit(X, y)
    elif kind == "sklearn":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(max_iter=10).fit(X, y)
    elif kind == "tree":
        from sklearn.tree import DecisionTreeClassifier

        model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    else:
        from sklearn.tree import DecisionTreeRegressor

        model = DecisionTreeRegressor(max_depth=3).fit(X, y)
    rows = X.head(50).to_numpy().tolist()
    labels, proba = predictor(model, list(X.columns))(rows)
    assert labels == model.predict(X.head(50)).tolist()
    if kind == "regressor":
        assert proba is None
    else:
        assert proba is not None
        assert np.allclose(proba, model.predict_proba(X.head(50))[:, 1], rtol=0, atol=1e-12)


def test_columns_in_another_order_go_through_a_frame() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    X = X.fillna(0.0)
    model = LogisticRegression().fit(X, y)
    order = ["d", "c", "b", "a"]
    labels, proba = predictor(model, order)(X[order].head(20).to_numpy().tolist())
    assert labels == model.predict(X.head(20)).tolist()
    assert proba is not None
    assert np.allclose(proba, model.predict_proba(X.head(20))[:, 1], rtol=0, atol=1e-12)


def test_a_model_fitted_on_other_features_is_refused_at_load() -> None:
    from sklearn.linear_model import LogisticRegression

    import fti

    X, y = _data()
    model = LogisticRegression().fit(X.fillna(0.0), y)
    with pytest.raises(fti.ValidationError, match="fitted on the features"):
        predictor(model, ["a", "b", "c", "e"])


def test_a_tree_answers_non_finite_inputs_as_the_model_does() -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = _data()
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X.fillna(0.0), y)
    predict = predictor(model, list(X.columns))
    for bad in (np.nan, np.inf, 1e300):  # 1e300 overflows the tree's float32
        row = [0.0, bad, 0.0, 0.0]
        try:
            expected: object = model.predict(np.array([row])).tolist()
        except ValueError as e:
            expected = type(e)
        try:
            got: object = predict([row])[0]
        except ValueError as e:
            got = type(e)
        assert got == expected, bad


@pytest.mark.parametrize("kind", ["lightgbm", "tree", "linear"])
def test_named_models_predict_without_warnings_and_leave_the_filters_alone(kind: str) -> None:
    """A model fitted on a frame gets plain arrays (in its column order): scikit-learn's
    "no valid feature names" warning is silenced around the call only, never process-wide."""
    import warnings

    X, y = _data()
    X = X.fillna(0.0)
    if kind == "lightgbm":
        import lightgbm as lgb

        model: object = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    elif kind == "tree":
        from sklearn.tree import DecisionTreeClassifier

        model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    else:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression().fit(X, y)
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inside = list(warnings.filters)
        labels, _ = predictor(model, list(X.columns))(X.head(5).to_numpy().tolist())
        assert list(warnings.filters) == inside  # nothing added for the process
    assert labels == model.predict(X.head(5)).tolist()  # type: ignore[attr-defined]
    assert [str(w.message) for w in caught] == []
    assert list(warnings.filters) == before
