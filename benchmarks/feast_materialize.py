"""Feast's ``materialize`` of ``online_bulk.py``'s Parquet file into SQLite (run by a Feast
interpreter).

    /tmp/feast-venv/bin/python benchmarks/feast_materialize.py --data stats.parquet

Does not import fti: it runs in a separate virtualenv with ``feast`` installed. It writes a Feast
repo in a temporary folder (DuckDB offline store over the file, SQLite online store) with one
feature view ``user_stats`` (entity ``user_id``, ``f0..f4``, event time ``ts``), then times
``FeatureStore.materialize(start, end)`` over the whole time range and prints one JSON line:
seconds, rows, keys held online afterwards, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()

    # JSON goes to the original stdout; whatever Feast prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import feast
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    ts = pq.read_table(args.data, columns=["ts"]).column("ts")
    start, end = pc.min(ts).as_py(), pc.max(ts).as_py() + timedelta(seconds=1)
    rows = len(ts)
    with tempfile.TemporaryDirectory(prefix="fti-bench-feast-mat-") as tmp:
        repo = Path(tmp)
        (repo / "feature_store.yaml").write_text(
            "project: fti_bulk\n"
            f"registry: {repo / 'registry.db'}\n"
            "provider: local\n"
            "offline_store:\n  type: duckdb\n"
            f"online_store:\n  type: sqlite\n  path: {repo / 'online.db'}\n"
            "entity_key_serialization_version: 3\n"
        )
        user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
        view = FeatureView(
            name="user_stats",
            entities=[user],
            ttl=timedelta(days=3650),
            schema=[Field(name=f"f{i}", dtype=Float64) for i in range(5)],
            source=FileSource(name="user_stats_src", path=str(args.data), timestamp_field="ts"),
        )
        fs = FeatureStore(repo_path=str(repo))
        fs.apply([user, view])
        started = time.perf_counter()
        fs.materialize(start_date=start, end_date=end)
        seconds = time.perf_counter() - started
        con = sqlite3.connect(repo / "online.db")
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next(t for t in tables if t.endswith("user_stats"))
        keys = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] // 5
        con.close()
    print(
        json.dumps(
            {
                "feast": feast.__version__,
                "seconds": seconds,
                "rows": rows,
                "keys": keys,
                "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
            }
        ),
        file=out,
        flush=True,
    )


if __name__ == "__main__":
    main()
