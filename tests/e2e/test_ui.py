"""The web UI over HTTP (in-process ASGI client): every page, escaping, auth on every route,
CSRF on the alias move, generic error pages, pagination and search, mounting under /ui."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import fti
from fti.services import model_registry
from fti.services.tokens import create_token
from fti.store import context_of
from fti.ui import pages
from fti.ui.app import create_ui_app
from ui_world import EVIL_CELL, EVIL_DESCRIPTION, build

PAGES = [
    "/",
    "/groups",
    "/groups?offset=25",
    "/groups?q=extra",
    "/groups/flights/1",
    "/groups/evil/1",
    "/groups/checked/1",
    "/views",
    "/views/delays/1",
    "/models",
    "/models/delays",
    "/models/delays?sort=auc&desc=false",
    "/runs",
    "/runs?status=failed",
    "/runs?status=died",
    "/runs?pipeline=train_delays",
    "/lineage/model/delays?version=1",
    "/lineage/feature_group/flights?version=1",
    "/streams",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[fti.FeatureStore, Any]]:
    fs = fti.connect(tmp_path_factory.mktemp("ui") / "store")
    names = build(fs)
    yield fs, names
    fs.close()


@pytest.fixture(scope="module")
def client(world: tuple[fti.FeatureStore, Any]) -> TestClient:
    return TestClient(create_ui_app(world[0]), raise_server_exceptions=False)


def text(html: str) -> str:
    """The visible text of a page's main part."""
    main = html.split("<main>", 1)[1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main))


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200, (path, r.text[-500:])
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "Traceback" not in r.text


def test_pages_show_what_the_store_holds(client: TestClient, world: Any) -> None:
    runs = world[1]["runs"]
    overview = text(client.get("/").text)
    assert "36 feature groups" in overview
    assert int(re.search(r"(\d+) runs", overview).group(1)) >= 3  # a later test adds one
    # failed and died runs come first, each with its status as text (not only colour)
    assert overview.index(runs["failed"]) < overview.index(runs["succeeded"])
    assert overview.index(runs["died"]) < overview.index(runs["succeeded"])
    assert "checked v1" in overview
    assert "not_null" in overview
    assert re.search(r"distance_drift v1 (drift|ok) ", overview)  # its last run, as text
    assert "clicks" in overview
    group = text(client.get("/groups/checked/1").text)
    assert "quarantined rows 1" in group
    assert "WRITE" in group
    assert "failed: not_null" in group
    flights = client.get("/groups/flights/1").text
    assert 'href="/views/delays/1"' in flights  # the views that use it
    assert '<svg class="hist"' in flights  # histograms
    model = client.get("/models/delays?sort=auc").text
    assert "production" in model
    assert "sha256" in model
    assert client.get("/runs?status=died").text.count("/runs/2") == 1
    streams = text(client.get("/streams").text)
    assert "250.5" in streams
    assert "secret" not in streams


def test_links_lead_to_pages_that_exist(client: TestClient) -> None:
    seen: set[str] = set()
    for path in ("/", "/groups", "/groups/flights/1", "/models/delays", "/views/delays/1"):
        for href in re.findall(r'href="(/[^"#]*)', client.get(path).text):
            href = href.replace("&amp;", "&")
            if href in seen or href.startswith("/static/"):
                continue
            seen.add(href)
            assert client.get(href).status_code == 200, (path, href)
    assert len(seen) > 15


def test_hostile_text_is_escaped(client: TestClient) -> None:
    for path in ("/groups/evil/1", "/groups?q=evil", "/groups"):
        html = client.get(path).text
        assert "<script>window" not in html, path
        assert "<img src=x" not in html, path
    html = client.get("/groups/evil/1").text
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html  # the description, escaped
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the cell value, escaped
    assert "&lt;b&gt;no rows&lt;/b&gt;" in client.get("/runs?status=failed").text
    assert EVIL_DESCRIPTION not in html
    assert EVIL_CELL not in html
    # a query string echoed into the search box is escaped too
    echoed = client.get('/groups?q="><script>alert(1)</script>').text
    assert "<script>alert(1)" not in echoed


def test_pagination_and_search(client: TestClient) -> None:
    first = client.get("/groups").text
    assert first.count('<tr>\n<td><a href="/groups/') == pages.PAGE_SIZE
    assert 'rel="next" href="/groups?offset=25"' in first
    assert 'rel="prev"' not in first
    second = client.get("/groups?offset=25").text
    assert second.count('<tr>\n<td><a href="/groups/') == 36 - pages.PAGE_SIZE
    assert 'rel="prev" href="/groups?offset=0"' in second
    assert 'rel="next"' not in second
    found = re.findall(r'href="/groups/(extra_1\d)/1"', client.get("/groups?q=EXTRA_1").text)
    assert found == [f"extra_1{i}" for i in range(10)]


def test_errors_are_short_pages_without_stack_traces(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_ui_app(world[0]), raise_server_exceptions=False)
    missing = client.get("/groups/nope/1")
    assert missing.status_code == 404
    assert "does not exist" in missing.text
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/groups?offset=-1").status_code == 400
    assert client.get("/runs?status=sleeping").status_code == 422

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail at /home/someone/store")

    monkeypatch.setattr(pages, "group_rows", crash)
    r = client.get("/groups")
    assert r.status_code == 500
    assert "secret" not in r.text
    assert "Traceback" not in r.text
    assert "/home" not in r.text


@pytest.fixture(scope="module")
def tokens(world: Any) -> dict[str, str]:
    ctx = context_of(world[0])
    return {scope: create_token(ctx, scope)[0] for scope in ("read", "admin", "predict")}


@pytest.fixture(scope="module")
def auth_client(world: Any, tokens: dict[str, str]) -> TestClient:
    return TestClient(create_ui_app(world[0], auth=True), raise_server_exceptions=False)


def _sample_path(route: APIRoute) -> str:
    values = {
        "name": "delays",
        "version": "1",
        "kind": "model",
        "run_id": "x",
        "filename": "ui.css",
    }
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values[m.group(1)], route.path)


def test_every_route_needs_a_token(world: Any, auth_client: TestClient) -> None:
    app = auth_client.app
    assert isinstance(app, FastAPI)
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 13
    checked = 0
    for route in routes:
        for method in route.methods:
            if (route.path, method) == ("/login", "POST"):
                continue  # the one route that takes a token rather than needing one
            r = auth_client.request(method, _sample_path(route))
            assert r.status_code == 401, (method, route.path, r.status_code)
            assert 'name="token"' in r.text  # the sign-in form
            bad = auth_client.request(
                method, _sample_path(route), headers={"Authorization": "Bearer fti_x_y"}
            )
            assert bad.status_code == 401, (method, route.path)
            checked += 1
    assert checked == len(routes) - 1


def test_read_token_views_and_login_keeps_it_in_a_cookie(
    world: Any, tokens: dict[str, str]
) -> None:
    client = TestClient(create_ui_app(world[0], auth=True), raise_server_exceptions=False)
    header = {"Authorization": f"Bearer {tokens['read']}"}
    assert client.get("/groups", headers=header).status_code == 200
    assert (
        client.get("/groups", headers={"Authorization": f"Bearer {tokens['predict']}"}).status_code
        == 403
    )
    assert client.post("/login", data={"token": "fti_nope_x"}).status_code == 401
    login = client.post(
        "/login", data={"token": tokens["read"], "next": "/models"}, follow_redirects=False
    )
    assert login.status_code == 303
    assert login.headers["location"] == "/models"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert client.get("/models").status_code == 200  # the cookie carries the token now
    offsite = client.post(
        "/login", data={"token": tokens["read"], "next": "//evil.example/"}, follow_redirects=False
    )
    assert offsite.headers["location"] == "/"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


def test_alias_move_needs_admin_and_csrf(
    world: Any, tokens: dict[str, str], auth_client: TestClient
) -> None:
    fs = world[0]
    ctx = fs._ctx
    model_registry.set_alias(ctx, "delays", "production", 1)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    read = {"Authorization": f"Bearer {tokens['read']}"}
    assert 'name="csrf"' not in auth_client.get("/models/delays", headers=read).text
    page = auth_client.get("/models/delays", headers=admin).text
    token = _csrf(page)
    form = {"alias": "production", "version": "2", "csrf": token}
    assert auth_client.post("/models/delays/aliases", data=form).status_code == 401
    assert auth_client.post("/models/delays/aliases", data=form, headers=read).status_code == 403
    no_csrf = {"alias": "production", "version": "2"}
    assert (
        auth_client.post("/models/delays/aliases", data=no_csrf, headers=admin).status_code == 403
    )
    forged = {**form, "csrf": "0" * 64}
    assert auth_client.post("/models/delays/aliases", data=forged, headers=admin).status_code == 403
    assert model_registry.aliases(ctx, "delays")["production"] == 1  # nothing moved
    moved = auth_client.post(
        "/models/delays/aliases", data=form, headers=admin, follow_redirects=False
    )
    assert moved.status_code == 303
    assert moved.headers["location"] == "/models/delays"
    assert model_registry.aliases(ctx, "delays")["production"] == 2
    bad_version = {**form, "version": "99"}
    r = auth_client.post("/models/delays/aliases", data=bad_version, headers=admin)
    assert r.status_code == 404
    assert "Traceback" not in r.text
    model_registry.set_alias(ctx, "delays", "production", 1)


def test_mounted_under_a_prefix_links_stay_inside_it(world: Any) -> None:
    parent = FastAPI()
    parent.mount("/ui", create_ui_app(world[0]))
    client = TestClient(parent)
    html = client.get("/ui/groups").text
    assert 'href="/ui/groups/checked/1"' in html
    assert 'href="/ui/static/ui.css"' in html
    assert client.get("/ui/static/ui.js").status_code == 200
    assert client.get("/ui/lineage/model/delays").status_code == 200


def test_cli_refuses_a_public_bind_without_auth(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "fti", "ui", "--host", "0.0.0.0", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "--auth" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_fti_serve_ui_mounts_the_ui_next_to_the_model_routes(world: Any) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = str(world[0].config.root)
    cmd = [sys.executable, "-m", "fti", "serve", "--model", "delays@production", "--ui"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--root", root, "--no-log", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "fti serve --ui did not start"
            time.sleep(0.2)
        page = httpx.get(f"http://127.0.0.1:{port}/ui/models/delays", timeout=10)
        assert page.status_code == 200
        assert 'href="/ui/views/delays/1#td-1"' in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_lineage_page_shows_a_run_recorded_after_it_was_first_drawn(
    world: Any, client: TestClient
) -> None:
    from fti.pipelines.runs import finish_run, start_run
    from fti.store import context_of

    path = "/lineage/feature_group/flights?version=1"
    assert client.get(path).status_code == 200  # the lineage index is built and kept
    ctx = context_of(world[0])
    run = start_run(
        ctx, kind="feature", pipeline="late_writer", function="f:g", parameters={}, source=None
    )
    finish_run(
        ctx,
        run,
        status="succeeded",
        error=None,
        inputs=[],
        outputs=[{"kind": "feature_group", "name": "flights", "version": 1, "table_version": 1}],
    )
    assert "late_writer" in client.get(path).text


def test_a_large_lineage_is_drawn_bounded_nearest_first(tmp_path: Path) -> None:
    from fti.pipelines.runs import finish_run, start_run
    from fti.services.lineage_graph import lineage
    from fti.store import context_of
    from fti.ui.graph import MAX_NODES_PER_SIDE

    with fti.connect(tmp_path / "store") as fs:
        ctx = context_of(fs)
        for i in range(MAX_NODES_PER_SIDE + 10):
            run = start_run(
                ctx, kind="feature", pipeline=f"w{i}", function="f:g", parameters={}, source=None
            )
            out = [{"kind": "feature_group", "name": "g", "version": 1, "table_version": i}]
            finish_run(ctx, run, status="succeeded", error=None, inputs=[], outputs=out)
        full = lineage(ctx, "feature_group", "g", 1)
        assert len(full.upstream()) == MAX_NODES_PER_SIDE + 10
        bounded = lineage(ctx, "feature_group", "g", 1, limit=5)
        assert bounded.upstream() == full.upstream()[:5]
        html = TestClient(create_ui_app(fs)).get("/lineage/feature_group/g?version=1").text
        assert html.count('class="node node-run"') == MAX_NODES_PER_SIDE
        assert f"More than {MAX_NODES_PER_SIDE} nodes" in html


# ------------------------------------------------------------------ values shown are the store's
def _row_cells(html: str, first_cell: str, *, after: str = "") -> list[str]:
    """The cells of the table row whose first cell is ``first_cell`` (after ``after``)."""
    html = html.split(after, 1)[1] if after else html
    row = re.search(rf"<tr>\s*<td>{re.escape(first_cell)}</td>(.*?)</tr>", html, re.S)
    assert row is not None, first_cell
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]


def test_group_statistics_are_fg_statistics(client: TestClient, world: Any) -> None:
    fs = world[0]
    stats = fs.get_feature_group("flights", version=1).statistics()["distance"]
    cells = _row_cells(client.get("/groups/flights/1").text, "distance", after='class="stats"')
    kind, count, nulls, _distinct, mean, std, low, high, quantiles = cells[:9]
    assert (kind, count, nulls) == ("float", str(stats["count"]), str(stats["nulls"]))
    assert (mean, std) == (pages.cell(stats["mean"]), pages.cell(stats["stddev"]))
    assert (low, high) == (pages.cell(stats["min"]), pages.cell(stats["max"]))
    assert f"p50 {pages.cell(stats['quantiles']['p50'])}" in quantiles


def test_group_page_and_list_follow_new_commits(client: TestClient, world: Any) -> None:
    """Facts are cached per table version: a new commit shows at once (rows, current keys,
    statistics, last commit)."""
    import pandas as pd

    from ui_world import T0

    fs = world[0]
    fresh = fs.feature_group("fresh", primary_key=["k"], event_time="at", online=True)
    fresh.insert(pd.DataFrame({"k": ["a", "b"], "at": [T0, T0], "v": [1.0, 2.0]}))
    listing = client.get("/groups?q=fresh").text
    cells = _row_cells(listing, '<a href="/groups/fresh/1">fresh</a>')
    assert cells[4:8][:2] == ["2", "2"]  # rows, current keys
    before = _row_cells(client.get("/groups/fresh/1").text, "v", after='class="stats"')
    fresh.insert(pd.DataFrame({"k": ["b", "c"], "at": [T0, T0], "v": [5.0, 7.0]}))
    cells = _row_cells(client.get("/groups?q=fresh").text, '<a href="/groups/fresh/1">fresh</a>')
    assert cells[4:6] == ["4", str(len(fresh.read(latest=True)))] == ["4", "3"]
    assert cells[7].endswith("ago")  # freshness
    after = _row_cells(client.get("/groups/fresh/1").text, "v", after='class="stats"')
    assert (before[1], after[1]) == ("2", "4")
    assert after[7] == pages.cell(fresh.statistics()["v"]["max"]) == "7"


def test_tags_are_shown_and_escaped(client: TestClient, world: Any) -> None:
    from fti.store import context_of

    registry = context_of(world[0]).registry
    rec = registry.get("feature_group", "evil", 1)
    assert rec is not None
    tag = "<script>window.__xss=4</script>"
    registry.update(
        "feature_group", "evil", 1, {**rec.body, "tags": {"team": tag}}, revision=rec.revision
    )
    for path in ("/groups?q=evil", "/groups/evil/1"):
        html = client.get(path).text
        assert tag not in html
        assert "team=&lt;script&gt;window.__xss=4&lt;/script&gt;" in html


def test_lineage_table_equals_fs_lineage(client: TestClient, world: Any) -> None:
    import html as html_lib

    fs = world[0]
    for kind, name, version in (("model", "delays", 1), ("feature_group", "flights", 1)):
        lin = fs.lineage((kind, name, version))
        page = client.get(f"/lineage/{kind}/{name}?version={version}").text
        rows = re.findall(
            r'<tr class="lineage-row"><td>(\w+)</td><td class="num">\d+</td><td>[^<]*</td>'
            r'<td><a href="[^"]*">(.*?)</a>',
            page,
        )
        shown = {(side, html_lib.unescape(label)) for side, label in rows}
        expected = {("upstream", n.label()) for n in lin.upstream()}
        expected |= {("downstream", n.label()) for n in lin.downstream()}
        assert shown == expected
        assert any("run" in label for _, label in shown)  # a pipeline run is in both


def test_model_page_charts_are_the_stored_numbers(client: TestClient, world: Any) -> None:
    from fti.services import monitoring
    from fti.store import context_of

    fs = world[0]
    perf = fs.models.performance("delays", every="1D")
    page = client.get("/models/delays").text
    figure = page.split("<figcaption>auc per day</figcaption>", 1)[1].split("</figure>", 1)[0]
    assert "<polyline" in figure
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", figure)
    assert [r[1] for r in rows] == [pages.cell(v) for v in perf["auc"]]
    assert [r[2] for r in rows] == [pages.cell(v) for v in perf["test_auc"]]
    runs = monitoring.history(context_of(fs), "distance_drift")
    figure = page.split("monitor distance_drift: distance", 1)[1].split("</figure>", 1)[0]
    rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>(\w+)</td>", figure)
    assert [r[0] for r in rows] == [pages.cell(r["features"][0]["value"]) for r in runs]
    assert [r[1] for r in rows] == [pages.cell(r["features"][0]["threshold"]) for r in runs]
    assert [r[2] == "yes" for r in rows] == [r["features"][0]["drifted"] for r in runs]
    assert len(rows) == 2
