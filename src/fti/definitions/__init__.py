"""Frozen, validated specifications: what things are, not how they are stored."""
