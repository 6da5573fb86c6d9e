"""Initial schema: keys, staff, reports and their ciphertexts, the audit chain.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.CheckConstraint("id = 1", name="single_head"),
        sa.PrimaryKeyConstraint("id"),
    )
    # The chain starts at sequence 0 with the all-zero genesis hash.
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": bytes(32)}])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'active', 'disabled')", name="state_valid"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "enrolments",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("staff_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "org_keys",
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("retired_on", sa.Date(), nullable=True),
        sa.Column("retired_by", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint("state IN ('active', 'retired')", name="state_valid"),
        sa.ForeignKeyConstraint(
            ["retired_by"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index(
        "one_active_org_key",
        "org_keys",
        ["state"],
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )

    op.create_table(
        "reports",
        sa.Column("id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("updated_on", sa.Date(), nullable=False),
        sa.Column("triage_status", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint("state IN ('draft', 'incomplete', 'submitted')", name="state_valid"),
        sa.ForeignKeyConstraint(["assignee_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "signing_key_grants",
        sa.Column("signing_key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("staff_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("granted_by", sa.LargeBinary(length=16), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["granted_by"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["signing_key_id"],
            ["signing_keys.key_id"],
        ),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("signing_key_id", "staff_id"),
    )
    op.create_table(
        "staff_keys",
        sa.Column("staff_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("opslimit", sa.BigInteger(), nullable=False),
        sa.Column("memlimit", sa.BigInteger(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("staff_id"),
    )
    op.create_table(
        "staff_roles",
        sa.Column("staff_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'keyholder', 'reviewer')", name="role_valid"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("staff_id", "role"),
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("report_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("blob_size", sa.BigInteger(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "org_key_grants",
        sa.Column("org_key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("staff_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("granted_by", sa.LargeBinary(length=16), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["granted_by"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["org_key_id"],
            ["org_keys.key_id"],
        ),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("org_key_id", "staff_id"),
    )
    op.create_table(
        "payloads",
        sa.Column("report_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("slot_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id", "slot_id", "part"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_keys",
        sa.Column("report_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("org_key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["org_key_id"], ["org_keys.key_id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id", "org_key_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_labels",
        sa.Column("report_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("report_id", "label"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("report_labels")
    op.drop_table("report_keys")
    op.drop_table("payloads")
    op.drop_table("org_key_grants")
    op.drop_table("attachments")
    op.drop_table("staff_roles")
    op.drop_table("staff_keys")
    op.drop_table("signing_key_grants")
    op.drop_table("reports")
    op.drop_index("one_active_org_key", table_name="org_keys")

    op.drop_table("org_keys")
    op.drop_table("enrolments")
    op.drop_table("staff")
    op.drop_table("signing_keys")
    op.drop_table("audit_log")
    op.drop_table("audit_head")
