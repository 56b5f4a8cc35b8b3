"""copies of people: one stamp (event time, event id) per fact instead of a time

The platform's one rule for local copies (ates.platform.events.ordering), so that every
service settles a tie on the event time the same way.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

from ates.platform.migrations import stamps_to_times, times_to_stamps

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FACTS = ("profile", "role", "active")


def upgrade() -> None:
    times_to_stamps(op, "accounts", FACTS)


def downgrade() -> None:
    stamps_to_times(op, "accounts", FACTS)
