"""Expectations: definitions, policies, reports, quarantine, revisions and GE suite import."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import fti
from fti.definitions.expectations import Expectation

E = fti.expect
NOW = datetime.now(UTC)


@pytest.fixture
def fs(tmp_path: Path) -> Any:
    store = fti.connect(tmp_path / "store")
    yield store
    store.close()


def tx(amounts: list[float | None], ids: list[int] | None = None) -> pd.DataFrame:
    n = len(amounts)
    return pd.DataFrame(
        {
            "tx_id": ids or list(range(n)),
            "ts": [NOW] * n,
            "amount": amounts,
            "country": ["US"] * n,
        }
    )


# ----------------------------------------------------------------------------- definitions
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: E.between("a", 0, 1, mostly=1.5), "mostly"),
        (lambda: E.not_null("a", severity="fatal"), "severity"),
        (lambda: E.between("a", 5, 1), "greater than upper"),
        (lambda: E.between("a"), "needs lo="),
        (lambda: E.in_set("a", []), "no allowed values"),
        (lambda: E.in_set("a", "US"), "list of values"),
        (lambda: E.matches("a", "("), "invalid regular expression"),
        (lambda: E.row_count(), "min=, max="),
        (lambda: E.max_age("ts", 3), "timedelta"),
        (lambda: E.null_fraction("a", max=2), r"\[0, 1\]"),
        (lambda: E.not_null("bad name"), "Invalid expectation column"),
        (lambda: E.sql("amount > (SELECT max(x) FROM other)"), "subquery"),
        (lambda: E.sql("amount > 0; DROP TABLE t"), "';'"),
        (lambda: E.sql("amount > 0 -- comment"), "'--'"),
        (lambda: E.sql("amount >"), "not a valid SQL expression"),
        (lambda: E.sql("1 = 1"), "references no column"),
        (lambda: E.sql("a > 0) AS x, (b"), "single boolean expression"),
        (lambda: E.sql("sum(a) OVER () > 0"), "window"),
    ],
)
def test_bad_rules_are_rejected_with_the_reason(make: Any, match: str) -> None:
    with pytest.raises(fti.ValidationError, match=match):
        make()


def test_batch_rules_take_no_mostly() -> None:
    with pytest.raises(fti.ValidationError, match="'mostly' does not apply"):
        Expectation("row_count", (), lo=1, mostly=0.5)


def test_rule_ids_are_stable_and_round_trip() -> None:
    rules = [
        E.not_null("a"),
        E.between("a", 0, 10, mostly=0.9),
        E.between("a", 0, 11),
        E.in_set("c", ["US", "DE"]),
        E.matches("e", "^x"),
        E.unique(["a", "b"]),
        E.sql("a <= b"),
        E.row_count(min=1, max=10),
        E.max_age("ts", timedelta(days=2)),
        E.mean_between("a", 0, 1),
        E.null_fraction("a", max=0.1, severity="warn"),
        E.not_null("b", id="b_present"),
    ]
    assert len({r.id for r in rules}) == len(rules)
    assert rules[0].id == E.not_null("a").id == E.not_null("a", severity="warn").id
    assert rules[-1].id == "b_present"
    for r in rules:
        assert Expectation.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_sql_predicate_columns_are_collected() -> None:
    assert E.sql("amount <= credit_limit AND amount > 0").columns == ("amount", "credit_limit")


# ----------------------------------------------------------------------------- definitions
def test_feature_group_get_or_create_compares_expectations(fs: Any) -> None:
    rules = [E.not_null("amount"), E.between("amount", 0, 100)]
    fs.feature_group("tx", primary_key=["tx_id"], event_time="ts", expectations=rules)
    same = fs.feature_group("tx", primary_key=["tx_id"], expectations=rules)
    assert same.expectations == rules
    assert same.spec.on_invalid == "reject"
    with pytest.raises(fti.ConflictError, match="expectations: stored"):
        fs.feature_group("tx", expectations=[E.not_null("amount")])
    with pytest.raises(fti.ConflictError, match="on_invalid: stored 'reject', given 'warn'"):
        fs.feature_group("tx", on_invalid="warn")
    with pytest.raises(fti.ValidationError, match="on_invalid"):
        fs.feature_group("other", primary_key=["k"], on_invalid="drop")
    with pytest.raises(fti.ValidationError, match="appears twice"):
        fs.feature_group("other", primary_key=["k"], expectations=[E.not_null("a")] * 2)


def test_set_expectations_records_a_revision_reports_carry(fs: Any) -> None:
    fg = fs.feature_group(
        "tx", primary_key=["tx_id"], event_time="ts", expectations=[E.not_null("amount")]
    )
    fg.insert(tx([1.0]))
    fg.set_expectations([E.between("amount", 0, 10)], on_invalid="warn")
    assert fs.get_feature_group("tx").spec.expectations_revision == 2
    report = fg.insert(tx([50.0], ids=[7]))
    assert report.validation is not None
    assert [r.passed for r in report.validation.rules] == [False]
    hist = fg.validation_reports()
    assert list(hist["revision"]) == [1, 2]
    assert list(hist["table_version"]) == [1, 2]
    assert list(hist["policy"]) == ["reject", "warn"]
    assert [e["type"] for e in fg.schema_history()] == ["created", "schema_inferred"]
    later = fg.validation_reports(start=datetime.now(UTC))
    assert len(later) == 0


# ----------------------------------------------------------------------------- policies
def test_reject_lists_rules_counts_and_samples_and_writes_nothing(fs: Any) -> None:
    fg = fs.feature_group(
        "tx",
        primary_key=["tx_id"],
        event_time="ts",
        expectations=[E.between("amount", 0, 100), E.not_null("amount")],
    )
    fg.insert(tx([1.0]))
    bad = tx([5.0, -1.0, -2.0, 500.0, -3.0, -4.0, -5.0, -6.0, None], ids=list(range(10, 19)))
    with pytest.raises(fti.ValidationError) as err:
        fg.insert(bad)
    msg = str(err.value)
    assert "2 expectation(s) failed" in msg
    assert "between(amount, 0, 100)" in msg
    assert "7 of 9 rows fail" in msg
    assert "1 of 9 rows fail" in msg
    assert msg.count("'tx_id'") == 5 + 1  # 5 samples of between, 1 of not_null
    assert "Nothing was written" in msg
    assert fg.stats()["offline_version"] == 1
    assert len(fg.read()) == 1
    assert len(fg.validation_reports()) == 2  # only the accepted insert


def test_warn_writes_everything_and_reports_failures(fs: Any) -> None:
    fg = fs.feature_group(
        "tx",
        primary_key=["tx_id"],
        event_time="ts",
        expectations=[E.between("amount", 0, 100)],
        on_invalid="warn",
    )
    report = fg.insert(tx([1.0, 500.0]))
    assert len(fg.read()) == 2
    assert report.validation is not None
    assert not report.validation.ok
    assert report.validation.rules[0].failed == 1
    assert "FAILED between(amount, 0, 100)" in str(report)


def test_warn_severity_never_blocks(fs: Any) -> None:
    fg = fs.feature_group(
        "tx",
        primary_key=["tx_id"],
        event_time="ts",
        expectations=[E.between("amount", 0, 100, severity="warn")],
        on_invalid="quarantine",
    )
    fg.insert(tx([1.0, 500.0]))
    assert len(fg.read()) == 2
    assert len(fg.quarantined()) == 0


def test_quarantine_keeps_failing_rows_with_rule_ids_and_insert_id(fs: Any) -> None:
    rule = E.between("amount", 0, 100)
    fg = fs.feature_group(
        "tx", primary_key=["tx_id"], event_time="ts", expectations=[rule], on_invalid="quarantine"
    )
    report = fg.insert(pl.from_pandas(tx([1.0, 500.0, 2.0])))
    assert report.rows == 2
    assert sorted(fg.read()["tx_id"]) == [0, 2]
    q = fg.quarantined()
    assert list(q["tx_id"]) == [1]
    assert list(q["amount"]) == [500.0]
    assert list(q["_fti_rules"].iloc[0]) == [rule.id]
    assert report.validation is not None
    assert list(q["_fti_insert_id"]) == [report.validation.insert_id]
    assert "1 rows quarantined" in str(report)


def test_quarantine_of_every_row_commits_nothing(fs: Any) -> None:
    fg = fs.feature_group(
        "tx",
        primary_key=["tx_id"],
        event_time="ts",
        expectations=[E.not_null("amount")],
        on_invalid="quarantine",
    )
    fg.insert(tx([1.0]))
    report = fg.insert(tx([None, None], ids=[5, 6]))
    assert report.rows == 0
    assert report.offline_version is None
    assert "quarantined" in str(report)
    assert fg.stats()["offline_version"] == 1
    assert sorted(fg.quarantined()["tx_id"]) == [5, 6]
    assert list(fg.validation_reports()["table_version"].astype("Int64"))[-1] is pd.NA


def test_a_failing_batch_rule_rejects_a_quarantining_insert(fs: Any) -> None:
    fg = fs.feature_group(
        "tx",
        primary_key=["tx_id"],
        event_time="ts",
        expectations=[E.row_count(min=3), E.not_null("amount")],
        on_invalid="quarantine",
    )
    with pytest.raises(fti.ValidationError, match="batch rule rejects the whole insert"):
        fg.insert(tx([1.0, None]))
    assert fg.stats()["offline_version"] is None
    assert len(fg.quarantined()) == 0


def test_freshness_rule(fs: Any) -> None:
    fg = fs.feature_group(
        "tx", primary_key=["tx_id"], event_time="ts", expectations=[E.max_age("ts", timedelta(1))]
    )
    old = tx([1.0]).assign(ts=[NOW - timedelta(days=3)])
    with pytest.raises(fti.ValidationError, match="max_age"):
        fg.insert(old)
    fg.insert(tx([1.0]))


def test_rule_on_a_missing_or_mistyped_column_is_a_clear_error(fs: Any) -> None:
    fg = fs.feature_group(
        "tx", primary_key=["tx_id"], event_time="ts", expectations=[E.not_null("amt")]
    )
    with pytest.raises(fti.ValidationError, match="column 'amt', which the insert does not have"):
        fg.insert(tx([1.0]))
    fg.set_expectations([E.matches("amount", "^1")])
    with pytest.raises(fti.ValidationError, match="needs a string column, but 'amount' is double"):
        fg.insert(tx([1.0]))
    fg.set_expectations([E.sql("amount <= credit_limit")])
    with pytest.raises(fti.ValidationError, match="'credit_limit', which the insert does not"):
        fg.insert(tx([1.0]))
    assert fg.stats()["offline_version"] is None


def test_sql_predicate_rule(fs: Any) -> None:
    fg = fs.feature_group(
        "tx",
        primary_key=["tx_id"],
        event_time="ts",
        expectations=[E.sql("amount <= credit_limit")],
        on_invalid="quarantine",
    )
    fg.insert(tx([1.0, 50.0, None]).assign(credit_limit=[10.0, 10.0, 10.0]))
    assert sorted(fg.read()["tx_id"]) == [0, 2]  # NULL passes, as in a CHECK constraint
    assert list(fg.quarantined()["tx_id"]) == [1]


def test_user_columns_named_like_internal_flags_do_not_clash(fs: Any) -> None:
    """Regression: flag columns were aliased f0, f1, ... and a user column 'f1' shadowed one."""
    fg = fs.feature_group(
        "tx",
        primary_key=["tx_id"],
        event_time="ts",
        expectations=[E.not_null("amount"), E.between("v", 0, 1), E.sql("src >= 0")],
        on_invalid="quarantine",
    )
    fg.insert(tx([1.0, None]).assign(f0=[0.5, 0.5], f1=[2.5, 2.5], v=[0.5, 3.0], src=[1, -1]))
    assert list(fg.read()["tx_id"]) == [0]
    assert list(fg.quarantined()["tx_id"]) == [1]


def test_quarantined_rows_of_an_insert_that_never_committed_are_ignored(
    fs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The main commit fails after the quarantine rows were written (as a kill would)."""
    fg = fs.feature_group(
        "tx",
        primary_key=["tx_id"],
        event_time="ts",
        expectations=[E.between("amount", 0, 100)],
        on_invalid="quarantine",
    )
    fg.insert(tx([1.0, 500.0]))
    offline = fs._ctx.offline
    real = offline.append

    def crash(table: str, data: pa.Table, **kw: Any) -> int:
        if table == fg.spec.key:
            raise OSError("killed")
        return real(table, data, **kw)

    monkeypatch.setattr(offline, "append", crash)
    with pytest.raises(OSError, match="killed"):
        fg.insert(tx([2.0, 600.0], ids=[10, 11]))
    monkeypatch.undo()
    assert list(fg.quarantined()["tx_id"]) == [1]
    assert list(fg.read()["tx_id"]) == [0]


def test_stream_micro_batches_are_validated(fs: Any) -> None:
    fg = fs.feature_group(
        "tx",
        primary_key=["tx_id"],
        event_time="ts",
        online=True,
        expectations=[E.between("amount", 0, 100)],
        on_invalid="quarantine",
    )
    staged = fg.stage_online(pa.Table.from_pandas(tx([1.0, 500.0]), preserve_index=False))
    assert staged.column("tx_id").to_pylist() == [0]
    fg.commit_staged([staged])
    assert list(fg.read()["tx_id"]) == [0]
    assert list(fg.quarantined()["tx_id"]) == [1]
    assert fg.read_online([{"tx_id": 1}]) == [None]


# ----------------------------------------------------------------------------- GE suites
def test_great_expectations_suite_import(tmp_path: Path) -> None:
    suite = {
        "expectation_suite_name": "tx",
        "expectations": [
            {"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
            {
                "expectation_type": "expect_column_values_to_be_between",
                "kwargs": {"column": "a", "min_value": 0, "max_value": 10, "mostly": 0.9},
            },
            {
                "expectation_type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "c", "value_set": ["US", "DE"]},
            },
            {
                "expectation_type": "expect_column_values_to_match_regex",
                "kwargs": {"column": "e", "regex": "^[^@]+@[^@]+$"},
            },
            {"expectation_type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
            {
                "expectation_type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": 1, "max_value": 1000},
            },
            {
                "expectation_type": "expect_column_mean_to_be_between",
                "kwargs": {"column": "a", "min_value": 1, "max_value": 5},
            },
        ],
    }
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    rules = E.from_great_expectations(path)
    assert rules == [
        E.not_null("a"),
        E.between("a", 0, 10, mostly=0.9),
        E.in_set("c", ["US", "DE"]),
        E.matches("e", "^[^@]+@[^@]+$"),
        E.unique(["id"]),
        E.row_count(min=1, max=1000),
        E.mean_between("a", 1, 5),
    ]
    suite["expectations"].append(
        {"expectation_type": "expect_column_kl_divergence_to_be_less_than", "kwargs": {}}
    )
    path.write_text(json.dumps(suite))
    with pytest.raises(
        fti.ValidationError, match=r"'expect_column_kl_divergence_to_be_less_than'.*cannot import"
    ):
        E.from_great_expectations(path)
    with pytest.raises(fti.ValidationError, match="does not exist"):
        E.from_great_expectations(tmp_path / "missing.json")
