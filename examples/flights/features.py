"""Feature engineering for the flights example (model-independent transformations).

Every function turns raw frames into the rows of one feature group. Operational features use
only flights that had already landed at the feature's event time, so they cannot leak the label.
"""

from __future__ import annotations

import duckdb
import pandas as pd

__all__ = ["flight_rows", "ops_rows", "plane_rows", "weather_rows"]

# Taxi-in allowance added to wheels-off + air time to estimate when a flight had landed.
_TAXI_MINUTES = 20


def flight_rows(flights: pd.DataFrame) -> pd.DataFrame:
    """One row per flight, keyed by flight_id at its scheduled departure, with the label."""
    out = pd.DataFrame(
        {
            "flight_id": flights["flight_id"],
            "sched_dep": flights["sched_dep"],
            "carrier": flights["carrier"],
            "origin": flights["origin"],
            "dest": flights["dest"],
            "tailnum": flights["tailnum"],
            "distance": flights["distance"].astype("float64"),
            "dep_hour": flights["hour"].astype("int64"),
            "day_of_week": flights["sched_dep"].dt.day_of_week.astype("int64"),
            "delayed": (flights["arr_delay"] > 15).astype("int64"),
        }
    )
    return out


def weather_rows(weather: pd.DataFrame) -> pd.DataFrame:
    """Hourly weather per origin plus rolling windows over the previous hours."""
    df = weather.sort_values(["origin", "time_hour"]).drop_duplicates(["origin", "time_hour"])
    df = df.set_index("time_hour")
    g = df.groupby("origin")
    rolled = pd.DataFrame(
        {
            "precip_3h": g["precip"].rolling("3h").sum(),
            "wind_speed_max_3h": g["wind_speed"].rolling("3h").max(),
            "visib_min_6h": g["visib"].rolling("6h").min(),
        }
    ).reset_index()
    base = df.reset_index()[
        [
            "origin",
            "time_hour",
            "temp",
            "dewp",
            "humid",
            "wind_speed",
            "precip",
            "pressure",
            "visib",
        ]
    ]
    out = base.merge(rolled, on=["origin", "time_hour"], how="left")
    day_before = out[["origin", "time_hour", "temp"]].assign(
        time_hour=out["time_hour"] + pd.Timedelta(hours=24)
    )
    out = out.merge(day_before, on=["origin", "time_hour"], how="left", suffixes=("", "_24h"))
    out["temp_delta_24h"] = out["temp"] - out.pop("temp_24h")
    for col in out.columns:
        if col not in ("origin", "time_hour"):
            out[col] = out[col].astype("float64")
    return out


def plane_rows(planes: pd.DataFrame) -> pd.DataFrame:
    """A snapshot per tail number (no event time)."""
    return pd.DataFrame(
        {
            "tailnum": planes["tailnum"],
            "plane_year": planes["year"].astype("float64"),
            "seats": planes["seats"].astype("float64"),
            "engines": planes["engines"].astype("float64"),
            "engine": planes["engine"].fillna("unknown"),
        }
    )


def ops_rows(flights: pd.DataFrame, key: str) -> pd.DataFrame:
    """Hourly delay rate over the previous 7 days per ``key`` (carrier or origin), counting only
    flights that had landed by each hour."""
    con = duckdb.connect()
    try:
        con.register("f", flights[[key, "sched_dep", "dep_delay", "air_time", "arr_delay"]])
        return con.sql(
            f"""
            WITH landed AS (
                SELECT {key} AS k,
                       date_trunc('hour', sched_dep + to_minutes(CAST(greatest(dep_delay, 0)
                           + air_time + {_TAXI_MINUTES} AS BIGINT))) + INTERVAL 1 HOUR AS hour,
                       CAST(arr_delay > 15 AS INTEGER) AS delayed
                FROM f
            ),
            per_hour AS (
                SELECT k, hour, count(*) AS n, sum(delayed) AS n_delayed FROM landed GROUP BY ALL
            ),
            grid AS (
                SELECT k, unnest(generate_series(min(hour), max(hour), INTERVAL 1 HOUR)) AS hour
                FROM per_hour GROUP BY k
            ),
            dense AS (
                SELECT g.k, g.hour, coalesce(p.n, 0) AS n, coalesce(p.n_delayed, 0) AS n_delayed
                FROM grid g LEFT JOIN per_hour p USING (k, hour)
            )
            SELECT k AS {key}, hour AS ops_time,
                   CAST(sum(n) OVER w AS DOUBLE) AS flights_7d,
                   CAST(sum(n_delayed) OVER w AS DOUBLE) / nullif(sum(n) OVER w, 0)
                       AS delay_rate_7d
            FROM dense
            WINDOW w AS (PARTITION BY k ORDER BY hour
                         RANGE BETWEEN INTERVAL 167 HOURS PRECEDING AND CURRENT ROW)
            ORDER BY k, hour
            """
        ).df()
    finally:
        con.close()
