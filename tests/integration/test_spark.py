"""Spark: inserts from Spark DataFrames, Delta tables read by Spark, and the Spark point-in-time
join returning exactly what the DuckDB engine returns. One local SparkSession for all tests."""

from __future__ import annotations

import itertools
import math
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
from fti.definitions.feature_view import LabelSource
from fti.definitions.query import Query
from fti.errors import FtiError
from fti.planner.spark_pit import compile_pit_spark
from fti.services import training_data
from fti.services.pit_execution import execute_pit
from fti.services.training_data import normalize_spine, point_in_time

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 1, tzinfo=UTC)
_names = itertools.count()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The one local SparkSession of the test run."""
    required = os.environ.get("FTI_REQUIRE_SERVICES") == "1"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if required:
            pytest.fail('pyspark is not installed (pip install "fti[spark]")', pytrace=False)
        pytest.skip("pyspark is not installed")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if required:
            pytest.fail("Java is not installed; Spark needs Java 17", pytrace=False)
        pytest.skip("Java is not installed")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("fti-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fti.FeatureStore]:
    fs = fti.connect(tmp_path_factory.mktemp("spark") / "store")
    yield fs
    fs.close()


def engine(spark: Any) -> Any:
    from fti.backends.compute.spark import SparkEngine

    return SparkEngine(spark)


# ---------------------------------------------------------------------------- insert / read
def test_insert_a_spark_dataframe(spark: Any, store: fti.FeatureStore) -> None:
    n = next(_names)
    fg = store.feature_group(f"s{n}", primary_key=["id"], event_time="ts", online=True)
    df = spark.createDataFrame(
        [(i % 3, T0 + timedelta(hours=i), float(i), f"v{i}") for i in range(6)],
        "id long, ts timestamp, x double, s string",
    )
    report = fg.insert(df)
    assert report.rows == 6
    assert fg.schema == {"id": "int64", "ts": "timestamp", "x": "float64", "s": "string"}
    got = fg.read(format="arrow").to_pylist()
    assert [(r["id"], r["ts"], r["x"], r["s"]) for r in got] == [
        (i % 3, T0 + timedelta(hours=i), float(i), f"v{i}") for i in range(6)
    ]
    assert [r and r["s"] for r in fg.read_online([{"id": 0}, {"id": 2}, {"id": 7}])] == [
        "v3",
        "v5",
        None,
    ]
    # Rejected input writes nothing: a null key.
    bad = spark.createDataFrame([(None, T0, 1.0, "x")], "id long, ts timestamp, x double, s string")
    with pytest.raises(FtiError, match="id"):
        fg.insert(bad)
    assert fg.stats()["rows"] == 6


def test_spark_reads_the_current_files_of_a_delta_version(
    spark: Any, store: fti.FeatureStore
) -> None:
    n = next(_names)
    fg = store.feature_group(f"r{n}", primary_key=["id"], event_time="ts")
    fg.insert(pa.table({"id": [1, 2], "ts": pa.array([T0, T0], pa.timestamp("us", "UTC"))}))
    v1 = fg.stats()["offline_version"]
    fg.add_features({"w": "float64"})
    fg.insert(
        pa.table(
            {
                "id": [3],
                "ts": pa.array([T0], pa.timestamp("us", "UTC")),
                "w": pa.array([0.5]),
            }
        )
    )
    fg.delete_rows([{"id": 2}])
    path = store._ctx.offline.path(fg.spec.key)
    eng = engine(spark)

    def rows(frame: Any) -> list[tuple[Any, ...]]:
        return sorted((r["id"], r.asDict().get("w")) for r in frame.collect())

    assert rows(eng.read_table(path)) == [(1, None), (3, 0.5)]  # column added later: null
    assert rows(eng.read_table(path, version=v1)) == [(1, None), (2, None)]
    latest = eng.read_table(path)
    assert "_fti_seq" in latest.columns
    assert latest.schema["ts"].dataType.typeName() == "timestamp"


# ---------------------------------------------------------------------------- parity
def spark_point_in_time(
    spark: Any,
    fs: fti.FeatureStore,
    query: Query,
    spine: Any,
    labels: Sequence[LabelSource] = (),
) -> pa.Table:
    """What ``point_in_time`` does, with Spark as the engine."""
    eng = engine(spark)
    frames = [eng.read_table(fs._ctx.offline.path(g.key)) for g in query.groups]
    if spine is None:  # the left group's corrected history is the spine
        frames[0] = training_data.spark_corrected(frames[0], query.left.group)
    spine_table = names = None
    if spine is not None:
        reserved = [c for c in query.output_columns() if c not in query.entity_columns()]
        spine_table, names = normalize_spine(query, spine, reserved=reserved)
    columns = query.feature_columns() + training_data._label_columns(query, labels, names)
    statement = compile_pit_spark(
        query,
        spine_columns=None if spine_table is None else spine_table.column_names,
        columns=columns,
    )
    table = execute_pit(eng, statement, spine=spine_table, groups=frames)
    spine_schema = None if spine_table is None else spine_table.select(names or []).schema
    return training_data._restore_types(query, table, spine_schema, columns)


def assert_same(a: pa.Table, b: pa.Table) -> None:
    assert a.column_names == b.column_names
    assert a.schema == b.schema

    def norm(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
            for r in rows
        ]

    assert norm(a.to_pylist()) == norm(b.to_pylist())


def ts(hours: list[float]) -> pa.Array:
    return pa.array([T0 + timedelta(hours=h) for h in hours], pa.timestamp("us", "UTC"))


def build(fs: fti.FeatureStore, s: dict[str, Any]) -> tuple[Query, Any]:
    n = next(_names)
    multi = s["multi"]
    keys = ["k1", "k2"] if multi else ["k1"]

    def key_cols(rows: list[tuple[Any, ...]], names: list[str]) -> dict[str, pa.Array]:
        out = {names[0]: pa.array([r[0] for r in rows], pa.int64())}
        if multi:
            out[names[1]] = pa.array([r[1] for r in rows], pa.string())
        return out

    a = fs.feature_group(
        f"pa{n}",
        primary_key=keys,
        event_time="t",
        ttl=s["ttl_a"],
        features={
            "k1": "int64",
            **({"k2": "string"} if multi else {}),
            "t": "timestamp",
            "x": "float64",
            "lbl": "int64",
        },
    )
    for batch in s["a"]:
        if batch:
            a.insert(
                pa.table(
                    {
                        **key_cols([r[0] for r in batch], keys),
                        "t": ts([r[1] for r in batch]),
                        "x": pa.array([r[2] for r in batch], pa.float64()),
                        "lbl": pa.array([r[3] for r in batch], pa.int64()),
                    }
                )
            )
    query = a.select(["x"])
    if s["b"] is not None:
        bkeys = ["bk1", "bk2"] if multi else ["bk1"]
        b = fs.feature_group(
            f"pb{n}",
            primary_key=bkeys,
            event_time="bt",
            ttl=s["ttl_b"],
            features={
                "bk1": "int64",
                **({"bk2": "string"} if multi else {}),
                "bt": "timestamp",
                "y": "int64",
            },
        )
        for batch in s["b"]:
            if batch:
                b.insert(
                    pa.table(
                        {
                            **key_cols([r[0] for r in batch], bkeys),
                            "bt": ts([r[1] for r in batch]),
                            "y": pa.array([r[2] for r in batch], pa.int64()),
                        }
                    )
                )
        query = query.join(b.select(["y", "bt"]), left_on=keys, right_on=bkeys, prefix="b_")
    if s["c"] is not None:
        c = fs.feature_group(f"pc{n}", primary_key=["k1"], features={"k1": "int64", "z": "string"})
        for batch in s["c"]:
            if batch:
                c.insert(
                    pa.table(
                        {
                            "k1": pa.array([r[0] for r in batch], pa.int64()),
                            "z": pa.array([r[1] for r in batch], pa.string()),
                        }
                    )
                )
        query = query.join(c.select(["z"]), on=["k1"], prefix="c_")
    spine = pa.table(
        {
            **key_cols([r[0] for r in s["spine"]], keys),
            "t": ts([r[1] for r in s["spine"]]),
        }
    )
    return query, spine


K = st.sampled_from([(1, "3"), (1, "23"), (12, "3")])
HOURS = st.sampled_from([0.0, 1.0, 1.0, 2.0, 3.5])
FLOATS = st.one_of(st.none(), st.sampled_from([0.0, -1.5, float("nan")]))
INTS = st.one_of(st.none(), st.integers(-2, 2))


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    def inserts(make: Any, most: int) -> list[list[Any]]:
        return [
            [make() for _ in range(draw(st.integers(1, 4)))]
            for _ in range(draw(st.integers(1, most)))
        ]

    return {
        "multi": draw(st.booleans()),
        "a": inserts(lambda: (draw(K), draw(HOURS), draw(FLOATS), draw(INTS)), 3),
        "b": draw(st.none() | st.just(inserts(lambda: (draw(K), draw(HOURS), draw(INTS)), 2))),
        "c": draw(
            st.none()
            | st.just(
                inserts(
                    lambda: (draw(st.sampled_from([1, 12])), draw(st.text("pq", max_size=1))), 2
                )
            )
        ),
        "ttl_a": draw(st.sampled_from([None, timedelta(hours=1)])),
        "ttl_b": draw(st.sampled_from([None, timedelta(hours=2)])),
        "spine": draw(
            st.lists(
                st.tuples(K | st.just((99, "x")), st.sampled_from([-1.0, 0.0, 1.0, 1.5, 2.0, 9.0])),
                max_size=6,
            )
        ),
    }


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(s=scenarios())
def test_spark_point_in_time_join_equals_duckdb(
    spark: Any, store: fti.FeatureStore, s: dict[str, Any]
) -> None:
    query, spine = build(store, s)
    duck = point_in_time(store._ctx, query, spine=spine).table
    assert_same(spark_point_in_time(spark, store, query, spine), duck)
    # Labels: the left group's, and a joined group's column under another name.
    labels = [LabelSource("lbl", 0, "lbl")]
    if s["b"] is not None:
        labels.append(LabelSource("y_label", 1, "y"))
    duck_labels = point_in_time(store._ctx, query, spine=spine, labels=labels).table
    assert_same(spark_point_in_time(spark, store, query, spine, labels), duck_labels)
    # Without a spine: the left group's corrected history, with the labels.
    duck_own = point_in_time(store._ctx, query, labels=labels).table
    assert_same(spark_point_in_time(spark, store, query, None, labels), duck_own)


def test_spark_point_in_time_join_fixed_case(spark: Any, store: fti.FeatureStore) -> None:
    """Hand-checked expectations: a correction wins, the ttl nulls a stale match, a snapshot
    group joins by key, unknown keys and duplicates keep their rows."""
    s = {
        "multi": True,
        "a": [
            [((1, "3"), 0.0, 1.0, 10), ((1, "3"), 1.0, 2.0, 11), ((12, "3"), 1.0, 3.0, 12)],
            [((1, "3"), 1.0, 5.0, 13)],  # same key and time, inserted later: a correction
        ],
        "b": [[((1, "3"), 0.0, 7), ((1, "3"), 3.5, 8)]],
        "c": [[(1, "p"), (1, "q")]],
        "ttl_a": None,
        "ttl_b": timedelta(hours=2),
        "spine": [((1, "3"), 2.0), ((1, "3"), 9.0), ((12, "3"), 0.0), ((99, "x"), 1.0)],
    }
    s["spine"].append(s["spine"][0])
    query, spine = build(store, s)
    got = spark_point_in_time(spark, store, query, spine)
    expected = [
        (5.0, 7, T0, "q"),
        (5.0, None, None, "q"),  # b's latest row (3.5h) is older than 9h - 2h
        (None, None, None, None),
        (None, None, None, None),
        (5.0, 7, T0, "q"),
    ]
    rows = got.select(["x", "b_y", "b_bt", "c_z"]).to_pylist()
    assert [tuple(r.values()) for r in rows] == expected
    assert got.column("k1").to_pylist() == [1, 1, 12, 99, 1]
    assert_same(got, point_in_time(store._ctx, query, spine=spine).table)
    # A filter applies to the group's rows before the join, on both engines.
    filtered = query.filter(fti.col("z") != "q")
    got = spark_point_in_time(spark, store, filtered, spine)
    assert got.column("c_z").to_pylist() == ["p", "p", None, None, "p"]
    assert_same(got, point_in_time(store._ctx, filtered, spine=spine).table)


def test_engine_spark_on_the_feature_view_equals_duckdb(
    spark: Any, store: fti.FeatureStore
) -> None:
    """``engine=`` on training_data, create_training_dataset and batch_data: same rows."""
    import pandas as pd

    tag = uuid.uuid4().hex[:8]
    users = store.feature_group(f"users_{tag}", primary_key=["uid"], event_time="ts", online=False)
    users.insert(
        pd.DataFrame(
            {
                "uid": [1, 2, 1, 3, 2],
                "ts": [T0 + timedelta(hours=h) for h in (0, 1, 2, 3, 4)],
                "amount": [1.0, 2.0, 3.0, None, 5.0],
                "label": [0, 1, 0, 1, 1],
            }
        )
    )
    # A correction of uid 1 at hour 0: without a spine both engines use the corrected row.
    users.insert(pd.DataFrame({"uid": [1], "ts": [T0], "amount": [9.0], "label": [1]}))
    prof = store.feature_group(f"prof_{tag}", primary_key=["uid"], event_time="ts", online=False)
    prof.insert(
        pd.DataFrame({"uid": [1, 2], "ts": [T0, T0 + timedelta(hours=3)], "score": [0.5, 0.7]})
    )
    fv = store.feature_view(
        f"fv_{tag}",
        query=users.select(["amount"]).join(prof.select(["score"]), on=["uid"]),
        labels=["label"],
        transformations={"amount": fti.impute_mean()},
    )
    duck = fv.training_data(format="arrow")
    assert duck.column("amount").to_pylist()[:2] == [9.0, 2.0]
    assert duck.num_rows == 5
    assert_same(fv.training_data(format="arrow", engine=spark), duck)
    assert_same(fv.training_data(format="arrow", engine="spark"), duck)  # the active session
    split = {"train": 0.6, "test": 0.4}
    td_duck = fv.create_training_dataset(split=split, seed=3)
    td_spark = fv.create_training_dataset(split=split, seed=3, engine="spark")
    for part in ("train", "test"):
        assert_same(td_spark.read_raw(part, format="arrow"), td_duck.read_raw(part, format="arrow"))
    assert td_spark.fitted == td_duck.fitted
    batch = fv.batch_data(training_dataset_version=td_duck.version, format="arrow")
    assert_same(
        fv.batch_data(training_dataset_version=td_duck.version, format="arrow", engine=spark),
        batch,
    )
