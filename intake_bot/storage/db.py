"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production).

Both engines hide statement parameters from errors and logs (``hide_parameters``): a
failing INSERT must not print a ciphertext's neighbours, a name or a token hash.

SQLite connections are set up for safety over speed: WAL, foreign keys on,
``secure_delete`` (freed pages are zeroed, so a deleted draft does not linger in the
file), ``synchronous=FULL`` (an answer the reporter was told was saved survives power
loss), and every transaction starts with ``BEGIN IMMEDIATE`` so that
writers queue on the lock instead of failing with "database is locked" mid-transaction.
The price: every transaction, reads included, holds the write lock while it is open, so
never keep a session open across a slow await (a download, a network call).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_S = 30
"""How long a writer waits for SQLite's lock before failing: generous, writes are short."""

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
    "PRAGMA synchronous=FULL",
    # After each checkpoint the WAL file is cut back to nothing, so old page images (say, of
    # a deleted draft) do not linger in it until overwritten.
    "PRAGMA journal_size_limit=0",
)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url`` with the project's safety settings."""
    if not is_sqlite(url):
        return create_async_engine(url, hide_parameters=True, pool_pre_ping=True)
    # One connection per process: SQLite takes one writer at a time anyway, and queueing
    # on the pool is prompt, where SQLite's busy handler sleeps in growing steps.
    engine = create_async_engine(
        url,
        hide_parameters=True,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
        pool_size=1,
        max_overflow=0,
        pool_timeout=SQLITE_BUSY_TIMEOUT_S,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
        # Hand transaction control to the "begin" hook below (the driver would BEGIN DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (we pass them on, never lazy-load)."""
    return async_sessionmaker(engine, expire_on_commit=False)
