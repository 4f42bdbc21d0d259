"""Drift monitors (#13.1): metrics against plain oracles, defaults, the small-window rule,
nulls, history, scheduler, CLI exit codes, webhook alerts and bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon
from typer.testing import CliRunner

import fti
from fti.backends.compute.duckdb import DuckDBEngine
from fti.cli.app import app
from fti.pipelines.scheduler import Scheduler, list_schedules
from fti.services import drift_metrics
from fti.services.prediction_logs import LogRow, append, log_spec
from fti.store import context_of

ENGINE = DuckDBEngine()  # the DuckDB of the tests that run a scan without a store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MID = T0 + timedelta(days=10)


def _frame(n: int, *, shift: float = 0.0, de_share: float = 1 / 3, seed: int = 0) -> pd.DataFrame:
    """n rows before MID from N(0, 1) and n rows after from N(shift, 1); ``country`` is
    uniform over three values before, and DE has ``de_share`` after."""
    rng = np.random.default_rng(seed)
    rest = (1 - de_share) / 2
    return pd.DataFrame(
        {
            "id": np.arange(2 * n),
            "t": [T0 + timedelta(days=10 * i / n) for i in range(2 * n)],
            "amount": np.r_[rng.normal(0, 1, n), rng.normal(shift, 1, n)],
            "country": np.r_[
                rng.choice(["US", "DE", "FR"], n),
                rng.choice(["US", "DE", "FR"], n, p=[rest, de_share, rest]),
            ],
        }
    )


def _group(fs: fti.FeatureStore, df: pd.DataFrame, name: str = "tx") -> fti.FeatureGroup:
    fg = fs.feature_group(name, primary_key=["id"], event_time="t")
    fg.insert(df)
    return fg


def _monitor(fs: fti.FeatureStore, fg: fti.FeatureGroup, **kw: Any) -> fti.Monitor:
    args: dict[str, Any] = {
        "feature_group": fg,
        "features": ["amount", "country"],
        "reference": fti.window(end=MID),
        "detection": fti.window(start=MID),
    }
    return fs.monitor(kw.pop("name", "tx_drift"), **{**args, **kw})


def _by_feature(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["feature"]: f for f in result["features"]}


# ---------------------------------------------------------------------------- metric oracles
def test_psi_of_known_distributions() -> None:
    assert drift_metrics.psi([10] * 10, [7] * 10) == pytest.approx(0.0)
    # by hand: (0.9-0.5)*ln(0.9/0.5) + (0.1-0.5)*ln(0.1/0.5)
    assert drift_metrics.psi([50, 50], [90, 10]) == pytest.approx(
        0.4 * math.log(1.8) + 0.4 * math.log(5)
    )
    # an empty bin is floored at PSI_EPSILON instead of giving infinity
    eps = drift_metrics.PSI_EPSILON
    assert drift_metrics.psi([50, 50], [100, 0]) == pytest.approx(
        (1 - 0.5) * math.log(1 / 0.5) + (eps - 0.5) * math.log(eps / 0.5)
    )


counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(counts, st.data())
def test_binned_metrics_match_plain_oracles(ref: list[int], data: st.DataObject) -> None:
    det = data.draw(st.lists(st.integers(0, 1000), min_size=len(ref), max_size=len(ref)))
    if sum(ref) == 0 or sum(det) == 0:
        return
    p = [r / sum(ref) for r in ref]
    q = [d / sum(det) for d in det]
    assert drift_metrics.js_distance(ref, det) == pytest.approx(
        float(jensenshannon(p, q, base=2)), abs=1e-9
    )
    hell = math.sqrt(sum((math.sqrt(a) - math.sqrt(b)) ** 2 for a, b in zip(p, q, strict=True)) / 2)
    assert drift_metrics.hellinger(ref, det) == pytest.approx(hell, abs=1e-9)
    e = drift_metrics.PSI_EPSILON
    psi = sum(
        (max(b, e) - max(a, e)) * math.log(max(b, e) / max(a, e)) for a, b in zip(p, q, strict=True)
    )
    assert drift_metrics.psi(ref, det) == pytest.approx(psi, abs=1e-9)


def test_tests_and_wasserstein_match_scipy() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 300), rng.normal(0.3, 1, 400)
    assert drift_metrics.ks_pvalue(a, b) == pytest.approx(stats.ks_2samp(a, b).pvalue)
    assert drift_metrics.wasserstein(a, b) == pytest.approx(
        stats.wasserstein_distance(a, b) / np.std(a)
    )
    table = [[30, 50, 20], [25, 40, 60]]
    assert drift_metrics.chi2_pvalue(*table) == pytest.approx(
        stats.chi2_contingency(np.array(table), correction=False).pvalue
    )
    assert drift_metrics.chi2_pvalue([5, 0], [7, 0]) == 1.0  # one category: nothing to test
    assert drift_metrics.mean_shift(1.0, 2.0, 2.0) == 0.5


# ---------------------------------------------------------------------------- end to end
def test_same_distribution_is_not_drifted_and_a_shift_is(fs: fti.FeatureStore) -> None:
    same = _monitor(fs, _group(fs, _frame(20_000, seed=1)))
    r = same.run()
    f = _by_feature(r)
    assert (f["amount"]["metric"], f["country"]["metric"]) == ("psi", "js")
    assert (f["amount"]["threshold"], f["country"]["threshold"]) == (0.2, 0.1)
    assert not r["alert"]
    assert f["amount"]["value"] < 0.01
    assert (f["amount"]["n_ref"], f["amount"]["n_detect"]) == (20_000, 20_000)

    shifted = _group(fs, _frame(20_000, shift=1.0, de_share=0.8, seed=2), "tx2")
    r = _monitor(fs, shifted, name="tx2_drift").run()
    assert r["alert"]
    assert r["drifted"] == ["amount", "country"]


def test_run_psi_matches_a_numpy_oracle(
    fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the scan's exact PSI (sketches: tests/unit/test_drift_sketches.py)
    monkeypatch.setenv("FTI_DRIFT_SKETCHES", "0")
    df = _frame(5_000, shift=0.3, seed=4)
    r = _monitor(fs, _group(fs, df), features=["amount"]).run()
    ref = df.loc[df["t"] < MID, "amount"].to_numpy()
    det = df.loc[df["t"] >= MID, "amount"].to_numpy()
    edges = np.unique(np.quantile(ref, [i / 10 for i in range(1, 10)]))  # linear = quantile_cont
    bins = len(edges) + 1
    rc = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=bins)
    dc = np.bincount(np.searchsorted(edges, det, side="left"), minlength=bins)
    p, q = rc / rc.sum(), dc / dc.sum()
    assert r["features"][0]["value"] == pytest.approx(float(np.sum((q - p) * np.log(q / p))))


def test_small_windows_switch_to_ks_and_chi_square(fs: fti.FeatureStore) -> None:
    df = _frame(999, seed=5)
    f = _by_feature(_monitor(fs, _group(fs, df)).run())
    assert (f["amount"]["metric"], f["country"]["metric"]) == ("ks", "chi2")
    assert f["amount"]["threshold"] == 0.05
    ref = df.loc[df["t"] < MID]
    det = df.loc[df["t"] >= MID]
    assert f["amount"]["value"] == pytest.approx(
        stats.ks_2samp(ref["amount"], det["amount"]).pvalue
    )
    table = pd.crosstab(df["t"] >= MID, df["country"]).to_numpy()
    assert f["country"]["value"] == pytest.approx(
        stats.chi2_contingency(table, correction=False).pvalue
    )
    big = _frame(1_000, seed=5)
    f = _by_feature(_monitor(fs, _group(fs, big, "tx_big"), name="big").run())
    assert (f["amount"]["metric"], f["country"]["metric"]) == ("psi", "js")


def test_nulls_and_nan_count_in_the_null_fraction(fs: fti.FeatureStore) -> None:
    df = _frame(2_000, seed=6)
    after = df.index[df["t"] >= MID]
    df.loc[after[:300], "amount"] = np.nan  # NaN counts as missing, like null
    df["country"] = df["country"].astype(object)
    df.loc[after[300:500], "country"] = None
    mon = _monitor(fs, _group(fs, df), metric="null_fraction")
    f = _by_feature(mon.run())
    assert f["amount"]["null_fraction_detect"] == pytest.approx(300 / 2_000)
    assert f["country"]["null_fraction_detect"] == pytest.approx(200 / 2_000)
    assert f["amount"]["null_fraction_ref"] == 0.0
    assert f["amount"]["value"] == pytest.approx(0.15)
    assert f["amount"]["drifted"]  # 0.15 > 0.05
    assert f["country"]["drifted"]


@pytest.mark.parametrize(
    ("metric", "oracle"),
    [
        ("wasserstein", lambda a, b: stats.wasserstein_distance(a, b) / np.std(a)),
        ("mean_shift", lambda a, b: abs(b.mean() - a.mean()) / np.std(a)),
    ],
)
def test_value_metrics(fs: fti.FeatureStore, metric: str, oracle: Any) -> None:
    df = _frame(3_000, shift=0.5, seed=7)
    r = _monitor(fs, _group(fs, df), features=["amount"], metric=metric).run()
    a = df.loc[df["t"] < MID, "amount"].to_numpy()
    b = df.loc[df["t"] >= MID, "amount"].to_numpy()
    assert r["features"][0]["value"] == pytest.approx(oracle(a, b), rel=1e-6)
    assert r["alert"]


def test_hellinger_and_explicit_threshold(fs: fti.FeatureStore) -> None:
    fg = _group(fs, _frame(3_000, shift=0.5, seed=8))
    r = _monitor(fs, fg, metric="hellinger", threshold=0.9).run()
    assert [f["metric"] for f in r["features"]] == ["hellinger", "hellinger"]
    assert {f["threshold"] for f in r["features"]} == {0.9}
    assert not r["alert"]


def test_history_accumulates_and_monitors_are_listed(fs: fti.FeatureStore) -> None:
    mon = _monitor(fs, _group(fs, _frame(2_000, seed=9)))
    mon.run()
    mon.run()
    h = mon.history()
    assert list(h["run"]) == [1, 1, 2, 2]
    assert list(h["feature"]) == ["amount", "country"] * 2
    assert [m.name for m in fs.monitors()] == ["tx_drift"]
    every = fs.monitor(
        "all",
        feature_group=fs.get_feature_group("tx"),
        reference=mon.spec.reference,
        detection=mon.spec.detection,
    )
    assert every.spec.features == ("amount", "country")  # keys and event time aside
    # get-or-create: the same definition returns it, fs.monitor(name) alone gets it
    assert _monitor(fs, fs.get_feature_group("tx")).name == "tx_drift"
    assert len(fs.monitor("tx_drift").history()) == 4
    with pytest.raises(
        fti.ConflictError, match=r"another definition \(stored: {'metric': 'auto'}\)"
    ):
        _monitor(fs, fs.get_feature_group("tx"), metric="psi")


def test_training_dataset_reference_and_prediction_log_detection(fs: fti.FeatureStore) -> None:
    df = _frame(1_500, seed=10)
    fg = _group(fs, df)
    fv = fs.feature_view("tx_fv", query=fg.select(["amount", "country"]))
    td = fv.create_training_dataset(end=MID)
    spec = log_spec(context_of(fs), "tx_fv", 1)
    rng = np.random.default_rng(11)
    rows = [
        LogRow(
            f"r{i}",
            0,
            MID + timedelta(minutes=i),
            {"id": i},
            {},
            {"amount": float(x), "country": "DE"},
            None,
            0,
            "m",
            1,
            td.version,
        )
        for i, x in enumerate(rng.normal(3, 1, 1_200))
    ]
    append(context_of(fs), spec, rows)
    mon = fs.monitor(
        "log_drift",
        feature_view=fv,
        features=["amount", "country"],
        reference=td,
        detection=fti.window(last=timedelta(days=30), prediction_log=True, model="m"),
    )
    r = mon.run(now=MID + timedelta(days=1))
    f = _by_feature(r)
    assert f["amount"]["n_ref"] == 1_500
    assert f["amount"]["n_detect"] == 1_200
    assert f["amount"]["metric"] == "psi"
    assert r["drifted"] == ["amount", "country"]


def test_scheduler_runs_a_due_monitor_once_per_tick(fs: fti.FeatureStore) -> None:
    mon = _monitor(fs, _group(fs, _frame(1_000, seed=12)), schedule="0 * * * *")
    assert [s.name for s in list_schedules(fs)] == ["monitor_tx_drift"]
    created = datetime.now(UTC)
    sched = Scheduler(fs)
    sched.run_due(created + timedelta(minutes=1) - timedelta(hours=2))  # nothing due yet
    assert mon.runs() == []
    next_hour = created.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    sched.run_due(next_hour + timedelta(minutes=1))
    sched.run_due(next_hour + timedelta(minutes=2))  # same tick: not run again
    assert [r["run"] for r in mon.runs()] == [1]
    sched.run_due(next_hour + timedelta(hours=1, minutes=1))
    assert [r["run"] for r in mon.runs()] == [1, 2]
    assert fs.delete_monitor("tx_drift") == [
        "schedule monitor_tx_drift",
        "2 run(s) of monitor tx_drift",
        "monitor tx_drift",
    ]
    assert list_schedules(fs) == []
    assert context_of(fs).registry.records("monitor_run", "tx_drift") == []
    with pytest.raises(fti.NotFoundError, match="'tx_drift' does not exist"):
        fs.monitor("tx_drift")


# ---------------------------------------------------------------------------- CLI
def _cli(root: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["monitor", *args, "--root", str(root)])


def test_cli_run_exit_codes_list_and_show(tmp_path: Path) -> None:
    root = tmp_path / "cli"
    with fti.connect(root) as fs:
        _monitor(fs, _group(fs, _frame(2_000, seed=13)), name="calm")
        _monitor(fs, _group(fs, _frame(2_000, shift=2, seed=14), "tx2"), name="wild")
    assert _cli(root, "run", "calm").exit_code == 0
    out = _cli(root, "run", "wild", "--json")
    assert out.exit_code == 1
    assert json.loads(out.stdout)["drifted"] == ["amount"]
    listed = json.loads(_cli(root, "list", "--json").stdout)
    assert {m["name"]: m["state"] for m in listed} == {"calm": "ok", "wild": "ALERT: amount"}
    assert "ALERT: amount" in _cli(root, "list").stdout
    shown = json.loads(_cli(root, "show", "wild", "--json").stdout)
    assert [r["run"] for r in shown["runs"]] == [1]
    # an error is not a drift: `fti` (main) prints it and exits 2
    assert isinstance(_cli(root, "run", "nope").exception, fti.NotFoundError)
    # the real entry point: 1 is drift, 2 is an error (printed without a traceback)
    for name, code in (("calm", 0), ("wild", 1), ("nope", 2)):
        proc = subprocess.run(
            [sys.executable, "-m", "fti", "monitor", "run", name, "--root", str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
    assert _cli(root, "delete", "wild").exit_code != 0  # not a terminal: needs --yes
    out = _cli(root, "delete", "wild", "--yes")
    assert "deleted monitor wild" in out.stdout
    assert [m["name"] for m in json.loads(_cli(root, "list", "--json").stdout)] == ["calm"]
    for verb in ("list", "run", "show", "delete"):
        assert "Example" in CliRunner().invoke(app, ["monitor", verb, "--help"]).stdout


# ---------------------------------------------------------------------------- webhook
@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    server.shutdown()
    server.server_close()


def test_webhook_receives_the_alert(
    fs: fti.FeatureStore, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = hook
    calm = _monitor(fs, _group(fs, _frame(2_000, seed=15)), name="calm", webhook=url)
    assert calm.run()["webhook"] is None
    assert received == []  # no alert, no post
    wild = _monitor(
        fs, _group(fs, _frame(2_000, shift=2, seed=16), "tx2"), name="wild", webhook=url
    )
    r = wild.run()
    assert r["webhook"] == {"host": "127.0.0.1", "delivered": True, "status": 204}
    assert received[0]["monitor"] == "wild"
    assert received[0]["drifted"] == ["amount"]
    assert [f["feature"] for f in received[0]["features"]] == ["amount"]
    assert wild.runs()[-1]["webhook"]["delivered"] is True
    assert wild.spec.public_dict()["webhook"] == f"http://{url.split('/')[2]}/..."


def test_an_undeliverable_webhook_is_recorded_not_raised(fs: fti.FeatureStore) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mon = _monitor(
        fs, _group(fs, _frame(2_000, shift=2, seed=17)), webhook=f"http://127.0.0.1:{port}/x"
    )
    r = mon.run()
    assert r["alert"]
    assert r["webhook"]["delivered"] is False
    assert mon.runs()[-1]["webhook"]["delivered"] is False


# ---------------------------------------------------------------------------- bad input
def test_bad_input_names_the_value_and_stores_nothing(fs: fti.FeatureStore) -> None:
    fg = _group(fs, _frame(1_000, seed=18))
    with pytest.raises(fti.ValidationError, match=r"'amout'.*Its features: \['amount'"):
        _monitor(fs, fg, features=["amout"])
    with pytest.raises(fti.ValidationError, match=r"metric='ks' needs numeric.*'country'"):
        _monitor(fs, fg, metric="ks")
    with pytest.raises(fti.ValidationError, match=r"metric='chi2' needs categorical.*'amount'"):
        _monitor(fs, fg, metric="chi2")
    with pytest.raises(fti.ValidationError, match="Unknown drift metric 'kl'"):
        _monitor(fs, fg, metric="kl")
    with pytest.raises(fti.ValidationError, match="credentials"):
        _monitor(fs, fg, webhook="http://user:pw@127.0.0.1/x")
    with pytest.raises(fti.ValidationError, match="'last' parameter must be a timedelta > 0"):
        fti.window(last=timedelta(0))
    with pytest.raises(fti.ValidationError, match=r"naive|timezone-aware"):
        fti.window(start=datetime(2026, 1, 1))
    assert fs.monitors() == []
    empty = _monitor(fs, fg, detection=fti.window(start=MID + timedelta(days=30)))
    with pytest.raises(
        fti.ValidationError, match=r"detection window .*no rows of feature 'amount'"
    ):
        empty.run()
    assert empty.runs() == []


def test_a_joined_view_reads_each_feature_from_its_own_group(fs: fti.FeatureStore) -> None:
    tx = _group(fs, _frame(3_000, seed=19))
    rng = np.random.default_rng(20)
    n = 3_000
    users = fs.feature_group("users", primary_key=["id"], event_time="t")
    users.insert(
        pd.DataFrame(
            {
                "id": np.arange(2 * n),
                "t": [T0 + timedelta(days=10 * i / n) for i in range(2 * n)],
                "age": np.r_[rng.normal(30, 5, n), rng.normal(50, 5, n)],
            }
        )
    )
    fv = fs.feature_view(
        "joined", query=tx.select(["amount"]).join(users.select(["age"]), prefix="u_")
    )
    r = fs.monitor(
        "joined_drift",
        feature_view=fv,
        features=["amount", "u_age"],
        reference=fti.window(end=MID),
        detection=fti.window(start=MID),
    ).run()
    f = _by_feature(r)
    assert (f["amount"]["n_ref"], f["u_age"]["n_ref"]) == (3_000, 3_000)
    assert r["drifted"] == ["u_age"]


floats = st.one_of(
    st.none(),
    st.just(math.nan),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, 1.0, 2.5]),  # values equal to bin edges
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(floats, st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))), max_size=60
    ),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=9),
)
def test_window_counts_match_plain_counting(
    rows: list[tuple[float | None, str | None]], raw_edges: list[float]
) -> None:
    """One DuckDB pass of histogram() per feature == counting by hand: a value's bin is the
    number of edges below it; null and NaN are missing."""
    import pyarrow as pa

    from fti.services import drift_windows

    edges = sorted(set(raw_edges) | {0.0, 1.0, 2.5})
    table = pa.table(
        {
            "x": pa.array([r[0] for r in rows], pa.float64()),
            "c": pa.array([r[1] for r in rows], pa.string()),
        }
    )
    scan = drift_windows.Scan(
        drift_windows.connect(ENGINE, table),
        {"x": 'CAST("x" AS DOUBLE)', "c": 'CAST("c" AS VARCHAR)'},
        "",
        [],
        "test",
    )
    got = drift_windows.window_counts(scan, {"x": edges})
    xs = [r[0] for r in rows]
    present = [x for x in xs if x is not None and not math.isnan(x)]
    want_bins: dict[int, int] = {}
    for x in present:
        b = sum(1 for e in edges if e < x)
        want_bins[b] = want_bins.get(b, 0) + 1
    assert got["x"].rows == len(rows)
    assert got["x"].nulls == len(rows) - len(present)
    assert got["x"].counts == want_bins
    cs = [r[1] for r in rows if r[1] is not None]
    assert got["c"].counts == {v: cs.count(v) for v in set(cs)}
    assert got["c"].nulls == len(rows) - len(cs)
    scan.con.close()


def test_the_web_ui_overview_shows_the_last_run_of_each_monitor(fs: fti.FeatureStore) -> None:
    from fastapi.testclient import TestClient

    from fti.ui.app import create_ui_app

    shifted = _group(fs, _frame(5_000, shift=1.0, de_share=0.8, seed=2), "tx2")
    drifting = _monitor(fs, shifted, name="tx2_drift")
    quiet = _monitor(fs, _group(fs, _frame(5_000, seed=1)), name="quiet_one")
    client = TestClient(create_ui_app(fs), raise_server_exceptions=False)
    page = client.get("/").text
    assert page.count("not run") >= 2  # neither has run yet
    assert drifting.run()["alert"]
    assert not quiet.run()["alert"]
    page = client.get("/").text
    assert "drifted amount, country" in page
    assert "not run" not in page
