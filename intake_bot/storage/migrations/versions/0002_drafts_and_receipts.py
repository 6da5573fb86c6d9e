"""Open drafts (reporter handle and boot-wrapped box) and receipt lookups.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("report_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("handle", sa.LargeBinary(length=32), nullable=False),
        sa.Column("boot_tag", sa.LargeBinary(length=16), nullable=False),
        sa.Column("box", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id"),
        sa.UniqueConstraint("handle"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "receipts",
        sa.Column("lookup_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("report_id", sa.LargeBinary(length=16), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("lookup_id"),
        sa.UniqueConstraint("report_id"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("receipts")
    op.drop_table("drafts")
