"""Offline store on S3: fti's insert and point-in-time training data vs raw deltalake, on the
same S3-compatible server, next to the same on local files.

    .venv/bin/python benchmarks/s3.py                        # small: E=100k, R=1M, S=100k
    .venv/bin/python benchmarks/s3.py --scale tiny --repeat 3
    FTI_S3_ENDPOINT=http://127.0.0.1:9000 .venv/bin/python benchmarks/s3.py   # another server

The server is ``FTI_S3_ENDPOINT`` if set, else a ``moto_server`` (``pip install
'moto[server]'``) started on a free loopback port and stopped at the end. Credentials come
from the AWS environment (fake ones are set for moto when none are).

Workload: ``benchmarks/training_data.py``'s (activity with 1% corrections, profile, spine).

- **insert**: the activity rows and corrections in chunks, into a fresh table per round:
  ``fg.insert`` (validation, sequence numbers, Delta commit) vs ``write_deltalake(mode=
  "append")`` of the same chunks to the same place;
- **training data**: ``fv.training_data(spine)`` vs a hand-written DuckDB ``ASOF LEFT JOIN``
  over ``DeltaTable(...).to_pyarrow_dataset()`` of fti's own tables (so both read the same
  objects from the same server; the baseline ignores ingestion order and TTL ties).

Interleaved rounds (baseline, fti, baseline, ...); medians; ratio = fti / raw (target <= 1.3x).
The machine may be shared: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from training_data import CHUNK, TTL, interleaved, make_workload

import fti

SCALES = {
    "tiny": (20_000, 200_000, 20_000),
    "small": (100_000, 1_000_000, 100_000),
}
TARGET = 1.3


@contextmanager
def s3_endpoint() -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    if os.environ.get("FTI_S3_ENDPOINT"):
        yield os.environ["FTI_S3_ENDPOINT"]
        return
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        raise SystemExit("moto_server not found: pip install 'moto[server]' or set FTI_S3_ENDPOINT")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def new_bucket(endpoint: str) -> str:
    import boto3

    name = f"fti-bench-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def chunks(data: dict[str, pa.Table]) -> list[pa.Table]:
    out = []
    for table in (data["activity"], data["corrections"]):
        out += [table.slice(off, CHUNK) for off in range(0, table.num_rows, CHUNK)]
    return out


class Backend:
    """One place to keep tables: a local folder or an S3 prefix, seen by fti and by deltalake."""

    def __init__(self, name: str, root: Path, offline: str, options: dict[str, str] | None):
        self.name, self.root, self.offline, self.options = name, root, offline, options
        self.fs = fti.connect(root, offline=offline)
        self._n = 0

    def uri(self, table: str) -> str:
        base = self.offline.split("?", 1)[0].removeprefix("file://")
        return f"{base.rstrip('/')}/{table}"

    def fti_insert(self, parts: list[pa.Table]) -> Callable[[], Any]:
        def run() -> None:
            self._n += 1
            fg = self.fs.feature_group(
                f"ins{self._n}", primary_key=["user_id"], event_time="ts", online=False
            )
            for part in parts:
                fg.insert(part)

        return run

    def raw_insert(self, parts: list[pa.Table]) -> Callable[[], Any]:
        def run() -> None:
            self._n += 1
            uri = self.uri(f"raw{self._n}")
            for part in parts:
                write_deltalake(uri, part, mode="append", storage_options=self.options)

        return run

    def build_view(self, data: dict[str, pa.Table], parts: list[pa.Table]) -> fti.FeatureView:
        fs = self.fs
        activity = fs.feature_group("activity", primary_key=["user_id"], event_time="ts", ttl=TTL)
        for part in parts:
            activity.insert(part)
        profile = fs.feature_group("profile", primary_key=["user_id"], event_time="pts")
        profile.insert(data["profile"])
        return fs.feature_view(
            "bench",
            query=activity.select([f"f{i}" for i in range(5)]).join(
                profile.select(["age", "country", "score"]), on=["user_id"], prefix="p_"
            ),
        )

    def raw_pit(self, spine: pa.Table) -> Callable[[], Any]:
        ttl_us = TTL // timedelta(microseconds=1)
        feats = ", ".join(
            f"CASE WHEN epoch_us(a.ts) >= epoch_us(s.ts) - {ttl_us} THEN a.f{i} END AS f{i}"
            for i in range(5)
        )
        sql = (
            f"SELECT s.user_id, s.ts, s.label, {feats}, p.age AS p_age, "
            "p.country AS p_country, p.score AS p_score FROM spine s "
            "ASOF LEFT JOIN act a ON s.user_id = a.user_id AND s.ts >= a.ts "
            "ASOF LEFT JOIN prof p ON s.user_id = p.user_id AND s.ts >= p.pts"
        )

        def run() -> Any:
            act = DeltaTable(self.uri("activity_v1"), storage_options=self.options)
            prof = DeltaTable(self.uri("profile_v1"), storage_options=self.options)
            con = duckdb.connect()
            con.register("spine", spine)
            con.register("act", act.to_pyarrow_dataset())
            con.register("prof", prof.to_pyarrow_dataset())
            return con.execute(sql).df()

        return run


def report(label: str, times: dict[str, list[float]], fti_key: str, raw_key: str) -> float:
    f, r = statistics.median(times[fti_key]), statistics.median(times[raw_key])
    ratio = f / r
    mark = "ok" if ratio <= TARGET else f"ABOVE {TARGET}x"
    print(f"  {label:<34} fti {f:7.2f}s   raw deltalake {r:7.2f}s   ratio {ratio:4.2f}x  {mark}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    e, r, s = SCALES[args.scale]
    data = make_workload(e, r, s)
    parts = chunks(data)
    print(f"S3 offline store, scale {args.scale}: E={e:,} R={r:,} S={s:,}, {args.repeat} rounds")
    work = Path(tempfile.mkdtemp(prefix="fti-s3-bench-"))
    try:
        with s3_endpoint() as endpoint:
            bucket = new_bucket(endpoint)
            s3_url = f"s3://{bucket}/offline?endpoint={endpoint}&path_style=true"
            from fti._internal.s3_location import S3Location

            backends = [
                Backend("local", work / "local", f"file://{work / 'local' / 'offline'}", None),
                Backend("s3", work / "s3", s3_url, S3Location.parse(s3_url).delta_options()),
            ]
            print(f"server {endpoint}")
            for b in backends:
                times, _ = interleaved(
                    {"raw": b.raw_insert(parts), "fti": b.fti_insert(parts)}, args.repeat
                )
                report(f"insert {r + r // 100:,} rows ({b.name})", times, "fti", "raw")
            for b in backends:
                fv = b.build_view(data, parts)
                spine = data["spine"]

                def pit(fv: fti.FeatureView = fv, spine: pa.Table = spine) -> Any:
                    return fv.training_data(spine=spine)

                times, out = interleaved({"raw": b.raw_pit(spine), "fti": pit}, args.repeat)
                assert len(out["fti"]) == len(out["raw"]) == spine.num_rows
                report(f"training data {spine.num_rows:,} rows ({b.name})", times, "fti", "raw")
            for b in backends:
                b.fs.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
