"""The boot secret and the reporter-handle ratchet (tmpfs file), and the draft box."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_bot.crypto import (
    DecryptionError,
    Plaintext,
    Secret,
    WrappedDraftBox,
    boot_tag,
    new_secret,
    next_handle_key,
    open_draft_box,
    random_id,
    reporter_handle,
    seal_draft_box,
)
from intake_bot.ephemeral import FILE_NAME, BootSecrets, load_or_create, on_memory_fs

DAY = dt.date(2024, 6, 15)
USER = 5_123_456_789


@pytest.fixture
def umask() -> Iterator[None]:
    """A permissive umask, so that the modes checked are the code's, not the umask's."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _ratchet(key: Secret, days: int) -> Secret:
    for _ in range(days):
        key = next_handle_key(key)
    return key


def _file(runtime: Path) -> dict[str, str | None]:
    data = json.loads((runtime / FILE_NAME).read_text(encoding="ascii"))
    assert isinstance(data, dict)
    return data


@pytest.mark.usefixtures("umask")
def test_first_start_creates_a_private_dir_and_file(tmp_path: Path) -> None:
    runtime = tmp_path / "run" / "intake"
    secrets = load_or_create(runtime, DAY)
    assert _mode(runtime) == 0o700
    path = runtime / FILE_NAME
    assert _mode(path) == 0o600
    assert sorted(p.name for p in runtime.iterdir()) == [FILE_NAME]
    assert secrets.day == DAY
    assert secrets.yesterday is None
    assert len(secrets.boot) == len(secrets.today) == 32
    assert secrets.boot != secrets.today
    assert secrets.tag == boot_tag(secrets.boot)
    assert len(secrets.tag) == 16
    data = _file(runtime)
    assert set(data) == {"boot", "day", "today", "yesterday"}
    assert data["day"] == "2024-06-15"
    assert data["boot"] == secrets.boot.reveal().hex()


def test_same_secrets_on_reload_the_same_day(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, DAY)
    second = load_or_create(tmp_path, DAY)
    assert second == first
    assert second.handles(USER) == first.handles(USER)
    other = load_or_create(tmp_path / "elsewhere", DAY)  # another boot: nothing shared
    assert other.boot != first.boot
    assert other.today != first.today
    assert other.tag != first.tag


@pytest.mark.usefixtures("umask")
def test_next_day_ratchets_the_handle_key(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, DAY)
    second = load_or_create(tmp_path, DAY + dt.timedelta(days=1))
    assert second.day == DAY + dt.timedelta(days=1)
    assert second.boot == first.boot
    assert second.tag == first.tag
    assert second.today == next_handle_key(first.today)
    assert second.yesterday == first.today
    assert second.handles(USER) == [reporter_handle(second.today, USER), first.handles(USER)[0]]
    assert second.handles(USER)[0] != first.handles(USER)[0]
    assert load_or_create(tmp_path, DAY + dt.timedelta(days=1)) == second  # written back
    assert _mode(tmp_path / FILE_NAME) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]  # no temp files left


def test_after_three_days_only_the_last_two_keys_remain(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, DAY)
    later = load_or_create(tmp_path, DAY + dt.timedelta(days=3))
    assert later.today == _ratchet(first.today, 3)
    assert later.yesterday == _ratchet(first.today, 2)
    content = (tmp_path / FILE_NAME).read_text(encoding="ascii")
    for erased in (first.today, _ratchet(first.today, 1)):
        assert erased.reveal().hex() not in content
    assert later.boot.reveal().hex() in content


def test_day_by_day_equals_a_jump(tmp_path: Path) -> None:
    jump = tmp_path / "jump"
    steps = tmp_path / "steps"
    jump.mkdir()
    steps.mkdir()
    start = load_or_create(steps, DAY)
    (jump / FILE_NAME).write_bytes((steps / FILE_NAME).read_bytes())
    (jump / FILE_NAME).chmod(0o600)
    for day in range(1, 6):
        stepped = load_or_create(steps, DAY + dt.timedelta(days=day))
    assert load_or_create(jump, DAY + dt.timedelta(days=5)) == stepped
    assert stepped.boot == start.boot


def test_a_clock_going_back_changes_nothing(tmp_path: Path) -> None:
    now = load_or_create(tmp_path, DAY + dt.timedelta(days=1))
    before = (tmp_path / FILE_NAME).read_bytes()
    past = load_or_create(tmp_path, DAY)
    assert past == now
    assert (tmp_path / FILE_NAME).read_bytes() == before


class _SlowWriter:
    """A file whose writes take a while, as on a busy machine."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __enter__(self) -> _SlowWriter:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)

    def write(self, text: str) -> int:
        time.sleep(0.3)
        return int(self.inner.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # reads (fileno, read) pass straight through


def test_two_processes_starting_together_share_one_boot_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fdopen = os.fdopen
    # ephemeral.py calls os.fdopen: the same function object, patched for this test
    monkeypatch.setattr(os, "fdopen", lambda *a, **k: _SlowWriter(real_fdopen(*a, **k)))
    results: list[BootSecrets] = []
    first = threading.Thread(target=lambda: results.append(load_or_create(tmp_path, DAY)))
    first.start()
    try:
        deadline = time.monotonic() + 5
        while not (tmp_path / FILE_NAME).exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        second = load_or_create(tmp_path, DAY)
    finally:
        first.join()
    assert results == [second]


def test_handles_are_not_the_user_id(tmp_path: Path) -> None:
    load_or_create(tmp_path, DAY)
    secrets = load_or_create(tmp_path, DAY + dt.timedelta(days=1))
    handles = secrets.handles(USER)
    assert len(handles) == 2
    assert len(set(handles)) == 2
    encodings = [
        str(USER).encode(),
        f"{USER:x}".encode(),
        USER.to_bytes(8, "big").lstrip(b"\0"),
        USER.to_bytes(8, "little").rstrip(b"\0"),
    ]
    for handle in handles:
        assert len(handle) == 32
        for encoding in encodings:
            assert encoding not in handle
            assert encoding not in handle.hex().encode()
    assert secrets.handles(USER + 1)[0] != handles[0]
    assert secrets.handles(USER) == handles  # deterministic within the day


def test_boot_secrets_never_print(tmp_path: Path) -> None:
    secrets = load_or_create(tmp_path, DAY)
    shown = repr(secrets) + str(secrets)
    for secret in (secrets.boot, secrets.today):
        assert secret.reveal().hex() not in shown
    assert "<SECRET>" in shown


def _fstype(path: Path) -> str:
    result = subprocess.run(
        ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_on_memory_fs(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    mounts = Path("/proc/mounts").read_text(encoding="utf-8").split("\n")
    shm_is_tmpfs = any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts if line)
    assert on_memory_fs(shm) is shm_is_tmpfs
    assert on_memory_fs(shm / "intake" / "not-created-yet") is shm_is_tmpfs
    on_disk = _fstype(tmp_path) not in ("tmpfs", "ramfs")
    assert on_memory_fs(tmp_path) is not on_disk
    if on_disk:
        assert not on_memory_fs(tmp_path)
    assert not on_memory_fs(Path("/"))  # the root is never tmpfs on these machines
    # "/dev/shmx" is not inside "/dev/shm": it belongs to /dev's own mount
    dev = [line.split()[2] for line in mounts if line and line.split()[1] == "/dev"]
    if dev:
        assert on_memory_fs(Path("/dev/shmx")) is (dev[-1] in ("tmpfs", "ramfs"))


def test_secrets_on_shm_work_there(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not on_memory_fs(shm):
        pytest.skip("/dev/shm is not tmpfs here")
    runtime = shm / f"intake-test-{tmp_path.name}-{os.getpid()}"
    try:
        secrets = load_or_create(runtime, DAY)
        assert on_memory_fs(runtime)
        assert isinstance(secrets, BootSecrets)
    finally:
        (runtime / FILE_NAME).unlink(missing_ok=True)
        runtime.rmdir()


# --- crypto: the draft box and the handle derivations --------------------------------------


def test_draft_box_round_trip() -> None:
    boot = new_secret()
    report = random_id()
    content = Plaintext(b'{"dek": "...", "wipe": [1, 2, 3]}')
    box = seal_draft_box(boot, report, content)
    assert isinstance(box, WrappedDraftBox)
    assert content.reveal() not in bytes(box)
    assert open_draft_box(boot, report, box) == content
    assert seal_draft_box(boot, report, content) != box  # a fresh nonce each time


def test_draft_box_refuses_wrong_boot_other_report_and_tampering() -> None:
    boot = new_secret()
    report = random_id()
    box = seal_draft_box(boot, report, Plaintext(b"data key and wipe list"))
    with pytest.raises(DecryptionError):
        open_draft_box(new_secret(), report, box)  # after a reboot
    with pytest.raises(DecryptionError):
        open_draft_box(boot, random_id(), box)  # moved to another report
    for index in range(len(box)):
        flipped = bytearray(box)
        flipped[index] ^= 0x01
        with pytest.raises(DecryptionError):
            open_draft_box(boot, report, WrappedDraftBox(bytes(flipped)))
    for cut in (0, 1, 24, 24 + 15, len(box) - 1):
        with pytest.raises(DecryptionError):
            open_draft_box(boot, report, WrappedDraftBox(bytes(box)[:cut]))
    with pytest.raises(DecryptionError):
        open_draft_box(boot, report, WrappedDraftBox(bytes(box) + b"\0"))


@settings(max_examples=30, deadline=None)
@given(content=st.binary(max_size=300), index=st.integers(min_value=0), bit=st.integers(0, 7))
def test_draft_box_any_content_and_any_flip(content: bytes, index: int, bit: int) -> None:
    boot, report = new_secret(), random_id()
    box = seal_draft_box(boot, report, Plaintext(content))
    assert open_draft_box(boot, report, box).reveal() == content
    flipped = bytearray(box)
    flipped[index % len(box)] ^= 1 << bit
    with pytest.raises(DecryptionError):
        open_draft_box(boot, report, WrappedDraftBox(bytes(flipped)))


def test_boot_tag_and_handles_are_separated() -> None:
    first, second = new_secret(), new_secret()
    assert boot_tag(first) != boot_tag(second)
    assert boot_tag(first) == boot_tag(Secret(first.reveal()))
    assert len(boot_tag(first)) == 16
    assert boot_tag(first) not in first.reveal()
    day1 = first
    day2 = next_handle_key(day1)
    assert day2 != day1
    assert len(day2) == 32
    assert next_handle_key(Secret(day1.reveal())) == day2  # deterministic
    assert reporter_handle(day1, USER) == reporter_handle(Secret(day1.reveal()), USER)
    assert reporter_handle(day1, USER) != reporter_handle(day2, USER)
    assert reporter_handle(day1, USER) != reporter_handle(day1, USER + 1)
    # the same key used for different purposes gives unrelated values
    assert boot_tag(day1) not in reporter_handle(day1, USER)
    assert reporter_handle(day1, USER) != next_handle_key(day1).reveal()


@settings(max_examples=50)
@given(users=st.lists(st.integers(1, 2**53), min_size=2, max_size=20, unique=True))
def test_handles_differ_per_user(users: list[int]) -> None:
    key = new_secret()
    handles = {reporter_handle(key, user) for user in users}
    assert len(handles) == len(users)


def test_a_boot_file_others_can_read_is_refused(tmp_path: Path) -> None:
    """A boot file planted (or left readable) for other users is never used."""
    load_or_create(tmp_path, DAY)
    (tmp_path / FILE_NAME).chmod(0o644)
    with pytest.raises(PermissionError):
        load_or_create(tmp_path, DAY)


def test_a_boot_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    load_or_create(elsewhere, DAY)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / FILE_NAME).symlink_to(elsewhere / FILE_NAME)
    with pytest.raises(OSError, match="symbolic links") as refused:
        load_or_create(runtime, DAY)
    assert refused.value.errno == errno.ELOOP  # O_NOFOLLOW: a link is not followed
