"""The engine, the one sessionmaker, and schema upgrades on start.

SQLite (the default, one file in the data folder) and PostgreSQL (`DATABASE_URL=
postgresql+psycopg://...`, for several labellers sharing one dataset) are both supported;
the options that only make sense for one of them are applied only there.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from storage.files import DiskFull, is_disk_full
from storage.settings import data_home, database_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed number: processes upgrading the same PostgreSQL database take turns on this lock.
MIGRATION_LOCK_KEY = 7_215_003_101
CONNECT_TIMEOUT_SECONDS = 10
# Below this much free space SQLite cannot make its shared-memory file or write a page.
NO_ROOM_BYTES = 64 * 1024
_lock = threading.Lock()
_factories: dict[tuple[str, str], sessionmaker[Session]] = {}
Row = TypeVar("Row")


class DatabaseUnavailable(ConnectionError, RuntimeError):
    """The database named by `DATABASE_URL` (or the data folder's SQLite file) cannot be reached or opened.

    A ConnectionError (an OSError), so that code which reports a file it cannot read reports
    this too, in one line, instead of failing with a traceback.
    """


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


def _reason(error: OperationalError | InterfaceError) -> str:
    """The driver's own first line (psycopg: "connection failed: ...", SQLite: "database is locked")."""
    text = str(error.orig if error.orig is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _sqlite_folder(url: URL) -> Path:
    return Path(url.database or ".").resolve().parent


def _no_room(folder: Path) -> bool:
    """True when `folder`'s disk is (all but) full: SQLite then fails with "disk I/O error" or "readonly"."""
    try:
        return shutil.disk_usage(folder).free < NO_ROOM_BYTES
    except OSError:
        return False


def _failure(url: URL, error: OperationalError | InterfaceError) -> OSError:
    """What a failed connection or statement means to the user: a full disk, or an unreachable database."""
    if url.get_backend_name() == "sqlite" and (is_disk_full(error) or _no_room(_sqlite_folder(url))):
        folder = _sqlite_folder(url)
        return DiskFull(f"The disk holding {folder} is full: the database could not be written. "
                        "Free some space and try again.")
    return DatabaseUnavailable(f"The database at {_printable(url)} is unreachable: {_reason(error)}")


def _read_only_sqlite(url: URL) -> Engine | None:
    """The SQLite file opened read-only without its shared-memory file, where a full disk leaves no room for one.

    Only when its write-ahead log is empty (every commit is in the main file), so nothing
    committed is missed; writes then fail as a full disk. None where that does not apply.
    """
    if url.get_backend_name() != "sqlite" or not url.database or not _no_room(_sqlite_folder(url)):
        return None
    log = Path(f"{url.database}-wal")
    if log.exists() and log.stat().st_size > 0:
        return None
    import sqlite3

    address = f"{Path(url.database).resolve().as_uri()}?immutable=1&mode=ro"
    return create_engine(url, creator=lambda: sqlite3.connect(address, uri=True, check_same_thread=False))


def _open(url: str) -> sessionmaker[Session]:
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
    except OperationalError as error:
        engine.dispose()
        # SQLite needs a little room to open a database for sharing; on a full disk, reading still works.
        read_only = _read_only_sqlite(engine.url)
        if read_only is None:
            raise _failure(engine.url, error) from None
        engine = read_only
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
    """A session in a transaction: committed on success, rolled back on error.

    A database that goes away (a server restart, a network cut) raises DatabaseUnavailable in
    one line naming it; the next `begin` tries again on a fresh connection (pre-ping).
    """
    factory = session_factory()
    try:
        with factory.begin() as session:
            yield session
    except (OperationalError, InterfaceError) as error:
        raise _failure(factory.kw["bind"].url, error) from None


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
