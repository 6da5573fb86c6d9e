"""Alembic migrations on both databases, and the SQLite connection and schema settings.

The migration tests start from an empty database (the ``database_url`` fixture) and drive
:mod:`intake_bot.storage.migrate` themselves; the SQLite tests select only the ``sqlite``
parameter of that fixture.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, event, insert, inspect, make_url, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from intake_bot.crypto import GENESIS_HASH
from intake_bot.storage import migrate
from intake_bot.storage.db import create_engine
from intake_bot.storage.models import AuditHead, Base

ALEMBIC_TABLE = "alembic_version"
"""Alembic's bookkeeping table: it stays (empty) after a downgrade to base."""

APP_TABLES = frozenset(Base.metadata.tables)

REPORTER_DATA_TABLES = ("reports", "report_keys", "payloads", "attachments", "report_labels")
"""Tables that SQLite must create WITHOUT ROWID (ARCHITECTURE.md, "Hygiene")."""

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@asynccontextmanager
async def _engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _tables(engine: AsyncEngine) -> set[str]:
    def names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    async with engine.connect() as connection:
        return await connection.run_sync(names)


async def _audit_heads(engine: AsyncEngine) -> list[tuple[int, int, bytes]]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(AuditHead.id, AuditHead.seq, AuditHead.hash))
        return [(row.id, row.seq, bytes(row.hash)) for row in rows]


# --- Migrations (both databases) ------------------------------------------------------------


async def test_empty_database_upgrades_to_head(database_url: str) -> None:
    async with _engine(database_url) as engine:
        assert await migrate.current_revision(engine) is None
        assert await _tables(engine) == set()

        await migrate.upgrade(engine)

        assert await migrate.current_revision(engine) == migrate.head_revision()
        assert await _tables(engine) == APP_TABLES | {ALEMBIC_TABLE}


async def test_upgrade_at_head_changes_nothing(engine: AsyncEngine) -> None:
    """Running ``migrate`` twice (as every start of the bot may) is harmless."""
    await migrate.upgrade(engine)
    assert await migrate.current_revision(engine) == migrate.head_revision()
    assert await _audit_heads(engine) == [(1, 0, GENESIS_HASH)]


async def test_downgrade_to_base_drops_everything_and_upgrade_works_again(
    database_url: str,
) -> None:
    async with _engine(database_url) as engine:
        await migrate.upgrade(engine)
        await migrate.downgrade(engine, "base")

        assert await migrate.current_revision(engine) is None
        # Only Alembic's own (now empty) version table is left.
        assert await _tables(engine) == {ALEMBIC_TABLE}

        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        assert await _tables(engine) == APP_TABLES | {ALEMBIC_TABLE}
        assert await _audit_heads(engine) == [(1, 0, GENESIS_HASH)]


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    """Autogenerate against the migrated schema finds nothing to do (types included)."""

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_audit_head_is_seeded_with_the_genesis_hash(engine: AsyncEngine) -> None:
    assert bytes(32) == GENESIS_HASH
    assert await _audit_heads(engine) == [(1, 0, bytes(32))]


async def test_a_second_audit_head_row_is_refused(engine: AsyncEngine) -> None:
    """The chain has one head: a second row (which could fork it) violates a CHECK."""
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(AuditHead).values(id=2, seq=0, hash=bytes(32)))
    assert await _audit_heads(engine) == [(1, 0, GENESIS_HASH)]


# --- SQLite settings and schema ------------------------------------------------------------


def _lax_defaults(dbapi_connection: Any, _: Any) -> None:
    """Turn the safety settings off first, as a SQLite build with other defaults would."""
    cursor = dbapi_connection.cursor()
    try:
        for pragma in (
            "foreign_keys=OFF",
            "secure_delete=OFF",
            "synchronous=OFF",
            "journal_size_limit=-1",
        ):
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


@sqlite_only
async def test_sqlite_connections_are_set_up_for_safety(database_url: str) -> None:
    """Every new connection gets WAL, foreign keys, secure_delete and synchronous=FULL.

    The file starts in rollback-journal mode and each connection starts with the settings
    off (many builds compile secure_delete and FULL in, which would hide a missing PRAGMA).
    """
    path = make_url(database_url).database
    assert path is not None
    with closing(sqlite3.connect(path)) as plain:
        assert plain.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    expected = {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "secure_delete": 1,
        "synchronous": 2,
        "journal_size_limit": 0,
    }
    async with _engine(database_url) as engine:
        event.listen(engine.sync_engine, "connect", _lax_defaults, insert=True)
        # The SQLite pool holds one connection: check it, then force a new one.
        for _ in range(2):
            async with engine.connect() as connection:
                found = {}
                for pragma in expected:
                    result = await connection.exec_driver_sql(f"PRAGMA {pragma}")
                    found[pragma] = result.scalar_one()
                await connection.rollback()
            assert found == expected
            await engine.dispose()


@sqlite_only
async def test_sqlite_reporter_tables_are_without_rowid(engine: AsyncEngine) -> None:
    """The migrated schema matches the models' WITHOUT ROWID choice, table by table.

    Autogenerate does not compare this option, so a migration that forgets it (for a new
    table too) would otherwise pass unnoticed.
    """
    declared = {
        name
        for name, table in Base.metadata.tables.items()
        if table.dialect_options["sqlite"]["with_rowid"] is False
    }
    assert declared >= set(REPORTER_DATA_TABLES)
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        )
        schema = {name: sql for name, sql in rows}
    without_rowid = {name for name, sql in schema.items() if "WITHOUT ROWID" in sql.upper()}
    assert without_rowid == declared
