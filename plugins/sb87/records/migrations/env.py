"""Alembic's entry point for the project database: the connection comes from `sb87.records.schema`."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=False, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
