"""All persistence: the database (SQLAlchemy 2.0 + Alembic) and the files beside it.

Use `with storage.begin() as session:` and pass the session to the functions in
`storage.dataset` and `storage.runs`; the caller owns the transaction. The database is
SQLite in the data folder, or PostgreSQL (`DATABASE_URL`) when several labellers share
one dataset.
"""

from storage.db import DatabaseUnavailable, begin, dispose_all, session_factory
from storage.files import DiskFull
from storage.settings import data_home, database_url

__all__ = ["DatabaseUnavailable", "DiskFull", "begin", "data_home", "database_url", "dispose_all", "session_factory"]
