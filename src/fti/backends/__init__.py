"""Backends: one small Protocol per kind, implementations chosen by URL and imported lazily."""
