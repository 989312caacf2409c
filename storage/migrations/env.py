"""Alembic environment: run by `storage.db` on start, or by hand with `alembic upgrade head`."""

from alembic import context

from storage.db import make_engine
from storage.models import Base
from storage.settings import database_url

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(database_url())  # the app's own engine options (plain postgresql:// means psycopg 3)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
