"""The model server after another process changed a feature group's schema: a reload to a
model reading the new column serves it; a model whose inputs cannot be served is refused by
``/reload`` (the old one keeps serving) and makes ``/readyz`` answer 503 with the reason.

The other process is a second ``FeatureStore`` on the same root for the in-process app, and a
real process for ``fti serve`` (the exact scenario of the report)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import fti
from fti.definitions.fields import Field
from fti.services import feature_groups
from fti.serving import create_app

T = datetime(2026, 1, 1, tzinfo=UTC)
N = 40


def _train(fs: fti.FeatureStore, fv: Any, columns: list[str]) -> int:
    """Register the next version of model 'm' on ``fv`` (trained on hand-made rows: the view
    may read a column with no offline data yet); returns its version."""
    from sklearn.tree import DecisionTreeClassifier

    X = pd.DataFrame({c: [float(i % 7) for i in range(N)] for c in columns})
    y = [i % 2 for i in range(N)]
    clf = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    return int(fs.models.register("m", clf, feature_view=fv, input_example=X.head(2)).version)


def build(root: Path) -> None:
    """Group 'a' (online), view 'v' version 1 on x, model 'm' version 1 as m@production."""
    with fti.connect(root) as fs:
        a = fs.feature_group("a", primary_key=["id"], event_time="ts", online=True)
        a.insert(
            pd.DataFrame(
                {"id": range(N), "ts": [T] * N, "x": [float(i) for i in range(N)], "label": 0}
            )
        )
        fv = fs.feature_view("v", version=1, query=a.select(["x"]), labels=["label"])
        fs.models.set_alias("m", "production", _train(fs, fv, ["x"]))


def other_adds_column_y(root: Path) -> int:
    """The other process: add y to 'a' and insert a row carrying it."""
    with fti.connect(root) as fs:
        a = fs.get_feature_group("a")
        a.add_features({"y": "float64"})
        a.insert(pd.DataFrame({"id": [1], "ts": [T], "x": [10.0], "label": [1], "y": [3.0]}))
        return 0


def other_adds_y_and_moves_the_alias(root: Path) -> int:
    """The other process: add y to 'a', insert a row carrying it, view v2 on x and y, model
    version on v2, alias moved to it. Returns the model version."""
    other_adds_column_y(root)
    with fti.connect(root) as fs:
        a = fs.get_feature_group("a")
        fv2 = fs.feature_view("v", version=2, query=a.select(["x", "y"]), labels=["label"])
        version = _train(fs, fv2, ["x", "y"])
        fs.models.set_alias("m", "production", version)
        return version


def other_half_adds_z_and_moves_the_alias(root: Path) -> int:
    """The other process stored column z in the registry and stopped before the online table
    got it (as if killed inside fg.add_features); then a view on z and a model on that view,
    with the alias moved to it. Returns the model version."""
    with fti.connect(root) as fs:
        a = fs.get_feature_group("a")
        spec = a.spec
        feature_groups.set_columns(
            fs._ctx, spec, (*spec.columns, Field("z", "float64")), reason="columns_added"
        )
        fv3 = fs.feature_view("v", version=3, query=a.select(["x", "z"]), labels=["label"])
        version = _train(fs, fv3, ["x", "z"])
        fs.models.set_alias("m", "production", version)
        return version


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    build(path)
    return path


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    fs = fti.connect(root)
    app = create_app(fs, "m@production", log_predictions=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    fs.close()


def _predict(c: TestClient | httpx.Client, entity_id: int = 1) -> Any:
    return c.post(
        "/v1/models/m/predict", json={"entities": [{"id": entity_id}], "return_features": True}
    )


def test_reload_to_a_model_on_a_column_another_process_added_serves_it(
    client: TestClient, root: Path
) -> None:
    r = _predict(client)
    assert r.status_code == 200, r.text
    assert r.json()["features"] == [[1.0]]
    version = other_adds_y_and_moves_the_alias(root)
    r = client.post("/v1/models/m/reload")
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == version
    for _ in range(3):
        r = _predict(client)
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == version
        assert r.json()["feature_names"] == ["x", "y"]
        assert r.json()["features"] == [[10.0, 3.0]]
    assert _predict(client, 2).json()["features"] == [[2.0, None]]
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == version


def test_reload_refuses_a_model_whose_inputs_cannot_be_served(
    client: TestClient, root: Path
) -> None:
    assert _predict(client).json()["model_version"] == 1
    version = other_half_adds_z_and_moves_the_alias(root)
    r = client.post("/v1/models/m/reload")
    assert r.status_code == 409, r.text
    detail = r.text
    assert f"version {version} cannot be served" in detail
    assert "'a_v1'" in detail
    assert "['z']" in detail
    assert "Version 1 keeps serving" in detail
    # The old model keeps answering, and the server stays ready.
    r = _predict(client)
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == 1
    assert client.get("/readyz").status_code == 200
    # Once the group is opened (which adds the column online), the reload goes through.
    with fti.connect(root) as fs:
        fs.get_feature_group("a")
    r = client.post("/v1/models/m/reload")
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == version
    assert _predict(client).json()["features"] == [[1.0, None]]


def test_readyz_fails_with_the_reason_while_the_served_model_cannot_be_served(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    version = other_half_adds_z_and_moves_the_alias(root)
    with fti.connect(root) as fs:
        app = create_app(fs, f"m:{version}", log_predictions=False)
        assert "not ready" in caplog.text  # said at startup, which goes on
        assert "['z']" in caplog.text
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.get("/readyz")
            assert r.status_code == 503
            body = r.json()
            assert body["status"] == "not ready"
            assert body["model_version"] == version
            [reason] = body["reasons"]
            assert reason["check"] == "model_inputs"
            assert "'a_v1'" in reason["reason"]
            assert "['z']" in reason["reason"]
            assert "fti online rebuild" in reason["reason"]
            assert "Traceback" not in r.text
            assert str(root) not in r.text
            # A request says the same, as a server-side error (nothing the client can fix).
            r = _predict(c)
            assert r.status_code == 500
            assert "['z']" in r.text
            with fti.connect(root) as other:
                other.get_feature_group("a")  # adds the column online
            app.state.fti.readiness.invalidate()  # skip the 1 s the result is kept
            assert c.get("/readyz").status_code == 200
            assert _predict(c).status_code == 200


# ------------------------------------------------------------------ fti serve, real processes
TESTS = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_other(root: Path, function: str) -> int:
    """Run one of this module's 'other_*' functions in a separate Python process."""
    code = (
        "import sys; from pathlib import Path; import test_serving_schema_change as t; "
        f"print(t.{function}(Path(sys.argv[1])))"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS / "e2e"), str(TESTS), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"fti serve exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    pytest.fail("fti serve did not become ready")


@pytest.mark.slow
def test_a_store_reads_a_column_a_separate_process_added(root: Path) -> None:
    """The report's reproduction, with a real second process."""
    with fti.connect(root) as fs:
        a = fs.get_feature_group("a")
        fv1 = fs.get_feature_view("v", version=1)
        assert fv1.feature_vector({"id": 1}) == {"x": 1.0}
        assert a.read_online({"id": 1})[0]["x"] == 1.0
        _run_other(root, "other_adds_column_y")
        fv2 = fs.feature_view("v", version=2, query=a.select(["x", "y"]), labels=["label"])
        assert fv2.feature_vector({"id": 1}) == {"x": 10.0, "y": 3.0}
        assert fv1.feature_vector({"id": 1}) == {"x": 10.0}
        assert a.refresh().read_online({"id": 1})[0]["y"] == 3.0


@pytest.mark.slow
def test_fti_serve_reloads_onto_a_column_another_process_added(root: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fti",
            "serve",
            "--model",
            "m@production",
            "--port",
            str(port),
            "--root",
            str(root),
            "--no-log",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(url, proc)
        with httpx.Client(base_url=url, timeout=30) as c:
            assert _predict(c).json()["features"] == [[1.0]]
            version = _run_other(root, "other_adds_y_and_moves_the_alias")
            r = c.post("/v1/models/m/reload")
            assert r.status_code == 200, r.text
            r = _predict(c)
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == version
            assert r.json()["features"] == [[10.0, 3.0]]
            # A model whose inputs cannot be served: refused, the previous one keeps serving.
            refused = _run_other(root, "other_half_adds_z_and_moves_the_alias")
            r = c.post("/v1/models/m/reload")
            assert r.status_code == 409, r.text
            assert f"version {refused} cannot be served" in r.text
            assert _predict(c).json()["model_version"] == version
            assert c.get("/readyz").status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
