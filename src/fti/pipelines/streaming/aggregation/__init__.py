"""Windowed aggregation of a streaming feature group: the exact window states a running stream
keeps and the DuckDB backfill that computes the same windows in batch."""
