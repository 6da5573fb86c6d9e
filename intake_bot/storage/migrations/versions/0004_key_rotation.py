"""Key rotation: the current org key as a pointer (several keys may be live), the sealed
copy each report uses (a foreign key refuses to retire a key a report depends on alone),
and re-wrap jobs.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "current_org_key",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.CheckConstraint("id = 1", name="single_current_key"),
        sa.ForeignKeyConstraint(["key_id"], ["org_keys.key_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(
        "INSERT INTO current_org_key (id, key_id) "
        "SELECT 1, key_id FROM org_keys WHERE state = 'active'"
    )
    op.drop_index("one_active_org_key", table_name="org_keys")
    op.create_table(
        "report_primary_keys",
        sa.Column("report_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("org_key_id", sa.LargeBinary(length=16), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["report_id", "org_key_id"],
            ["report_keys.report_id", "report_keys.org_key_id"],
            name="primary_key_is_sealed",
        ),
        sa.PrimaryKeyConstraint("report_id"),
        sqlite_with_rowid=False,
    )
    # The lowest key id of each report's sealed copies (PostgreSQL has no MIN of bytea).
    op.execute(
        "INSERT INTO report_primary_keys (report_id, org_key_id) "
        "SELECT report_id, org_key_id FROM report_keys AS rk WHERE NOT EXISTS ("
        "SELECT 1 FROM report_keys AS other WHERE other.report_id = rk.report_id "
        "AND other.org_key_id < rk.org_key_id)"
    )
    # Re-wrap walks the reports still using a key, and retire deletes a key's copies.
    op.create_index(
        "report_primary_keys_by_key", "report_primary_keys", ["org_key_id", "report_id"]
    )
    op.create_index("report_keys_by_key", "report_keys", ["org_key_id"])
    op.create_table(
        "key_jobs",
        sa.Column("id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("to_key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("finished_on", sa.Date(), nullable=True),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('rewrap', 'reencrypt')", name="kind_valid"),
        sa.ForeignKeyConstraint(["from_key_id"], ["org_keys.key_id"]),
        sa.ForeignKeyConstraint(["to_key_id"], ["org_keys.key_id"]),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("key_jobs")
    op.drop_index("report_keys_by_key", table_name="report_keys")
    op.drop_index("report_primary_keys_by_key", table_name="report_primary_keys")
    op.drop_table("report_primary_keys")
    op.create_index(
        "one_active_org_key",
        "org_keys",
        ["state"],
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )
    op.drop_table("current_org_key")
