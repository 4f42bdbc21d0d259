"""The ``fti`` command line (Typer + Rich)."""
