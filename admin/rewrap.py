"""The re-wrap run from the Keys page: a background task of the admin process.

At most one runs per process (:attr:`admin.state.AdminState.rewrap`). It works with the
keys of the session that started it (:func:`intake_bot.services.rotation.rewrap_with`),
which commits each batch on its own: no transaction stays open between batches, and a
restart mid-way leaves the job open in ``key_jobs`` for the page to offer again (the work
left is what still depends on the old key). The task holds the unsealed keys only while it
runs.

At shutdown the run is asked to stop at the next batch boundary (between two committed
transactions), and only cancelled outright if that takes longer than
:data:`STOP_SECONDS`: cancelling in the middle of a batch can leave the database
connection with its write transaction open (SQLite then stays locked for everyone).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.exc import SQLAlchemyError

from intake_bot.bootstrap import App
from intake_bot.crypto import CryptoError
from intake_bot.services import ServiceError, rotation
from intake_bot.services.keyring import Keyring
from intake_bot.storage import audit

STOP_SECONDS = 30.0
"""How long shutdown waits for the batch in progress to commit before cancelling it."""


class _Stopped(Exception):
    """Raised from the progress callback (outside any transaction) to stop a run."""


class RewrapError(StrEnum):
    """Why a run stopped (the page shows a translated text for each)."""

    KEYS = "keys"
    """The session's keys do not open both keys of a job."""
    CRYPTO = "crypto"
    """A sealed data key or the new key did not verify or open: damaged or altered data."""
    DATABASE = "database"
    UNEXPECTED = "unexpected"


@dataclass(slots=True)
class RewrapRun:
    """One run: who started it, how far it got, and how it ended."""

    actor: str
    done: int = 0
    left: int | None = None
    moved: int = 0
    error: RewrapError | None = None
    finished: bool = False
    stopping: bool = False
    """Asked to stop at the next batch boundary (shutdown)."""
    stopped: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def progress(self, done: int, left: int) -> None:
        """Called by the re-wrap between batches, when no transaction is open."""
        self.done, self.left = done, left
        if self.stopping:
            raise _Stopped


def _kind(exc: Exception) -> RewrapError:
    if isinstance(exc, ServiceError):
        return RewrapError.KEYS
    if isinstance(exc, CryptoError):
        return RewrapError.CRYPTO
    if isinstance(exc, SQLAlchemyError):
        return RewrapError.DATABASE
    return RewrapError.UNEXPECTED


async def _run(app: App, ring: Keyring, run: RewrapRun, batch: int) -> None:
    try:
        result = await rotation.rewrap_with(
            app, ring, run.actor, progress=run.progress, batch=batch
        )
    except _Stopped:
        run.stopped = True
        return
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 (recorded for the page and the audit log)
        run.error = _kind(exc)
        with contextlib.suppress(SQLAlchemyError):
            async with app.sessions() as session, session.begin():
                await audit.append(
                    session,
                    actor=run.actor,
                    action="keys.rewrap.failed",
                    details={"error": run.error.value, "done": run.done},
                )
        return
    run.moved = result.moved
    run.left = result.left
    run.finished = True


def start(app: App, ring: Keyring, actor: str, *, batch: int) -> RewrapRun:
    """Start a run in the background (the caller checked that none is running)."""
    run = RewrapRun(actor)
    run.task = asyncio.create_task(_run(app, ring, run, batch), name="intake-rewrap")
    return run


async def stop(run: RewrapRun | None, *, grace: float = STOP_SECONDS) -> None:
    """Stop a run still going: after the batch in progress commits, or (past ``grace`` seconds)
    by cancelling it, which rolls the open batch back."""
    if run is None or run.task is None or run.task.done():
        return
    run.stopping = True
    try:
        await asyncio.wait_for(asyncio.shield(run.task), grace)
    except TimeoutError:
        run.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run.task
