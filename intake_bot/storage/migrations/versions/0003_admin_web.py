"""Admin web: second-factor state, recovery codes, staff language, triage fields, report
links, inbox indexes and signed audit checkpoints.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INBOX = ("urgent", "created_on", "id")


def upgrade() -> None:
    op.add_column("staff", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column("staff", sa.Column("language", sa.String(length=8), nullable=True))
    op.add_column("reports", sa.Column("close_reason", sa.String(length=32), nullable=True))
    op.create_table(
        "recovery_codes",
        sa.Column("staff_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("staff_id", "code_hash"),
    )
    op.create_table(
        "report_links",
        sa.Column("report_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("other_id", sa.LargeBinary(length=16), nullable=False),
        sa.CheckConstraint("report_id <> other_id", name="no_self_link"),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["other_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id", "other_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("reports_inbox", "reports", list(_INBOX))
    op.create_index("reports_by_status", "reports", ["triage_status", *_INBOX])
    op.create_index("reports_by_priority", "reports", ["priority", *_INBOX])
    op.create_index("reports_by_assignee", "reports", ["assignee_id", *_INBOX])
    op.create_index("reports_by_state", "reports", ["state", *_INBOX])
    op.create_index("report_labels_by_label", "report_labels", ["label", "report_id"])
    # A report's files (the inbox's file counts, the report page, the per-report limits):
    # without it each of those reads every attachment row.
    op.create_index("attachments_by_report", "attachments", ["report_id"])
    op.create_index("audit_log_by_target", "audit_log", ["target", "seq"])


def downgrade() -> None:
    op.drop_index("audit_log_by_target", table_name="audit_log")
    op.drop_index("attachments_by_report", table_name="attachments")
    op.drop_index("report_labels_by_label", table_name="report_labels")
    for name in (
        "reports_by_state",
        "reports_by_assignee",
        "reports_by_priority",
        "reports_by_status",
        "reports_inbox",
    ):
        op.drop_index(name, table_name="reports")
    op.drop_table("audit_checkpoints")
    op.drop_table("report_links")
    op.drop_table("recovery_codes")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("close_reason")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("language")
        batch.drop_column("totp_last_step")
