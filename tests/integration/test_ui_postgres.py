"""The web UI on a PostgreSQL registry: every page, search, filters and the alias move."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import fti
from fti.services import model_registry
from fti.ui.app import create_ui_app
from service_checks import create_pg_database, drop_pg_database, require_service
from ui_world import build

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> Iterator[fti.FeatureStore]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    url = create_pg_database()
    fs = fti.connect(tmp_path / "store", registry=url)
    try:
        yield fs
    finally:
        fs.close()
        drop_pg_database(url)


def test_every_page_on_postgresql(store: fti.FeatureStore) -> None:
    names = build(store)
    client = TestClient(create_ui_app(store), raise_server_exceptions=False)
    for path in (
        "/",
        "/groups",
        "/groups?offset=25",
        "/groups/checked/1",
        "/views/delays/1",
        "/models/delays?sort=auc",
        "/runs?status=died",
        f"/runs/{names['runs']['failed']}",
        "/lineage/model/delays?version=1",
        "/streams",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[-300:])
    found = client.get("/groups?q=EXTRA_2").text
    assert found.count('href="/groups/extra_2') == 10
    assert names["runs"]["failed"] in client.get("/runs?status=failed").text
    assert "checked v1" in client.get("/").text  # data-quality alert from the events query
    page = client.get("/models/delays").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    form = {"alias": "production", "version": "2", "csrf": csrf}
    moved = client.post("/models/delays/aliases", data=form, follow_redirects=False)
    assert moved.status_code == 303
    assert model_registry.aliases(store._ctx, "delays")["production"] == 2
