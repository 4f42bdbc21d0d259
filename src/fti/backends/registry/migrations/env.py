"""Alembic environment: runs on the connection (and transaction) handed over by ``upgrade``."""

from __future__ import annotations

from alembic import context

from fti.backends.registry.migrations import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "fti's registry migrations run through fti (they apply automatically when a registry "
        "opens); there is no alembic.ini to run them from the command line."
    )
context.configure(
    connection=connection,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
