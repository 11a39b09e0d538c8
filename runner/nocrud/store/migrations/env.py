"""Alembic's entry point for the run store: migrate the connection nocrud hands over.

nocrud runs the migrations itself (:func:`nocrud.store.open_store`), passing its open
connection in ``config.attributes["connection"]``; there is no alembic.ini.
"""

from __future__ import annotations

from alembic import context

from nocrud.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
