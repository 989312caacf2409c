"""The engine, the one sessionmaker, and schema upgrades on start."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from storage.settings import data_home, database_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_lock = threading.Lock()
_factories: dict[tuple[str, str], sessionmaker[Session]] = {}


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


def upgrade_schema(engine: Engine) -> None:
    """Bring the database to the newest schema (Alembic), keeping the user's data."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory() -> sessionmaker[Session]:
    """The sessionmaker for the current `CATSEG_HOME` / `DATABASE_URL` (made once each)."""
    key = (str(data_home()), database_url())
    with _lock:
        factory = _factories.get(key)
        if factory is None:
            engine = create_engine(key[1], connect_args={"timeout": 10} if key[1].startswith("sqlite") else {})
            if engine.dialect.name == "sqlite":
                _configure_sqlite(engine)
            upgrade_schema(engine)
            factory = sessionmaker(engine, expire_on_commit=False)
            _factories[key] = factory
        return factory


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
