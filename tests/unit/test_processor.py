"""Per-reporter update processing: one reporter strictly in order, reporters in parallel."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import Awaitable

import pytest
from telegram import CallbackQuery, Chat, Message, Update, User

from intake_bot.telegram.processor import PerReporterProcessor

NOW = dt.datetime(2024, 6, 15, 12, 0, tzinfo=dt.UTC)
_ids = iter(range(1, 1_000_000))


def _message_update(user_id: int, text: str = "hi") -> Update:
    user = User(id=user_id, first_name="R", is_bot=False)
    chat = Chat(id=user_id, type=Chat.PRIVATE)
    number = next(_ids)
    return Update(number, message=Message(number, NOW, chat, from_user=user, text=text))


def _callback_update(user_id: int) -> Update:
    user = User(id=user_id, first_name="R", is_bot=False)
    query = CallbackQuery(str(next(_ids)), user, chat_instance="x", data="R")
    return Update(next(_ids), callback_query=query)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []

    async def work(self, name: str, seconds: float) -> None:
        self.events.append(("start", name, time.monotonic()))
        await asyncio.sleep(seconds)
        self.events.append(("end", name, time.monotonic()))

    def order(self, kind: str) -> list[str]:
        return [name for event, name, _ in self.events if event == kind]

    def interval(self, name: str) -> tuple[float, float]:
        start = next(t for e, n, t in self.events if e == "start" and n == name)
        end = next(t for e, n, t in self.events if e == "end" and n == name)
        return start, end


async def _run_all(
    processor: PerReporterProcessor, jobs: list[tuple[object, Awaitable[None]]]
) -> None:
    tasks = [asyncio.create_task(processor.process_update(u, c)) for u, c in jobs]
    await asyncio.gather(*tasks)


async def test_one_reporters_updates_run_in_arrival_order() -> None:
    processor = PerReporterProcessor()
    recorder = Recorder()
    # earlier updates take longer: without the lock the later ones would finish first
    jobs: list[tuple[object, Awaitable[None]]] = [
        (_message_update(7, f"m{i}"), recorder.work(f"m{i}", 0.05 - i * 0.01)) for i in range(5)
    ]
    jobs.insert(2, (_callback_update(7), recorder.work("button", 0.0)))
    async with processor:
        await _run_all(processor, jobs)
    expected = ["m0", "m1", "button", "m2", "m3", "m4"]
    assert recorder.order("start") == expected
    assert recorder.order("end") == expected
    # strictly one at a time: each starts after the previous ended
    for before, after in itertools.pairwise(expected):
        assert recorder.interval(after)[0] >= recorder.interval(before)[1]


async def test_different_reporters_run_concurrently() -> None:
    processor = PerReporterProcessor()
    recorder = Recorder()
    jobs: list[tuple[object, Awaitable[None]]] = [
        (_message_update(uid), recorder.work(f"user{uid}", 0.2)) for uid in range(1, 11)
    ]
    started = time.monotonic()
    async with processor:
        await _run_all(processor, jobs)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0  # ten 0.2 s jobs one after the other would take 2 s
    intervals = [recorder.interval(f"user{uid}") for uid in range(1, 11)]
    latest_start = max(start for start, _ in intervals)
    earliest_end = min(end for _, end in intervals)
    assert latest_start < earliest_end  # all ten were running at the same moment


async def test_mixed_reporters_keep_their_own_order() -> None:
    processor = PerReporterProcessor()
    recorder = Recorder()
    jobs: list[tuple[object, Awaitable[None]]] = []
    for i in range(6):
        for uid in (1, 2, 3):
            jobs.append((_message_update(uid), recorder.work(f"{uid}:{i}", (6 - i) * 0.005)))
    async with processor:
        await _run_all(processor, jobs)
    for uid in (1, 2, 3):
        mine = [n for n in recorder.order("end") if n.startswith(f"{uid}:")]
        assert mine == [f"{uid}:{i}" for i in range(6)]
    # the first updates of all three started before any of them ended
    first_end = recorder.events.index(next(e for e in recorder.events if e[0] == "end"))
    assert {n for e, n, _ in recorder.events[:first_end] if e == "start"} >= {"1:0", "2:0", "3:0"}


async def test_locks_are_removed_after_processing() -> None:
    processor = PerReporterProcessor()

    async def nothing() -> None:
        await asyncio.sleep(0)

    async with processor:
        for wave in range(3):
            jobs: list[tuple[object, Awaitable[None]]] = [
                (_message_update(uid), nothing()) for uid in range(wave * 500, wave * 500 + 500)
            ]
            jobs += [(_message_update(5), nothing()) for _ in range(10)]
            await _run_all(processor, jobs)
            assert processor._locks == {}
            assert processor._users == {}


async def test_a_failing_update_releases_the_lock() -> None:
    processor = PerReporterProcessor()
    recorder = Recorder()

    async def boom() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("handler failed")

    async with processor:
        failing = asyncio.create_task(processor.process_update(_message_update(9), boom()))
        later = asyncio.create_task(
            processor.process_update(_message_update(9), recorder.work("after", 0))
        )
        with pytest.raises(RuntimeError):
            await failing
        await asyncio.wait_for(later, 1.0)
    assert recorder.order("end") == ["after"]
    assert processor._locks == {}
    assert processor._users == {}


async def test_updates_without_a_user_are_processed() -> None:
    processor = PerReporterProcessor()
    recorder = Recorder()
    async with processor:
        await _run_all(
            processor,
            [(Update(next(_ids)), recorder.work("empty", 0)), (object(), recorder.work("odd", 0))],
        )
    assert sorted(recorder.order("end")) == ["empty", "odd"]
    assert processor._locks == {}


def test_lock_keys_are_not_user_ids() -> None:
    processor = PerReporterProcessor()
    other = PerReporterProcessor()
    key = processor._key(_message_update(123456789))
    assert key == processor._key(_callback_update(123456789))
    assert key != processor._key(_message_update(123456790))
    assert key != other._key(_message_update(123456789))  # keyed per process start
    assert b"123456789" not in key
    assert (123456789).to_bytes(8, "big").strip(b"\0") not in key
    assert len(key) == 16
