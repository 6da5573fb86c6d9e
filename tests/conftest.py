"""Shared fixtures: every storage-facing test runs on SQLite and on PostgreSQL.

PostgreSQL is the real server on 127.0.0.1:5432 (``TEST_POSTGRES_URL`` overrides the
admin URL). Each test gets a database of its own, created from template0 and dropped
with FORCE afterwards, so runs never see each other's data. An unreachable server is a
test failure, not a skip: both databases must pass.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from intake_bot.bootstrap import App, open_app
from intake_bot.config import Settings, load_settings
from intake_bot.storage import migrate
from intake_bot.storage.db import create_engine

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
        return
    name = f"intake_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    try:
        yield _pg_url(name)
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database migrated to head."""
    eng = create_engine(database_url)
    await migrate.upgrade(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for a throw-away installation under tmp_path (fast Argon2id: tests only)."""
    return load_settings(
        {
            "INTAKE_DATA_DIR": str(tmp_path / "data"),
            "INTAKE_DATABASE_URL": database_url,
            "INTAKE_KDF_PROFILE": "insecure-test",
            "INTAKE_RUNTIME_DIR": str(tmp_path / "runtime"),
        }
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    async with open_app(settings) as application:
        yield application
