"""Model-dependent transformations: statistics against plain-Python oracles, batch == row path,
null/NaN/unseen-category rules, one-hot naming, and storage by reference (no pickle)."""

from __future__ import annotations

import json
import math
import statistics
import struct
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fti
from fti.definitions.transformations import (
    CustomTransformation,
    Transformation,
    apply_transformations,
    apply_transformations_row,
    fit_transformations,
    transformation_from_dict,
    transformations_from_dict,
    transformations_to_dict,
)
from fti.errors import NotFoundError, ValidationError

EXAMPLES = settings(max_examples=200, deadline=None)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
# Mostly finite numbers, sometimes null or NaN; at least one finite value so fitting works.
specials = st.sampled_from([None, math.nan, math.inf, -math.inf])
numbers = st.lists(st.one_of(finite, finite, finite, specials), max_size=40)
fittable = st.tuples(finite, numbers).map(lambda t: [t[0], *t[1]])
ints = st.lists(st.one_of(st.integers(-(2**62), 2**62), st.none()), min_size=1, max_size=30).filter(
    lambda xs: any(x is not None for x in xs)
)
words = st.text(alphabet="aAbB _-.é1", max_size=4)
categories = st.lists(st.one_of(words, st.none()), min_size=1, max_size=30)


# --------------------------------------------------------------------------- oracles
def clean(values: list[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    """Linear-interpolation quartiles (numpy's default), written out by hand."""
    s = sorted(xs)

    def q(p: float) -> float:
        pos = p * (len(s) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return q(0.25), q(0.5), q(0.75)


def close(a: float, b: float, scale: float = 1.0) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, scale))


def same_bits(a: Any, b: Any) -> bool:
    """Equal to the last bit (NaN equals NaN; -0.0 differs from 0.0)."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


def batch_and_rows(
    t: Transformation, column: str, table: pa.Table, stats: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    batch = apply_transformations({column: t}, {column: stats}, table).to_pylist()
    rows = [apply_transformations_row({column: t}, {column: stats}, r) for r in table.to_pylist()]
    return batch, rows


def assert_rows_equal_batch(batch: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    assert len(batch) == len(rows)
    for b, r in zip(batch, rows, strict=True):
        assert list(b) == list(r)
        for k in b:
            assert same_bits(b[k], r[k]), (k, b[k], r[k])


# --------------------------------------------------------------------------- fitted statistics
@EXAMPLES
@given(fittable)
def test_standard_scaler_statistics_match_python_oracle(values: list[Any]) -> None:
    stats = fti.standard_scaler().fit(pa.chunked_array([pa.array(values, pa.float64())]))
    json.dumps(stats, allow_nan=False)  # finite: storable in any registry (JSONB too)
    xs = clean(values)
    scale = max(abs(x) for x in xs)
    assert close(stats["mean"], statistics.mean(xs), scale)
    assert close(stats["std"], statistics.pstdev(xs), scale)


@EXAMPLES
@given(fittable)
def test_min_max_and_robust_statistics_match_python_oracle(values: list[Any]) -> None:
    col = pa.array(values, pa.float64())
    xs = clean(values)
    mm = fti.min_max_scaler().fit(col)
    assert mm == {"min": min(xs), "max": max(xs)}
    q1, _med, q3 = quartiles(xs)
    rb = fti.robust_scaler().fit(col)
    scale = max(abs(x) for x in xs)
    assert close(rb["median"], statistics.median(xs), scale)
    assert close(rb["q1"], q1, scale)
    assert close(rb["q3"], q3, scale)
    if len(xs) >= 2:
        oq1, _, oq3 = statistics.quantiles(xs, n=4, method="inclusive")
        assert close(rb["q1"], oq1, scale)
        assert close(rb["q3"], oq3, scale)


@EXAMPLES
@given(categories)
def test_encoder_categories_are_sorted_distinct_non_null_values(values: list[str | None]) -> None:
    stats = fti.one_hot_encoder().fit(pa.array(values, pa.string()))
    assert stats == {"categories": sorted({v for v in values if v is not None})}


def test_statistics_come_only_from_the_train_split() -> None:
    train = pa.table({"x": [1.0, 2.0, 3.0]})
    test = pa.table({"x": [100.0, 200.0]})
    t = {"x": fti.standard_scaler()}
    fitted = fit_transformations(t, train)
    assert fitted["x"]["mean"] == 2.0
    expected_std = statistics.pstdev([1.0, 2.0, 3.0])
    out = apply_transformations(t, fitted, test).column("x").to_pylist()
    assert out == [(100.0 - 2.0) / expected_std, (200.0 - 2.0) / expected_std]


def test_zero_spread_divides_by_one() -> None:
    col = pa.array([5.0, 5.0, None])
    for t in (fti.standard_scaler(), fti.min_max_scaler(), fti.robust_scaler()):
        stats = t.fit(col)
        assert t.transform(pa.array([5.0, 7.0]), stats)[0].to_pylist() == [0.0, 2.0]
        assert t.transform_value(7.0, stats) == [2.0]


def test_fitting_on_no_values_names_the_column() -> None:
    with pytest.raises(ValidationError, match=r"'x'.*no finite"):
        fit_transformations(
            {"x": fti.standard_scaler()}, pa.table({"x": pa.array([None, math.nan, math.inf])})
        )
    with pytest.raises(ValidationError, match=r"\['mean', 'std'\] overflow"):
        fit_transformations({"x": fti.standard_scaler()}, pa.table({"x": [1.7e308, 1.7e308]}))


def test_scaler_on_a_string_column_is_rejected_with_a_hint() -> None:
    with pytest.raises(ValidationError, match="numeric column"):
        fit_transformations({"s": fti.standard_scaler()}, pa.table({"s": ["a"]}))


# --------------------------------------------------------------------------- batch == row path
NUMERIC_KINDS = [
    fti.standard_scaler(),
    fti.min_max_scaler(),
    fti.robust_scaler(),
    fti.impute_mean(),
    fti.impute_constant(-1.5),
    fti.log_transform(negative="null"),
]


@EXAMPLES
@given(fittable, numbers, st.sampled_from(NUMERIC_KINDS))
def test_numeric_row_path_equals_batch_path_bit_for_bit(
    train: list[Any], data: list[Any], t: Transformation
) -> None:
    fitted = fit_transformations({"x": t}, pa.table({"x": pa.array(train, pa.float64())}))
    # A JSON round trip (as stored in the registry) must not change a single bit.
    fitted = json.loads(json.dumps(fitted))
    table = pa.table({"x": pa.array(data, pa.float64()), "k": list(range(len(data)))})
    batch, rows = batch_and_rows(t, "x", table, fitted["x"])
    assert_rows_equal_batch(batch, rows)


@EXAMPLES
@given(ints, st.sampled_from([fti.standard_scaler(), fti.min_max_scaler(), fti.impute_mean()]))
def test_int_columns_row_path_equals_batch_path(data: list[int | None], t: Transformation) -> None:
    table = pa.table({"x": pa.array(data, pa.int64())})
    fitted = fit_transformations({"x": t}, table)
    batch, rows = batch_and_rows(t, "x", table, fitted["x"])
    assert_rows_equal_batch(batch, rows)


@EXAMPLES
@given(categories, categories, st.sampled_from(["one_hot", "label"]))
def test_encoder_row_path_equals_batch_path(
    train: list[str | None], data: list[str | None], which: str
) -> None:
    t = fti.one_hot_encoder() if which == "one_hot" else fti.label_encoder()
    fitted = fit_transformations({"c": t}, pa.table({"c": pa.array(train, pa.string())}))
    # "k" keeps the row count visible when no category was fitted (zero one-hot columns).
    table = pa.table({"c": pa.array(data, pa.string()), "k": list(range(len(data)))})
    batch, rows = batch_and_rows(t, "c", table, fitted["c"])
    assert_rows_equal_batch(batch, rows)


@EXAMPLES
@given(fittable, numbers)
def test_standard_scaler_output_matches_oracle(train: list[Any], data: list[Any]) -> None:
    t = fti.standard_scaler()
    stats = t.fit(pa.array(train, pa.float64()))
    xs = clean(train)
    mean, std = statistics.mean(xs), statistics.pstdev(xs)
    got = t.transform(pa.array(data, pa.float64()), stats)[0].to_pylist()
    for x, y in zip(data, got, strict=True):
        if x is None:
            assert y is None
        elif math.isnan(x):
            assert math.isnan(y)
        elif std > 1e-6:
            assert math.isclose(y, (x - mean) / std, rel_tol=1e-6, abs_tol=1e-6)


def test_log_transform_matches_math_log1p_exactly() -> None:
    xs = [0.0, 1e-300, 1e-10, 0.5, 1.0, 2.0, 1e6, 1.7e308, math.nan, None]
    got = fti.log_transform().transform(pa.array(xs, pa.float64()), {})[0].to_pylist()
    for x, y in zip(xs, got, strict=True):
        expected = None if x is None else math.log1p(x)
        assert same_bits(y, expected) if x is not None else y is None


def test_log_transform_negative_values() -> None:
    with pytest.raises(ValidationError, match=r"Column 'x'.*-2\.0"):
        apply_transformations({"x": fti.log_transform()}, {"x": {}}, pa.table({"x": [1.0, -2.0]}))
    with pytest.raises(ValidationError, match="negative value -2"):
        fti.log_transform().transform_value(-2, {})
    t = fti.log_transform(negative="null")
    assert t.transform(pa.array([-1.0, 0.0]), {})[0].to_pylist() == [None, 0.0]
    assert t.transform_value(-1.0, {}) == [None]
    with pytest.raises(ValidationError, match="'negative'"):
        fti.log_transform(negative="clip")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- null / NaN rules
def test_scalers_keep_null_and_nan_while_imputers_fill_them() -> None:
    train = pa.table({"x": [1.0, 3.0]})
    data = pa.table({"x": pa.array([None, math.nan, 2.0], pa.float64())})
    scaled = apply_transformations(
        {"x": fti.standard_scaler()}, fit_transformations({"x": fti.standard_scaler()}, train), data
    ).column("x")
    assert scaled[0].as_py() is None
    assert math.isnan(scaled[1].as_py())
    assert scaled[2].as_py() == 0.0
    imputed = apply_transformations({"x": fti.impute_mean()}, {"x": {"mean": 2.0}}, data)
    assert imputed.column("x").to_pylist() == [2.0, 2.0, 2.0]
    const = apply_transformations({"x": fti.impute_constant(0)}, {"x": {"dtype": "float64"}}, data)
    assert const.column("x").to_pylist() == [0.0, 0.0, 2.0]


def test_impute_constant_output_types() -> None:
    table = pa.table(
        {
            "i": pa.array([1, None], pa.int32()),
            "s": ["a", None],
            "f": pa.array([math.nan, None], pa.float32()),
            "j": [2, None],
        }
    )
    ts = {
        "i": fti.impute_constant(7),
        "s": fti.impute_constant("missing"),
        "f": fti.impute_constant(0),
        "j": fti.impute_constant(0.5),
    }
    fitted = json.loads(json.dumps(fit_transformations(ts, table)))
    assert fitted == {
        "i": {"dtype": "int32"},
        "s": {"dtype": "string"},
        "f": {"dtype": "float64"},
        "j": {"dtype": "float64"},
    }
    out = apply_transformations(ts, fitted, table)
    assert out.schema.types == [pa.int32(), pa.string(), pa.float64(), pa.float64()]
    assert out.to_pylist() == [
        {"i": 1, "s": "a", "f": 0.0, "j": 2.0},
        {"i": 7, "s": "missing", "f": 0.0, "j": 0.5},
    ]
    rows = [apply_transformations_row(ts, fitted, r) for r in table.to_pylist()]
    assert_rows_equal_batch(out.to_pylist(), rows)
    for value, column in [("x", "i"), (2**40, "i"), (1.5, "s"), (1, "s")]:
        with pytest.raises(ValidationError, match=rf"Column '{column}'.*impute_constant"):
            fit_transformations({column: fti.impute_constant(value)}, table)
    with pytest.raises(ValidationError, match="not NaN"):
        fti.impute_constant(math.nan)


@EXAMPLES
@given(
    st.lists(st.one_of(st.floats(width=32, allow_nan=True), st.none()), min_size=1, max_size=20),
    st.sampled_from(
        [fti.robust_scaler(), fti.log_transform(negative="null"), fti.impute_constant(3)]
    ),
)
def test_float32_columns_row_path_equals_batch_path(
    data: list[float | None], t: Transformation
) -> None:
    table = pa.table({"x": pa.array(data, pa.float32()), "k": list(range(len(data)))})
    train = pa.table({"x": pa.array([1.0, 2.0, 4.0], pa.float32())})
    fitted = fit_transformations({"x": t}, train)
    batch, rows = batch_and_rows(t, "x", table, fitted["x"])
    assert_rows_equal_batch(batch, rows)


@EXAMPLES
@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=10),
    st.lists(st.one_of(st.integers(-7, 7), st.none()), max_size=20),
    st.sampled_from([fti.one_hot_encoder(), fti.label_encoder(unknown_value=-99)]),
)
def test_int_categories_row_path_equals_batch_path(
    train: list[int], data: list[int | None], t: Transformation
) -> None:
    fitted = fit_transformations({"c": t}, pa.table({"c": pa.array(train, pa.int16())}))
    fitted = json.loads(json.dumps(fitted))
    table = pa.table({"c": pa.array(data, pa.int16()), "k": list(range(len(data)))})
    batch, rows = batch_and_rows(t, "c", table, fitted["c"])
    assert_rows_equal_batch(batch, rows)


# --------------------------------------------------------------------------- encoders
def test_one_hot_names_are_valid_unique_and_deterministic() -> None:
    t = fti.one_hot_encoder()
    cats = ["a b", "a_b", "a-b", "A", "a", "é", "", "x" * 80, "x" * 81]
    stats = t.fit(pa.array(cats))
    names = t.output_names("color", stats)
    assert names == t.output_names("color", json.loads(json.dumps(stats)))
    assert len({n.lower() for n in names}) == len(cats)
    for n in names:
        assert n.isidentifier()
        assert n.isascii()
        assert len(n) <= 63
        assert n.startswith("color_")
    by_cat = dict(zip(stats["categories"], names, strict=True))
    assert by_cat["A"] == "color_A"
    assert by_cat["a"] == "color_a_2"
    assert by_cat["a b"] == "color_a_b"  # sorted first among the three that map to a_b
    assert {by_cat["a-b"], by_cat["a_b"]} == {"color_a_b_2", "color_a_b_3"}


def test_one_hot_unknown_and_null_categories() -> None:
    stats = {"categories": ["JFK", "LGA"]}
    data = pa.table({"origin": ["LGA", "EWR", None], "n": [1, 2, 3]})
    out = apply_transformations({"origin": fti.one_hot_encoder()}, {"origin": stats}, data)
    assert out.column_names == ["origin_JFK", "origin_LGA", "n"]
    assert out.to_pylist() == [
        {"origin_JFK": 0, "origin_LGA": 1, "n": 1},
        {"origin_JFK": 0, "origin_LGA": 0, "n": 2},
        {"origin_JFK": 0, "origin_LGA": 0, "n": 3},
    ]
    strict = {"origin": fti.one_hot_encoder(unknown="error")}
    with pytest.raises(ValidationError, match=r"Column 'origin'.*'EWR'"):
        apply_transformations(strict, {"origin": stats}, data)
    with pytest.raises(ValidationError, match=r"Column 'origin'.*'EWR'"):
        apply_transformations_row(strict, {"origin": stats}, {"origin": "EWR"})
    assert apply_transformations_row(strict, {"origin": stats}, {"origin": None}) == {
        "origin_JFK": 0,
        "origin_LGA": 0,
    }


def test_label_encoder_unknown_value_and_null() -> None:
    stats = {"categories": [10, 20, 30]}
    col = pa.array([30, 10, 99, None], pa.int64())
    assert fti.label_encoder().transform(col, stats)[0].to_pylist() == [2, 0, -1, None]
    t = fti.label_encoder(unknown_value=999)
    assert t.transform(col, stats)[0].to_pylist() == [2, 0, 999, None]
    assert [t.transform_value(v, stats)[0] for v in col.to_pylist()] == [2, 0, 999, None]


def test_encoders_reject_float_columns() -> None:
    with pytest.raises(ValidationError, match="string, integer or bool"):
        fti.one_hot_encoder().fit(pa.array([1.5]))


# --------------------------------------------------------------------------- whole sets
def test_apply_keeps_column_order_and_untouched_columns() -> None:
    table = pa.table({"a": ["x", "y"], "b": [1.0, 3.0], "label": [True, False]})
    ts = {"b": fti.min_max_scaler(), "a": fti.one_hot_encoder()}
    out = apply_transformations(ts, fit_transformations(ts, table), table)
    assert out.column_names == ["a_x", "a_y", "b", "label"]
    assert out.column("b").to_pylist() == [0.0, 1.0]
    assert out.column("label").to_pylist() == [True, False]


def test_missing_columns_and_missing_statistics_are_named() -> None:
    table = pa.table({"a": [1.0]})
    with pytest.raises(ValidationError, match=r"\['zz'\].*Available columns: \['a'\]"):
        fit_transformations({"zz": fti.standard_scaler()}, table)
    with pytest.raises(ValidationError, match="No fitted statistics for column 'a'"):
        apply_transformations({"a": fti.standard_scaler()}, {}, table)
    with pytest.raises(ValidationError, match=r"\['a'\].*row"):
        apply_transformations_row({"a": fti.standard_scaler()}, {"a": {}}, {"b": 1})


def test_one_hot_without_categories_keeps_the_row_count() -> None:
    table = pa.table({"c": pa.array([None, None], pa.string())})
    ts = {"c": fti.one_hot_encoder()}
    out = apply_transformations(ts, fit_transformations(ts, table), table)
    assert out.num_rows == 2
    assert out.num_columns == 0


def test_output_name_clash_is_rejected() -> None:
    table = pa.table({"c": ["x"], "c_x": [1]})
    ts = {"c": fti.one_hot_encoder()}
    with pytest.raises(ValidationError, match="c_x"):
        apply_transformations(ts, fit_transformations(ts, table), table)


def test_uncalled_factory_gets_a_hint() -> None:
    with pytest.raises(ValidationError, match=r"Call it: standard_scaler\(\)"):
        fit_transformations({"x": fti.standard_scaler}, pa.table({"x": [1.0]}))  # type: ignore[dict-item]


def test_builtins_round_trip_through_json() -> None:
    ts: dict[str, Transformation] = {
        "a": fti.standard_scaler(),
        "b": fti.min_max_scaler(),
        "c": fti.robust_scaler(),
        "d": fti.log_transform(negative="null"),
        "e": fti.impute_mean(),
        "f": fti.impute_constant("n/a"),
        "g": fti.one_hot_encoder(unknown="error"),
        "h": fti.label_encoder(unknown_value=-9),
    }
    stored = json.loads(json.dumps(transformations_to_dict(ts)))
    assert transformations_from_dict(stored) == ts
    assert stored["h"] == {"kind": "label_encoder", "unknown_value": -9}
    with pytest.raises(ValidationError, match="Unknown transformation kind 'pca'"):
        transformation_from_dict({"kind": "pca"})
    with pytest.raises(ValidationError, match="Invalid parameters"):
        transformation_from_dict({"kind": "standard_scaler", "with_mean": False})


# --------------------------------------------------------------------------- custom
@fti.transformation(statistics=["mean", "std"])
def clipped_z(value: float, stats: Mapping[str, Any]) -> float:
    z = (value - stats["mean"]) / (stats["std"] or 1.0)
    return max(-3.0, min(3.0, z))


@fti.transformation(statistics=["categories"], dtype="int64", skip_nulls=False)
def rank_or_zero(value: str | None, stats: Mapping[str, Any]) -> int:
    return 0 if value is None else 1 + len([c for c in stats["categories"] if c < value])


@fti.transformation
def doubled(value: float, stats: Mapping[str, Any]) -> float:
    return value * 2


def test_custom_transformation_fits_declared_statistics_and_applies_both_paths() -> None:
    train = pa.table({"x": [0.0, 1.0, 2.0, 3.0, 100.0]})
    fitted = fit_transformations({"x": clipped_z}, train)
    xs = [0.0, 1.0, 2.0, 3.0, 100.0]
    assert set(fitted["x"]) == {"mean", "std"}
    assert close(fitted["x"]["mean"], statistics.mean(xs))
    assert close(fitted["x"]["std"], statistics.pstdev(xs))
    data = pa.table({"x": pa.array([None, -1000.0, 1.0, 1000.0])})
    batch, rows = batch_and_rows(clipped_z, "x", data, fitted["x"])
    assert_rows_equal_batch(batch, rows)
    assert [r["x"] for r in batch][:2] == [None, -3.0]
    assert batch[3]["x"] == 3.0


def test_custom_transformation_options() -> None:
    table = pa.table({"s": ["b", None, "a", "c"]})
    fitted = fit_transformations({"s": rank_or_zero}, table)
    out = apply_transformations({"s": rank_or_zero}, fitted, table).column("s")
    assert out.type == pa.int64()
    assert out.to_pylist() == [2, 0, 1, 3]
    assert rank_or_zero.transform_value(None, fitted["s"]) == [0]
    assert doubled() is doubled
    assert doubled(2.0, {}) == 4.0
    assert doubled.fit(pa.array([1.0])) == {}


def test_custom_transformation_is_stored_by_reference_and_resolved() -> None:
    d = json.loads(json.dumps(clipped_z.to_dict()))
    assert d == {
        "kind": "custom",
        "ref": f"{__name__}:clipped_z",
        "statistics": ["mean", "std"],
        "dtype": "float64",
        "skip_nulls": True,
    }
    assert transformation_from_dict(d) is clipped_z


def test_unimportable_custom_transformation_has_a_clear_error() -> None:
    base = clipped_z.to_dict()
    with pytest.raises(NotFoundError, match="'no_such_module_xyz:f' cannot be imported"):
        transformation_from_dict({**base, "ref": "no_such_module_xyz:f"})
    with pytest.raises(NotFoundError, match="has no attribute 'gone'"):
        transformation_from_dict({**base, "ref": f"{__name__}:gone"})
    with pytest.raises(ValidationError, match="not a transformation"):
        transformation_from_dict({**base, "ref": "math:sqrt"})
    with pytest.raises(ValidationError, match="changed since it was stored"):
        transformation_from_dict({**base, "statistics": ["mean"]})


def test_custom_transformation_must_be_module_level_and_declare_known_statistics() -> None:
    @fti.transformation
    def local(value: float, stats: Mapping[str, Any]) -> float:
        return value

    assert isinstance(local, CustomTransformation)
    assert local.transform_value(1.5, {}) == [1.5]  # usable in-process
    with pytest.raises(ValidationError, match="top level of a module"):
        local.to_dict()
    with pytest.raises(ValidationError, match=r"Unknown statistic\(s\) \['variance'\]"):
        fti.transformation(statistics=["variance"])(lambda v, s: v)


def test_custom_transformation_result_must_fit_dtype() -> None:
    bad = CustomTransformation(fn=lambda v, s: "text", dtype="float64")
    with pytest.raises(ValidationError, match="declared dtype 'float64'"):
        bad.transform(pa.array([1.0]), {})
    with pytest.raises(ValidationError, match="does not convert to float64"):
        bad.transform_value(1.0, {})


def test_custom_transformation_errors_name_the_function_and_value() -> None:
    @fti.transformation(skip_nulls=False)
    def fragile(value: float, stats: Mapping[str, Any]) -> float:
        return value + 1

    with pytest.raises(ValidationError, match=r"Column 'x'.*fragile.*TypeError.*None.*skip_nulls"):
        apply_transformations({"x": fragile}, {"x": {}}, pa.table({"x": pa.array([1.0, None])}))
    with pytest.raises(ValidationError, match=r"Column 'x'.*fragile.*TypeError"):
        apply_transformations_row({"x": fragile}, {"x": {}}, {"x": None})
