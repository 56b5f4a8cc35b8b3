"""SQL that differs between the two databases aTES runs on, written once.

``INSERT … ON CONFLICT`` (an upsert, or an insert that keeps a row someone else wrote
first) is spelled the same on SQLite and PostgreSQL, but SQLAlchemy builds it with each
dialect's own construct.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect: str) -> Any:
    """The ``insert()`` construct with ``on_conflict_do_*`` for the dialect named
    (``connection.dialect.name``): PostgreSQL's, or SQLite's."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert
