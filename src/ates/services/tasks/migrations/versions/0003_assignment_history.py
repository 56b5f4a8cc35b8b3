"""assignment history, and who created each task

Revision ID: 0003
Revises: 0002

Tasks created before this revision have no recorded history: each gets one
``recorded`` entry naming its assignee at the upgrade, so the task page says where
the history it knows begins instead of inventing a creation it never saw.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a nullable column needs no table rebuild on SQLite
    op.add_column("tasks", sa.Column("created_by_public_id", sa.String(36), nullable=True))
    op.create_index("ix_tasks_created_by_id", "tasks", ["created_by_public_id", "id"])
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task_public_id", sa.String(36), nullable=False),
        sa.Column("assignee_public_id", sa.String(36), nullable=False),
        sa.Column("previous_assignee_public_id", sa.String(36), nullable=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("shuffle_id", sa.String(36), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_assignments_task", "assignments", ["task_public_id", "id"])
    op.execute(
        "INSERT INTO assignments (task_public_id, assignee_public_id, reason, assigned_at) "
        "SELECT public_id, assignee_public_id, 'recorded', created_at FROM tasks ORDER BY id"
    )


def downgrade() -> None:
    op.drop_table("assignments")
    op.drop_index("ix_tasks_created_by_id", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("created_by_public_id")
