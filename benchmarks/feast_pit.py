"""Feast's point-in-time join on ``training_data.py``'s Parquet files (run by a Feast interpreter).

    /tmp/feast-venv/bin/python benchmarks/feast_pit.py --activity a.parquet --profile p.parquet \
        --spine spine.parquet --store duckdb --repeat 3 [--sync]

Does not import fti: it runs in a separate virtualenv with ``feast`` installed (Feast pins its
own pandas/pyarrow/duckdb versions). It writes a Feast repo in a temporary folder with two
entities' feature views over the given files (``activity``: f0..f4, TTL 30 days, event time
``ts``; ``profile``: age, country, score, no TTL, event time ``pts``), then times
``FeatureStore.get_historical_features(entity_df=spine, features=[...]).to_df()`` (the spine is
read into pandas once, outside the timing).

Without ``--sync`` it runs ``--repeat`` rounds and prints one JSON line. With ``--sync`` the
caller drives the rounds: the driver prints ``ready`` once set up, then for each line ``run``
read from stdin times one call and prints its JSON result; ``quit`` ends it. That lets
``training_data.py`` interleave Feast with its other contestants.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

TTL = timedelta(days=30)
FEATURES = [f"activity:f{i}" for i in range(5)] + [
    "profile:age",
    "profile:country",
    "profile:score",
]


def write_repo(repo: Path, store: str) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: fti_bench\n"
        f"registry: {repo / 'registry.db'}\n"
        "provider: local\n"
        "offline_store:\n"
        f"  type: {store}\n"
        "online_store:\n"
        "  type: sqlite\n"
        f"  path: {repo / 'online.db'}\n"
        "entity_key_serialization_version: 3\n"
    )


def make_store(repo: Path, store: str, activity: Path, profile: Path) -> Any:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64, String

    write_repo(repo, store)
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    activity_fv = FeatureView(
        name="activity",
        entities=[user],
        ttl=TTL,
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(5)],
        source=FileSource(name="activity_src", path=str(activity), timestamp_field="ts"),
    )
    profile_fv = FeatureView(
        name="profile",
        entities=[user],
        ttl=timedelta(0),  # no TTL, like the fti feature group and the baseline
        schema=[
            Field(name="age", dtype=Int64),
            Field(name="country", dtype=String),
            Field(name="score", dtype=Float64),
        ],
        source=FileSource(name="profile_src", path=str(profile), timestamp_field="pts"),
    )
    fs = FeatureStore(repo_path=str(repo))
    fs.apply([user, activity_fv, profile_fv])
    return fs


def run_once(fs: Any, spine: pd.DataFrame) -> dict[str, Any]:
    started = time.perf_counter()
    df = fs.get_historical_features(entity_df=spine, features=FEATURES).to_df()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": len(df),
        "columns": list(df.columns),
        # Non-null counts, to compare with fti's result on the same spine.
        "non_null": {c: int(df[c].notna().sum()) for c in ("f0", "age")},
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activity", type=Path, required=True)
    parser.add_argument("--profile", type=Path, required=True)
    parser.add_argument("--spine", type=Path, required=True)
    parser.add_argument("--store", choices=["duckdb", "file"], default="duckdb")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sync", action="store_true", help="rounds driven through stdin")
    args = parser.parse_args()

    # Results go to the original stdout; anything Feast, ibis or DuckDB print (from Python or
    # C) goes to stderr, so the caller reads only JSON lines.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import feast

    spine = pq.read_table(args.spine).to_pandas()
    with tempfile.TemporaryDirectory(prefix="fti-bench-feast-") as tmp:
        fs = make_store(Path(tmp) / "repo", args.store, args.activity, args.profile)
        meta = {"feast": feast.__version__, "store": args.store, "spine_rows": len(spine)}
        if not args.sync:
            runs = [run_once(fs, spine) for _ in range(args.repeat)]
            print(json.dumps({**meta, "runs": runs}), file=out, flush=True)
            return
        print(json.dumps({**meta, "ready": True}), file=out, flush=True)
        for line in sys.stdin:
            if line.strip() != "run":
                break
            print(json.dumps(run_once(fs, spine)), file=out, flush=True)


if __name__ == "__main__":
    main()
