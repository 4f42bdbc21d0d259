"""Compiles a feature view query to point-in-time SQL (DuckDB, Spark)."""
