"""The same flows on real servers: Redis online store and PostgreSQL registry.

feature pipeline -> training dataset -> model registry -> batch inference -> online vectors,
with the online invariant checked: ``feature_vector(k)`` now equals the point-in-time join for
the spine row ``(k, now)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

import fti
from service_checks import require_service

pytestmark = pytest.mark.integration

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
T0 = datetime(2024, 6, 1, tzinfo=UTC)


def _require(request: pytest.FixtureRequest, name: str, port: int) -> None:
    require_service(name, "127.0.0.1", port)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    _require(request, "Redis", 6379)
    import redis

    prefix = "fti_test_" + uuid.uuid4().hex[:12]
    yield f"redis://127.0.0.1:6379/0?prefix={prefix}"
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.unlink(*keys)
    client.close()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    _require(request, "PostgreSQL", 5432)
    import psycopg

    name = "fti_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _customers(n: int, days: int, rng: np.random.Generator) -> pa.Table:
    ids = np.repeat(np.arange(n), days)
    day = np.tile(np.arange(days), n)
    return pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "ts": pa.array([T0 + timedelta(days=int(d)) for d in day], pa.timestamp("us", "UTC")),
            "spend": pa.array(rng.gamma(2.0, 10.0, n * days)),
            "visits": pa.array(rng.integers(0, 20, n * days), pa.int64()),
        }
    )


def _orders(n: int, rng: np.random.Generator) -> pa.Table:
    ids = rng.integers(0, 40, n)
    hours = rng.integers(0, 24 * 10, n)
    amount = rng.gamma(2.0, 20.0, n)
    return pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "ts": pa.array(
                [T0 + timedelta(hours=int(h)) for h in hours], pa.timestamp("us", "UTC")
            ),
            "amount": pa.array(amount),
            "big": pa.array((amount > 40).astype(np.int64)),
        }
    )


def test_feature_training_inference_online_flow(
    tmp_path: Path, redis_url: str, pg_url: str
) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    fs = fti.connect(tmp_path / "store", online=redis_url, registry=pg_url)
    # Feature pipeline.
    customers = fs.feature_group(
        "customers", primary_key=["customer_id"], event_time="ts", online=True
    )
    orders = fs.feature_group("orders", primary_key=["customer_id"], event_time="ts", online=True)
    customers.insert(_customers(40, 10, rng))
    order_rows = _orders(400, rng)
    orders.insert(order_rows)
    # an order repeated at the same (customer, hour) is a correction: one row each
    pairs = zip(order_rows["customer_id"].to_pylist(), order_rows["ts"].to_pylist(), strict=True)
    distinct = len(set(pairs))
    # Training pipeline.
    fv = fs.feature_view(
        "big_orders",
        query=orders.select(["amount"]).join(
            customers.select(["spend", "visits"]), on=["customer_id"], prefix="c_"
        ),
        labels=["big"],
    )
    td = fv.create_training_dataset(split={"train": 0.8, "test": 0.2}, seed=1)
    X_train, y_train = td.read("train")
    X_test, y_test = td.read("test")
    assert len(X_train) + len(X_test) == distinct < 400
    assert list(X_train.columns) == ["amount", "c_spend", "c_visits"]
    model = LogisticRegression(max_iter=1000).fit(X_train, np.ravel(y_train))
    accuracy = float((model.predict(X_test) == np.ravel(y_test)).mean())
    mv = fs.models.register(
        "big_orders", model, metrics={"accuracy": accuracy}, feature_view=fv, training_dataset=td
    )
    mv.set_alias("production")
    # Batch inference, from a second connection to the same servers.
    fs2 = fti.connect(tmp_path / "store", online=redis_url, registry=pg_url)
    fv2 = fs2.get_feature_view("big_orders", version=1)
    X = fv2.batch_data(start=T0, end=T0 + timedelta(days=5), training_dataset_version=td.version)
    production = fs2.models.get("big_orders", alias="production")
    assert production.version == mv.version
    predictions = production.load().predict(X)
    assert len(predictions) == len(X) > 0
    assert set(np.unique(predictions)) <= {0, 1}
    # Online: the vector now equals the point-in-time join at now, for every key.
    now = datetime.now(UTC)
    keys = sorted(set(orders.read()["customer_id"].tolist()))[:10]
    spine = pa.table(
        {
            "customer_id": pa.array(keys, pa.int64()),
            "ts": pa.array([now] * len(keys), pa.timestamp("us", "UTC")),
        }
    )
    offline = fv2.training_data(spine=spine).to_dict("records")
    for key, row in zip(keys, offline, strict=True):
        vector: dict[str, Any] = fv2.feature_vector({"customer_id": key})
        assert {k: vector[k] for k in ("amount", "c_spend", "c_visits")} == {
            k: row[k] for k in ("amount", "c_spend", "c_visits")
        }
    # The metadata is in PostgreSQL, the online rows in Redis.
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        kinds = set(conn.execute(sa.text("SELECT DISTINCT kind FROM fti_objects")).scalars())
    engine.dispose()
    assert {"feature_group", "feature_view"} <= kinds
    assert customers.stats()["online_rows"] == 40
    fs2.close()
    fs.close()
