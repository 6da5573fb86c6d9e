"""Composition root: settings -> engine and sessions -> blob store, built once per process.

Nothing is created at import time; entry points call :func:`open_app` and pass the
resulting :class:`App` down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .config import Settings
from .storage.blobs import BlobStore
from .storage.db import create_engine, session_factory


@dataclass(frozen=True, slots=True)
class App:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore


@asynccontextmanager
async def open_app(settings: Settings) -> AsyncIterator[App]:
    """Build the process's resources and release them on exit."""
    engine = create_engine(settings.database_url)
    try:
        yield App(settings, engine, session_factory(engine), BlobStore(settings.blob_dir))
    finally:
        await engine.dispose()
