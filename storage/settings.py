"""Where catseg keeps its data: `CATSEG_HOME` picks the folder, `DATABASE_URL` the database."""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
# Git-ignored, beside the code, so a fresh clone "just works" and nothing leaks into commits.
DEFAULT_HOME = REPOSITORY_ROOT / ".catseg"


def data_home() -> Path:
    """The data folder (created on first use)."""
    home = Path(os.environ.get("CATSEG_HOME") or DEFAULT_HOME).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url() -> str:
    """`DATABASE_URL` if set, else a SQLite file in the data folder.

    For a dataset shared by several labellers: `postgresql+psycopg://user:password@host:5432/catseg`,
    with `CATSEG_HOME` on a folder they all reach (photos and masks are files there).
    """
    return os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{data_home() / 'catseg.sqlite3'}"
