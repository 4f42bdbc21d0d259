"""The SQLite online store losing a table under a running reader: detected and healed, with no
service needed. The Redis cases are in tests/integration/test_online_loss.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa

import fti
import online_loss_world as world
from fti.services.feature_groups import online_table
from fti.services.online_lookup import OnlineReader


def test_sqlite_table_dropped_under_a_reader_is_restored(tmp_path: Path) -> None:
    root = tmp_path / "s"
    batches = world.batches(50, 3)
    want = world.oracle(batches)
    fs = world.store_with(root, f"sqlite:///{root}/online.db", batches)
    fg = fs.get_feature_group("weather")
    entities = [{"station": k} for k in sorted(want)]
    world.check(fg.read_online(entities), want)
    with sqlite3.connect(root / "online.db") as conn:
        conn.execute('DROP TABLE "weather_v1"')
    world.check(fg.read_online(entities), want)
    # An insert into a dropped table restores the rows of every earlier insert too.
    with sqlite3.connect(root / "online.db") as conn:
        conn.execute('DROP TABLE "weather_v1"')
    extra = [{"station": "zzz", "t": world.T0, "temp": 1.0}]
    fg.insert(pa.Table.from_pylist(extra))
    want = world.oracle([*batches, extra])
    raw = fs._ctx.online.read(online_table(fg.spec), [(k,) for k in sorted(want)])
    assert None not in raw
    fs.close()


def test_stream_commits_set_the_marker_so_unknown_keys_stay_plain_misses(tmp_path: Path) -> None:
    fs = fti.connect(tmp_path / "s")
    fg = fs.feature_group("weather", primary_key=["station"], event_time="t", online=True)
    staged = [fg.stage_online(pa.Table.from_pylist(b)) for b in world.batches(20, 3)]
    fg.commit_staged(staged)
    assert fs._ctx.online.holds(online_table(fg.spec))
    reader = OnlineReader(fs._ctx, fg.spec)  # heal_wait 0: a lost table would raise here
    assert reader.rows([{"station": "unknown"}]) == [None]
    fs.close()
