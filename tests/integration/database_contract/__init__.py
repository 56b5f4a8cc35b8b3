"""The database contract: what the platform promises of every database it runs on
(outbox, inbox, dead letters, locks, migrations) and each service's repository behaviour
that depends on the database (tasks' shuffle, analytics' upserts, billing's books, auth's
single-use codes).

Subclass :class:`DatabaseContract` once per database (``test_database_sqlite.py``,
``test_database_postgres.py``) and provide the fixtures ``make_database_url`` (a factory
of fresh, empty databases, dropped after the test) and ``lock_watch`` (whether a
connection waits for a lock another transaction holds). Guarantees only one database
makes go in its own subclass, beside the contract's tests.

Locks are not a part of their own: they are what the tests with two processes (two
engines on one database) prove — the inbox's, the migrations', a day's close, two
shuffles, a code exchanged three times at once.
"""

from __future__ import annotations

from tests.integration.database_contract.analytics import AnalyticsContract
from tests.integration.database_contract.auth import AuthContract
from tests.integration.database_contract.base import DatabaseBase, LockWatch, MakeDb, MakeUrl
from tests.integration.database_contract.billing import BillingContract
from tests.integration.database_contract.messaging import (
    DeadLetterContract,
    InboxContract,
    OutboxContract,
)
from tests.integration.database_contract.schema import MigrationContract
from tests.integration.database_contract.tasks import TasksContract

__all__ = [
    "DatabaseBase",
    "DatabaseContract",
    "LockWatch",
    "MakeDb",
    "MakeUrl",
]


class DatabaseContract(
    OutboxContract,
    InboxContract,
    DeadLetterContract,
    MigrationContract,
    TasksContract,
    AnalyticsContract,
    BillingContract,
    AuthContract,
):
    """Everything a database must do for aTES; not collected itself (no ``Test``
    prefix), only through a subclass per database."""
