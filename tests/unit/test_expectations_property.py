"""Property tests of write-time validation against a plain-Python oracle.

Random small frames (ints, floats with NaN and None, strings) and random rules: which rows fail
each rule, and whether each rule holds, equal an oracle written here from the documented
semantics (NaN is missing; a missing value fails only not_null; a NULL sql predicate passes;
``passed >= mostly * rows``). Through ``fg.insert`` with each policy, the committed plus the
quarantined rows equal the oracle and nothing is lost: every input row is committed or
quarantined, or the insert is rejected whole and the table version is unchanged.
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
from fti.backends.compute.duckdb import DuckDBEngine
from fti.definitions.expectations import Expectation
from fti.services.validation import evaluate

NOW = datetime(2026, 1, 10, tzinfo=UTC)
ENGINE = DuckDBEngine()
PATTERNS = ["^a", "b$", "@", "^[^@]+@[^@]+$"]
PREDICATES = ["i <= x", "length(s) < 2"]

ints = st.one_of(st.none(), st.integers(-3, 3))
floats = st.one_of(st.none(), st.just(math.nan), st.sampled_from([-2.5, -1.0, 0.0, 0.5, 1.0, 2.5]))
strs = st.one_of(st.none(), st.sampled_from(["a", "b", "ab", "a@b", "", "ba"]))


@st.composite
def frames(draw: st.DrawFn) -> dict[str, list[Any]]:
    n = draw(st.integers(1, 10))
    return {
        "k": list(range(n)),
        "t": [NOW - timedelta(days=draw(st.sampled_from([0, 1, 3]))) for _ in range(n)],
        "i": [draw(ints) for _ in range(n)],
        "x": [draw(floats) for _ in range(n)],
        "s": [draw(strs) for _ in range(n)],
    }


def to_table(data: dict[str, list[Any]]) -> pa.Table:
    return pa.table(
        {
            "k": pa.array(data["k"], pa.int64()),
            "t": pa.array(data["t"], pa.timestamp("us", tz="UTC")),
            "i": pa.array(data["i"], pa.int64()),
            # from_pandas=False keeps NaN a NaN (not a null): both must count as missing
            "x": pa.array(data["x"], pa.float64(), from_pandas=False),
            "s": pa.array(data["s"], pa.string()),
        }
    )


bounds = st.sampled_from([None, -1, 0, 0.5, 1])
opts = st.fixed_dictionaries(
    {
        "mostly": st.sampled_from([1.0, 1.0, 0.75, 0.5]),
        "severity": st.sampled_from(["error", "error", "warn"]),
    }
)


@st.composite
def rules(draw: st.DrawFn) -> Expectation:
    kind = draw(
        st.sampled_from(
            ["not_null", "between", "in_set", "matches", "unique", "sql", "row_count",
             "max_age", "mean_between", "null_fraction"]
        )
    )  # fmt: skip
    o = draw(opts)
    E = fti.expect
    if kind == "not_null":
        return E.not_null(draw(st.sampled_from(["i", "x", "s"])), **o)
    if kind in ("between", "mean_between"):
        lo, hi = draw(bounds), draw(bounds)
        if lo is None and hi is None:
            lo = 0
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        col = draw(st.sampled_from(["i", "x"]))
        if kind == "between":
            return E.between(col, lo, hi, **o)
        return E.mean_between(col, lo, hi, severity=o["severity"])
    if kind == "in_set":
        if draw(st.booleans()):
            return E.in_set("i", draw(st.lists(st.integers(-2, 2), min_size=1, max_size=3)), **o)
        return E.in_set("s", draw(st.lists(st.sampled_from(["a", "b", "ab"]), min_size=1)), **o)
    if kind == "matches":
        return E.matches("s", draw(st.sampled_from(PATTERNS)), **o)
    if kind == "unique":
        return E.unique(draw(st.sampled_from([["i"], ["s"], ["s", "i"], ["x"]])), **o)
    if kind == "sql":
        return E.sql(draw(st.sampled_from(PREDICATES)), **o)
    if kind == "row_count":
        lo, hi = draw(st.sampled_from([None, 1, 3])), draw(st.sampled_from([None, 5, 10]))
        if lo is None and hi is None:
            hi = 4
        return E.row_count(min=lo, max=hi, severity=o["severity"])
    if kind == "max_age":
        return E.max_age("t", timedelta(days=2), severity=o["severity"])
    frac = draw(st.sampled_from([0, 0.25, 0.5]))
    return E.null_fraction(draw(st.sampled_from(["i", "s"])), max=frac, severity=o["severity"])


rule_lists = st.lists(rules(), min_size=1, max_size=4, unique_by=lambda r: r.id)


# ----------------------------------------------------------------------------- the oracle
def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def row_fails(rule: Expectation, data: dict[str, list[Any]], r: int) -> bool:
    """Does row ``r`` fail a row rule? Written from the documented semantics."""
    if rule.kind == "unique":
        key = [data[c][r] for c in rule.columns]
        if any(missing(v) for v in key):
            return False
        n = len(data["k"])
        same = sum(1 for j in range(n) if [data[c][j] for c in rule.columns] == key)
        return same > 1
    if rule.kind == "sql":
        if rule.predicate == "i <= x":
            i, x = data["i"][r], data["x"][r]
            return not missing(i) and not missing(x) and not i <= x
        s = data["s"][r]
        return not missing(s) and not len(s) < 2
    v = data[rule.columns[0]][r]
    if rule.kind == "not_null":
        return missing(v)
    if missing(v):
        return False
    if rule.kind == "between":
        return (rule.lo is not None and v < rule.lo) or (rule.hi is not None and v > rule.hi)
    if rule.kind == "in_set":
        return v not in rule.values
    if rule.kind == "matches":
        assert rule.pattern is not None
        return re.search(rule.pattern, v) is None
    raise AssertionError(rule.kind)


def oracle(rule: Expectation, data: dict[str, list[Any]]) -> tuple[set[int], bool]:
    """(failing rows, does the rule hold)."""
    n = len(data["k"])
    if rule.is_row_rule:
        bad = {r for r in range(n) if row_fails(rule, data, r)}
        return bad, (n - len(bad)) >= rule.mostly * n
    if rule.kind == "row_count":
        return set(), (rule.lo is None or n >= rule.lo) and (rule.hi is None or n <= rule.hi)
    if rule.kind == "max_age":
        assert rule.max_age is not None
        return set(), max(data["t"]) >= NOW - rule.max_age
    col = data[rule.columns[0]]
    present = [v for v in col if not missing(v)]
    if rule.kind == "mean_between":
        if not present:
            return set(), False
        mean = sum(present) / len(present)
        return set(), (rule.lo is None or mean >= rule.lo) and (rule.hi is None or mean <= rule.hi)
    assert rule.hi is not None
    return set(), (n - len(present)) / n <= rule.hi


# ----------------------------------------------------------------------------- evaluation
@settings(max_examples=300, deadline=None)
@given(data=frames(), rs=rule_lists)
def test_evaluation_matches_the_oracle(data: dict[str, list[Any]], rs: list[Expectation]) -> None:
    ev = evaluate(rs, to_table(data).drop_columns(["k"]), engine=ENGINE, now=NOW)
    assert [r.rule for r in ev.results] == [r.id for r in rs]
    for rule, result in zip(rs, ev.results, strict=True):
        bad, holds = oracle(rule, data)
        assert result.passed == holds, rule.describe()
        if rule.is_row_rule:
            assert result.failed == len(bad), rule.describe()
            got = {int(x) for x in ev.failing_rows.get(rule.id, [])}
            assert got == bad, rule.describe()
            assert len(result.samples) == min(len(bad), 5)


# ----------------------------------------------------------------------------- policies
_names = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    fs = fti.connect(Path(tmp_path_factory.mktemp("dq")))
    yield fs
    fs.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=frames(),
    rs=rule_lists,
    policy=st.sampled_from(["reject", "quarantine", "warn"]),
)
def test_policies_commit_and_quarantine_what_the_oracle_says(
    store: Any, data: dict[str, list[Any]], rs: list[Expectation], policy: str
) -> None:
    # max_age is judged against the real clock here: shift the frame to now.
    shift = datetime.now(UTC) - NOW
    data = {**data, "t": [t + shift for t in data["t"]]}
    fg = store.feature_group(
        f"p{next(_names)}", primary_key=["k"], event_time="t", expectations=rs, on_invalid=policy
    )
    n = len(data["k"])
    outcome = {r.id: oracle(r, data) for r in rs}
    blocking = [r for r in rs if r.severity == "error" and not outcome[r.id][1]]
    batch_blocking = [r for r in blocking if not r.is_row_rule]
    rejected = (policy == "reject" and blocking) or (policy == "quarantine" and batch_blocking)
    if rejected:
        with pytest.raises(fti.ValidationError, match="rejected"):
            fg.insert(to_table(data))
        assert fg.stats()["offline_version"] is None  # nothing written
        assert len(fg.quarantined()) == 0
        return
    report = fg.insert(to_table(data))
    want_aside: set[int] = set()
    if policy == "quarantine":
        for r in blocking:
            want_aside |= outcome[r.id][0]
    committed = set(fg.read()["k"]) if fg.stats()["offline_version"] is not None else set()
    q = fg.quarantined()
    aside = set(q["k"])
    assert aside == want_aside
    assert committed == set(range(n)) - want_aside
    assert committed | aside == set(range(n))  # nothing lost
    assert len(q) == len(aside)  # each quarantined once
    for k, ids in zip(q["k"], q["_fti_rules"], strict=True):
        assert set(ids) == {r.id for r in blocking if k in outcome[r.id][0]}
    assert report.validation is not None
    assert report.validation.quarantined == len(want_aside)
    history = fg.validation_reports()
    assert len(history) == len(rs)
    assert set(history["insert_id"]) == {report.validation.insert_id}
    assert set(history["revision"]) == {1}
