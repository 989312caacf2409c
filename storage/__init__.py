"""All persistence: the database (SQLAlchemy 2.0 + Alembic) and the files beside it.

Use `with storage.begin() as session:` and pass the session to the functions in
`storage.dataset` (and later `storage.runs`); the caller owns the transaction.
"""

from storage.db import begin, dispose_all, session_factory
from storage.settings import data_home, database_url

__all__ = ["begin", "data_home", "database_url", "dispose_all", "session_factory"]
