"""``python -m fti`` runs the CLI."""

from fti.cli.app import main

main()
