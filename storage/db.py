"""The engine, the one sessionmaker, and schema upgrades on start.

SQLite (the default, one file in the data folder) and PostgreSQL (`DATABASE_URL=
postgresql+psycopg://...`, for several labellers sharing one dataset) are both supported;
the options that only make sense for one of them are applied only there.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from storage.settings import data_home, database_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed number: processes upgrading the same PostgreSQL database take turns on this lock.
MIGRATION_LOCK_KEY = 7_215_003_101
CONNECT_TIMEOUT_SECONDS = 10
_lock = threading.Lock()
_factories: dict[tuple[str, str], sessionmaker[Session]] = {}
Row = TypeVar("Row")


class DatabaseUnavailable(RuntimeError):
    """The database named by `DATABASE_URL` (or the data folder's SQLite file) cannot be opened."""


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(connection, _record) -> None:
        cursor = connection.cursor()
        # WAL lets the training process write while the app reads; the busy timeout makes a
        # writer wait for the other instead of failing with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _without_non_finite(value):
    """`value` with NaN and infinities replaced by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _without_non_finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_non_finite(item) for item in value]
    return value


def _postgresql_json(value) -> str:
    # PostgreSQL's json type rejects NaN and Infinity (not JSON), which Python writes for a
    # diverged loss; they are stored as null rather than losing the run's row.
    return json.dumps(_without_non_finite(value))


def _engine_url(url: str) -> URL:
    """The parsed URL; plain `postgresql://` and `postgres://` mean psycopg 3, the installed driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnavailable(
            "DATABASE_URL is not a database URL; expected e.g. postgresql+psycopg://user:password@host:5432/catseg."
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _printable(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine for `url` with the options its database needs (nothing connects yet)."""
    parsed = _engine_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": 10})
            _configure_sqlite(engine)
        elif parsed.get_backend_name() == "postgresql":
            engine = create_engine(
                parsed,
                # A server restart or a firewall dropping idle connections would otherwise
                # surface as an error on the next click; a ping replaces a dead connection.
                pool_pre_ping=True,
                json_serializer=_postgresql_json,
                connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "catseg"},
            )
        else:
            engine = create_engine(parsed)
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise DatabaseUnavailable(
            f"The database driver for {_printable(parsed)} is not installed ({error}); "
            "for PostgreSQL use postgresql+psycopg://... (psycopg 3)."
        ) from None
    return engine


def upgrade_schema(engine: Engine) -> None:
    """Bring the database to the newest schema (Alembic), keeping the user's data."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several labellers' apps may open an empty database at once: one upgrades, the
            # others wait and then find it up to date (the lock ends with the transaction).
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _open(url: str) -> sessionmaker[Session]:
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
    except OperationalError as error:
        engine.dispose()
        reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
        raise DatabaseUnavailable(f"Cannot open the database at {_printable(engine.url)}: {reason}") from None
    return sessionmaker(engine, expire_on_commit=False)


def session_factory() -> sessionmaker[Session]:
    """The sessionmaker for the current `CATSEG_HOME` / `DATABASE_URL` (made once each).

    DatabaseUnavailable, with the URL but not its password, when the database cannot be opened.
    """
    key = (str(data_home()), database_url())
    with _lock:
        factory = _factories.get(key)
        if factory is None:
            factory = _open(key[1])
            _factories[key] = factory
        return factory


def get_or_raise(session: Session, model: type[Row], row_id: int, message: str) -> Row:
    """The row of `model` with this id; ValueError(message) when there is none (deleted, say)."""
    row = session.get(model, row_id)
    if row is None:
        raise ValueError(message)
    return row


@contextmanager
def begin() -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on error."""
    with session_factory().begin() as session:
        yield session


def dispose_all() -> None:
    """Close every engine (tests switch `CATSEG_HOME` between cases)."""
    with _lock:
        for factory in _factories.values():
            factory.kw["bind"].dispose()
        _factories.clear()


def _forget_parent_connections() -> None:
    # A forked child (multiprocessing) must not use the parent's pooled connections: two
    # processes on one socket garble each other's queries. It leaves them to the parent and
    # opens its own.
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    for factory in _factories.values():
        factory.kw["bind"].dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_connections)
