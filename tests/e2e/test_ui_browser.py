"""The web UI in a real browser: Debian's chromium driven by Playwright, against ``fti ui``'s app
served by uvicorn on a loopback port, over a small store (tests/ui_world.py) with auth on.

Every page loads without console errors (and the hostile group runs no script), links
navigate, search-as-you-type and pagination work, the alias move works with an admin token and
is refused with a read token. A screenshot of each page goes to the test's tmp folder.
Locally a missing chromium or Playwright skips; in CI (FTI_REQUIRE_SERVICES=1) it fails."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fti
from fti.services import model_registry
from fti.services.tokens import create_token
from fti.store import context_of
from fti.ui.app import create_ui_app
from ui_world import build

pytestmark = pytest.mark.slow  # a real browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = {
    "overview": "/",
    "groups": "/groups",
    "group": "/groups/flights/1",
    "group_evil": "/groups/evil/1",
    "group_checked": "/groups/checked/1",
    "views": "/views",
    "view": "/views/delays/1",
    "models": "/models",
    "model": "/models/delays",
    "runs": "/runs",
    "runs_failed": "/runs?status=failed",
    "lineage_model": "/lineage/model/delays?version=1",
    "lineage_group": "/lineage/feature_group/flights?version=1",
    "streams": "/streams",
}


def _require_browser() -> Any:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = 'Playwright is not installed (pip install "fti[dev]")'
    if problem is None and not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        problem = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if problem is not None:
        if os.environ.get("FTI_REQUIRE_SERVICES") == "1":
            pytest.fail(problem + " and FTI_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(problem)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _require_browser()
    import uvicorn

    fs = fti.connect(tmp_path_factory.mktemp("ui_browser") / "store")
    build(fs)
    tokens = {scope: create_token(context_of(fs), scope)[0] for scope in ("read", "admin")}
    port = _free_port()
    config = uvicorn.Config(
        create_ui_app(fs, auth=True), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the UI server did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "tokens": tokens, "fs": fs}
    srv.should_exit = True
    thread.join(timeout=10)
    fs.close()


@pytest.fixture(scope="module")
def browser(server: dict[str, Any]) -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Session:
    """A browser context signed in with one token; collects console errors."""

    def __init__(self, browser: Any, base: str, token: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1366, "height": 800})
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # the sign-in form every route answers with (401) until a token is given
        self.page.goto(base + "/")
        self.page.fill("input[name=token]", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(base + "/")
        assert self.errors == [
            "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
        ]
        self.errors.clear()  # that 401 was the sign-in page itself

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None
        return response

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def reader(browser: Any, server: dict[str, Any]) -> Iterator[Session]:
    s = Session(browser, server["url"], server["tokens"]["read"])
    yield s
    s.close()


def test_every_page_loads_without_console_errors(
    reader: Session, tmp_path: Path, server: dict[str, Any]
) -> None:
    page = reader.page
    for name, path in PAGES.items():
        response = reader.goto(path)
        assert response.status == 200, (path, response.status)
        assert page.locator("main h1").count() == 1, path
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    assert reader.errors == []
    # the hostile description and cell values were text, not markup: no script ran
    reader.goto("/groups/evil/1")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert "<script>" in page.locator("p.description").inner_text()
    assert len(list(tmp_path.glob("*.png"))) == len(PAGES)


def test_model_charts_render_as_svg_with_a_table_fallback(reader: Session) -> None:
    page = reader.page
    reader.goto("/models/delays")
    charts = page.locator("figure.chart")
    assert charts.count() >= 3  # live metrics per day, coverage, drift of distance
    auc = page.locator("figure.chart", has_text="auc per day")
    box = auc.locator("svg.chart").bounding_box()
    assert box is not None  # laid out and visible
    assert (box["width"] > 300, box["height"] > 100) == (True, True)
    assert auc.locator("polyline").count() == 2  # live and registered test metric
    drift = page.locator("figure.chart", has_text="monitor distance_drift")
    assert drift.locator("circle").count() >= 2
    # the numbers are one click away, as a table
    drift.locator("summary").click()
    assert drift.locator("table.chart-data tbody tr").count() == 2
    reader.goto("/groups/flights/1")
    assert page.locator("table.stats svg.hist rect").count() > 0  # quantile histogram
    reader.goto("/lineage/feature_group/flights?version=1")
    page.locator("details.lineage-table summary").click()
    assert page.locator("tr.lineage-row").count() >= 2
    assert reader.errors == []


def test_links_navigate_between_objects(reader: Session) -> None:
    page, base = reader.page, reader.base
    reader.goto("/")
    page.click("header nav >> text=Feature groups")
    page.wait_for_url(base + "/groups")
    page.click("a[rel=next]")  # flights sorts after the 30 extra groups
    page.click("main >> a[href='/groups/flights/1']")
    page.wait_for_url(base + "/groups/flights/1")
    page.click("main >> a[href='/views/delays/1']")
    page.wait_for_url(base + "/views/delays/1")
    page.click("text=Lineage")
    page.wait_for_url("**/lineage/feature_view/delays?version=1")
    page.click("svg.lineage a.node-training_dataset")  # a node of the graph is a link
    page.wait_for_url("**/lineage/training_dataset/**")
    page.click("text=Open the training dataset")
    page.wait_for_url("**/views/delays/1#td-1")
    reader.goto("/runs?status=failed")
    page.click("main td a")
    page.wait_for_url("**/runs/*")
    assert "no rows" in page.locator("pre.error-message").inner_text()
    assert reader.errors == []


def test_search_as_you_type_and_pagination(reader: Session) -> None:
    page, base = reader.page, reader.base
    reader.goto("/groups")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 25
    page.click("a[rel=next]")
    page.wait_for_url(base + "/groups?offset=25")
    assert rows.count() == 36 - 25
    page.click("a[rel=prev]")
    page.wait_for_url(base + "/groups?offset=0")
    page.locator("input[name=q]").press_sequentially("extra_1", delay=20)  # no submit
    from playwright.sync_api import expect

    expect(rows).to_have_count(10)  # the results were replaced in place
    assert page.url.endswith("/groups?q=extra_1")
    assert reader.errors == []


def test_alias_move_with_admin_token_and_refused_with_read_token(
    browser: Any, server: dict[str, Any], reader: Session, tmp_path: Path
) -> None:
    ctx = server["fs"]._ctx
    model_registry.set_alias(ctx, "delays", "production", 1)
    # a read token sees no form, and a hand-made POST is refused
    reader.goto("/models/delays")
    assert reader.page.locator("form.alias-form").count() == 0
    status = reader.page.evaluate(
        """async () => (await fetch('/models/delays/aliases', {method: 'POST',
            headers: {'Content-Type': 'application/x-www-form-urlencoded'},
            body: 'alias=production&version=2&csrf=00'})).status"""
    )
    assert status == 403
    assert model_registry.aliases(ctx, "delays")["production"] == 1
    admin = Session(browser, server["url"], server["tokens"]["admin"])
    try:
        admin.goto("/models/delays")
        admin.page.select_option("form.alias-form select[name=version]", "2")
        admin.page.click("form.alias-form button[type=submit]")
        admin.page.wait_for_load_state()
        assert "production → version 2" in admin.page.locator("ul.aliases").inner_text()
        admin.page.screenshot(path=str(tmp_path / "model_after_alias_move.png"))
        assert admin.errors == []
    finally:
        admin.close()
    assert model_registry.aliases(ctx, "delays")["production"] == 2
