"""Read the streaming features: online, point-in-time training data, and the batch backfill
(which must equal what the stream wrote).

    python examples/streaming/features.py

Environment: FTI_HOME is the store (default ./.fti, the one `fti stream run` wrote to when run
from the same folder). Everything this script writes goes under the store: the feature view, and
the accepted events exported to $FTI_HOME/exports/card_history.parquet for
`fti stream backfill --events`. It never writes into the checkout.
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow.parquet as pq
from card_activity import card_activity

import fti

fs = fti.connect()
fg = fs.get_feature_group("card_activity")
print(fg.read_online([{"card_id": "card-0001"}])[0])

# Point-in-time training data: the aggregates as of the last event at or before each spine time.
history = fg.read()
spine = history[["card_id", "ts"]].sample(5, random_state=0)
spine["ts"] = spine["ts"] + timedelta(seconds=30)
fv = fs.feature_view("card_activity_view", query=fg.select_all())
print(fv.training_data(spine=spine))
# Strictly as of each spine time (windows expire between events), from the events table.
print(card_activity.aggregates_at(fs, spine))

# Backfill from the events the stream accepted: identical to the stream's rows.
batch = card_activity.backfill(fs, write=False).rows.to_pandas()
latest = history.drop_duplicates(["card_id", "ts"], keep="last").reset_index(drop=True)
cols = list(batch.columns)
merged = latest[cols].merge(batch, on=["card_id", "ts"], suffixes=("_stream", "_batch"))
features = [c for c in cols if c not in ("card_id", "ts")]
mismatches = sum(
    int((merged[f + "_stream"].fillna(-1) != merged[f + "_batch"].fillna(-1)).sum())
    for f in features
)
print(f"{len(batch):,} rows backfilled; {mismatches} mismatches with the stream")
assert mismatches == 0
assert len(merged) == len(batch) == len(latest)

# The raw events, for `fti stream backfill --events` (written under the store, not here).
export = fs.config.root / "exports" / "card_history.parquet"
export.parent.mkdir(parents=True, exist_ok=True)
pq.write_table(card_activity.events_group(fs).read(format="arrow"), export)
print(f"events exported to {export}")
