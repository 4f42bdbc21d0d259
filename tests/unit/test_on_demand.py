"""On-demand features: the same function in batch and per request, typed results, validated
inputs, storage by reference."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fti
from fti.definitions.on_demand import (
    OnDemandFeature,
    compute_on_demand,
    compute_on_demand_row,
    on_demand_from_dict,
)
from fti.errors import NotFoundError, ValidationError


@fti.on_demand(inputs=["distance"], request=["dep_hour"], dtype="float64")
def distance_per_hour(distance: float | None, dep_hour: int | None) -> float | None:
    if distance is None or dep_hour is None:
        return None
    return distance / (dep_hour + 1)


@fti.on_demand(inputs=["distance_per_hour"], dtype="int64", name="rounded")
def round_it(distance_per_hour: float | None) -> int | None:
    return None if distance_per_hour is None else round(distance_per_hour)


@fti.on_demand(inputs=["ts"], request=["now"], dtype="int64")
def age_seconds(ts: datetime, now: datetime) -> int:
    return int((now - ts).total_seconds())


@fti.on_demand(request=["carrier"], dtype="string")
def carrier_upper(carrier: str | None) -> str | None:
    return None if carrier is None else carrier.upper()


def oracle(distance: float | None, dep_hour: int | None) -> float | None:
    if distance is None or dep_hour is None:
        return None
    return distance / (dep_hour + 1)


rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False)),
        st.one_of(st.none(), st.integers(0, 23)),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(rows)
def test_batch_equals_row_path_equals_oracle(data: list[tuple[float | None, int | None]]) -> None:
    table = pa.table(
        {
            "distance": pa.array([d for d, _ in data], pa.float64()),
            "dep_hour": pa.array([h for _, h in data], pa.int64()),
        }
    )
    out = compute_on_demand([distance_per_hour, round_it], table)
    assert out.column_names == ["distance", "dep_hour", "distance_per_hour", "rounded"]
    assert out.schema.field("distance_per_hour").type == pa.float64()
    assert out.schema.field("rounded").type == pa.int64()
    for (d, h), got in zip(data, out.to_pylist(), strict=True):
        expected = oracle(d, h)
        assert got["distance_per_hour"] == expected
        assert got["rounded"] == (None if expected is None else round(expected))
        online = compute_on_demand_row(
            [distance_per_hour, round_it], {"distance": d}, {"dep_hour": h}
        )
        assert online == {"distance": d, "distance_per_hour": expected, "rounded": got["rounded"]}


def test_results_are_cast_to_the_declared_dtype_in_both_paths() -> None:
    @fti.on_demand(inputs=["x"], dtype="float64")
    def as_int(x: int) -> int:
        return x * 2

    table = pa.table({"x": [1, 2]})
    out = compute_on_demand([as_int], table).column("as_int")
    assert out.type == pa.float64()
    assert out.to_pylist() == [2.0, 4.0]
    value = compute_on_demand_row([as_int], {"x": 2}, {})["as_int"]
    assert type(value) is float
    assert value == 4.0

    @fti.on_demand(inputs=["x"], dtype="float32")
    def third(x: int) -> float:
        return x / 3

    batch = compute_on_demand([third], table).column("third").to_pylist()
    online = [compute_on_demand_row([third], {"x": x}, {})["third"] for x in (1, 2)]
    assert batch == online  # both rounded to float32 the same way
    assert batch[0] != 1 / 3


def test_timestamps_and_strings() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    table = pa.table(
        {
            "ts": pa.array([datetime(2026, 1, 1, 11, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            "now": pa.array([now], pa.timestamp("us", tz="UTC")),
            "carrier": ["aa"],
        }
    )
    out = compute_on_demand([age_seconds, carrier_upper], table).to_pylist()[0]
    assert out["age_seconds"] == 3600
    assert out["carrier_upper"] == "AA"
    row = compute_on_demand_row(
        [age_seconds, carrier_upper],
        {"ts": table.column("ts")[0].as_py()},
        {"now": now, "carrier": "aa"},
    )
    assert row["age_seconds"] == 3600
    assert row["carrier_upper"] == "AA"


def test_unknown_input_column_is_named() -> None:
    table = pa.table({"dist": [1.0], "dep_hour": [1]})
    with pytest.raises(ValidationError, match=r"distance_per_hour.*\['distance'\].*'dist'"):
        compute_on_demand([distance_per_hour], table)
    with pytest.raises(ValidationError, match=r"request parameter\(s\) \['dep_hour'\]"):
        compute_on_demand_row([distance_per_hour], {"distance": 1.0}, {})
    with pytest.raises(ValidationError, match=r"feature\(s\) \['distance'\]"):
        compute_on_demand_row([distance_per_hour], {}, {"dep_hour": 1})


def test_name_clash_with_an_existing_column_is_rejected() -> None:
    table = pa.table({"distance": [1.0], "dep_hour": [1], "distance_per_hour": [0.0]})
    with pytest.raises(ValidationError, match="clashes with an existing column"):
        compute_on_demand([distance_per_hour], table)


def test_wrong_result_type_and_exceptions_become_validation_errors() -> None:
    @fti.on_demand(inputs=["x"], dtype="float64")
    def text(x: float) -> str:
        return "nope"

    @fti.on_demand(inputs=["x"], dtype="float64")
    def boom(x: float) -> float:
        return 1 / x

    table = pa.table({"x": [0.0]})
    with pytest.raises(ValidationError, match=r"'text'.*does not convert to float64"):
        compute_on_demand([text], table)
    with pytest.raises(ValidationError, match=r"'text'.*does not convert to float64"):
        compute_on_demand_row([text], {"x": 0.0}, {})
    with pytest.raises(ValidationError, match=r"'boom'.*ZeroDivisionError"):
        compute_on_demand([boom], table)


def test_declaration_is_checked_against_the_function_signature() -> None:
    with pytest.raises(ValidationError, match=r"no parameter\(s\) \['hour'\]"):
        fti.on_demand(inputs=["distance"], request=["hour"])(distance_per_hour.fn)
    with pytest.raises(ValidationError, match=r"requires \['dep_hour'\]"):
        fti.on_demand(inputs=["distance"])(distance_per_hour.fn)
    with pytest.raises(ValidationError, match="Unknown dtype 'float'"):
        fti.on_demand(inputs=["distance"], request=["dep_hour"], dtype="float")(
            distance_per_hour.fn
        )
    with pytest.raises(ValidationError, match="lists of names"):
        fti.on_demand(inputs="distance")
    with pytest.raises(ValidationError, match="Invalid on-demand input name 'bad name'"):
        fti.on_demand(inputs=["bad name"], name="ok")(lambda **kw: 1)


def test_stored_by_reference_and_resolved() -> None:
    d = json.loads(json.dumps(distance_per_hour.to_dict()))
    assert d == {
        "name": "distance_per_hour",
        "inputs": ["distance"],
        "request": ["dep_hour"],
        "dtype": "float64",
        "ref": f"{__name__}:distance_per_hour",
    }
    assert OnDemandFeature.from_dict(d) is distance_per_hour
    assert on_demand_from_dict(round_it.to_dict()) is round_it
    assert round_it.to_dict()["ref"] == f"{__name__}:round_it"
    with pytest.raises(NotFoundError, match="cannot be imported"):
        OnDemandFeature.from_dict({**d, "ref": "no_such_module_xyz:f"})
    with pytest.raises(ValidationError, match="changed since it was stored"):
        OnDemandFeature.from_dict({**d, "dtype": "float32"})
    with pytest.raises(ValidationError, match="not an on-demand feature"):
        OnDemandFeature.from_dict({**d, "ref": "math:sqrt"})


def test_local_functions_work_in_process_but_cannot_be_stored() -> None:
    @fti.on_demand(inputs=["x"])
    def local(x: float) -> float:
        return math.sqrt(x)

    assert compute_on_demand_row([local], {"x": 4.0}, {})["local"] == 2.0
    assert local(9.0) == 3.0
    with pytest.raises(ValidationError, match="top level of a module"):
        local.to_dict()


def test_duplicate_feature_names_are_rejected() -> None:
    with pytest.raises(ValidationError, match="Duplicate on-demand feature"):
        compute_on_demand([distance_per_hour, distance_per_hour], pa.table({"distance": [1.0]}))


def test_feature_without_arguments_is_called_once_per_row() -> None:
    calls: list[Any] = []

    @fti.on_demand(dtype="int64")
    def constant() -> int:
        calls.append(1)
        return 7

    out = compute_on_demand([constant], pa.table({"a": [1, 2, 3]}))
    assert out.column("constant").to_pylist() == [7, 7, 7]
    assert len(calls) == 3
