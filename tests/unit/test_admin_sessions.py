"""Server-side staff sessions (admin/sessions.py): the cookie ticket, the vault that holds a
key-holder's keys under a key only the cookie carries, idle and absolute expiry."""

from __future__ import annotations

import hashlib

import pytest

from admin import sessions
from admin.sessions import (
    ID_BYTES,
    SECOND_FACTOR_SECONDS,
    SWEEP_SECONDS,
    SessionStore,
    Stage,
    Ticket,
    pack_keyring,
    unpack_keyring,
)
from intake_bot.crypto import (
    OrgPrivateKey,
    Plaintext,
    SigningPrivateKey,
    new_vault_key,
    random_id,
    seal_vault,
)
from intake_bot.services.keyring import Keyring

IDLE = 15 * 60.0
LIFETIME = 8 * 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> SessionStore:
    return SessionStore(idle=IDLE, lifetime=LIFETIME, clock=clock)


def keyring(org_keys: int = 2, *, signing: bool = True) -> Keyring:
    keys = [OrgPrivateKey.generate() for _ in range(org_keys)]
    return Keyring(
        staff_id=random_id(),
        org_keys={key.key_id: key for key in keys},
        signing=SigningPrivateKey.generate() if signing else None,
    )


def raw_secrets(ring: Keyring) -> list[bytes]:
    found = [key.raw().reveal() for key in ring.org_keys.values()]
    if ring.signing is not None:
        found.append(ring.signing.seed().reveal())
    return found


# --- the ticket in the cookie ------------------------------------------------------------


def test_a_ticket_round_trips_through_its_cookie_text() -> None:
    ticket = Ticket(b"\x07" * ID_BYTES, new_vault_key())
    text = ticket.encode()
    assert "=" not in text
    assert text.isascii()
    back = Ticket.decode(text)
    assert back is not None
    assert back.session_id == ticket.session_id
    assert back.vault_key == ticket.vault_key
    assert ticket.vault_key.reveal().hex() not in repr(ticket)
    assert ticket.session_id.hex() not in repr(ticket)
    assert repr(ticket.session_id)[2:-1] not in repr(ticket)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x",
        "not base64 !!",
        "A" * 10,
        "A" * 200,
        Ticket(b"\x01" * 32, new_vault_key()).encode()[:-2],
    ],
)
def test_a_garbled_cookie_is_no_ticket(text: str) -> None:
    assert Ticket.decode(text) is None


# --- packing a keyring for the vault -----------------------------------------------------


@pytest.mark.parametrize(("org_keys", "signing"), [(2, True), (1, False), (0, True), (0, False)])
def test_a_keyring_packs_and_unpacks(org_keys: int, *, signing: bool) -> None:
    ring = keyring(org_keys, signing=signing)
    back = unpack_keyring(pack_keyring(ring))
    assert back.staff_id == ring.staff_id
    assert set(back.org_keys) == set(ring.org_keys)
    for kid, key in ring.org_keys.items():
        assert back.org_keys[kid].raw() == key.raw()
        assert back.org_keys[kid].key_id == kid
    if signing:
        assert ring.signing is not None
        assert back.signing is not None
        assert back.signing.seed() == ring.signing.seed()
    else:
        assert back.signing is None


# --- the vault -----------------------------------------------------------------------------


def test_the_vault_holds_the_keys_encrypted_and_opens_only_with_the_cookie(
    store: SessionStore,
) -> None:
    ring = keyring()
    ticket, session = store.start(ring.staff_id, Stage.SIGNED_IN, pack_keyring(ring))
    assert session.vault is not None
    for raw in raw_secrets(ring):
        assert raw not in session.vault
    assert ticket.vault_key.reveal() not in session.vault
    opened = store.open(ticket, session)
    assert opened is not None
    assert raw_secrets(unpack_keyring(opened)) == raw_secrets(ring)
    stranger = Ticket(ticket.session_id, new_vault_key())
    assert store.open(stranger, session) is None, "another vault key opens nothing"


def test_the_vault_is_bound_to_its_session_id(store: SessionStore) -> None:
    """A vault copied into another session (or sealed for another id) does not open, even
    with the right key."""
    ring = keyring()
    ticket, session = store.start(ring.staff_id, Stage.SIGNED_IN, pack_keyring(ring))
    other_ticket, other = store.start(ring.staff_id, Stage.SIGNED_IN)
    other.vault = session.vault
    moved = Ticket(other_ticket.session_id, ticket.vault_key)
    assert store.open(moved, other) is None
    session.vault = seal_vault(ticket.vault_key, other.key, pack_keyring(ring))
    assert store.open(ticket, session) is None
    session.vault = seal_vault(ticket.vault_key, session.key, pack_keyring(ring))
    assert store.open(ticket, session) is not None


def test_an_altered_vault_does_not_open(store: SessionStore) -> None:
    ticket, session = store.start(random_id(), Stage.SECOND_FACTOR, Plaintext(b"a password"))
    assert session.vault is not None
    opened = store.open(ticket, session)
    assert opened is not None
    assert opened.reveal() == b"a password"
    flipped = bytearray(session.vault)
    flipped[-1] ^= 1
    session.vault = bytes(flipped)
    assert store.open(ticket, session) is None
    session.vault = None
    assert store.open(ticket, session) is None


def test_the_store_keeps_a_hash_of_the_id_never_the_id_or_the_vault_key(
    store: SessionStore,
) -> None:
    ticket, session = store.start(random_id(), Stage.SIGNED_IN, Plaintext(b"secret keys"))
    assert session.key == hashlib.sha256(ticket.session_id).digest()
    assert ticket.session_id not in (session.key, session.vault)
    assert ticket.session_id.hex() not in repr(session)
    assert "secret keys" not in repr(session)
    assert session.csrf not in repr(session)
    assert store.get(ticket) is session
    forged = Ticket(session.key, ticket.vault_key)  # the stored hash is not a session id
    assert store.get(forged) is None


def test_each_start_is_a_new_session_with_its_own_csrf_token(store: SessionStore) -> None:
    staff = random_id()
    one, first = store.start(staff, Stage.SIGNED_IN)
    two, second = store.start(staff, Stage.SIGNED_IN)
    assert one.session_id != two.session_id
    assert one.vault_key != two.vault_key
    assert first.csrf != second.csrf
    assert len(first.csrf) >= 40
    assert len(store) == 2


# --- expiry ----------------------------------------------------------------------------------


def test_idle_sessions_end_and_each_request_restarts_the_idle_clock(
    store: SessionStore, clock: Clock
) -> None:
    ticket, _ = store.start(random_id(), Stage.SIGNED_IN)
    for _ in range(10):
        clock.now += IDLE
        assert store.get(ticket) is not None, "exactly the idle limit is still alive"
    clock.now += IDLE + 0.001
    assert store.get(ticket) is None
    assert len(store) == 0
    clock.now -= IDLE + 0.001
    assert store.get(ticket) is None, "an ended session does not come back"


def test_a_session_ends_at_its_lifetime_however_busy(store: SessionStore, clock: Clock) -> None:
    ticket, _ = store.start(random_id(), Stage.SIGNED_IN)
    start = clock.now
    while clock.now + 600 <= start + LIFETIME:
        clock.now += 600
        assert store.get(ticket) is not None
    clock.now = start + LIFETIME + 0.001
    assert store.get(ticket) is None


def test_the_second_factor_step_has_five_minutes(store: SessionStore, clock: Clock) -> None:
    assert SECOND_FACTOR_SECONDS == 300.0
    ticket, _ = store.start(random_id(), Stage.SECOND_FACTOR, Plaintext(b"pw"))
    clock.now += SECOND_FACTOR_SECONDS
    assert store.get(ticket) is not None
    clock.now += SECOND_FACTOR_SECONDS + 0.001
    assert store.get(ticket) is None


def test_expired_sessions_are_swept_when_another_starts(store: SessionStore, clock: Clock) -> None:
    store.start(random_id(), Stage.SIGNED_IN, Plaintext(b"keys"))
    store.start(random_id(), Stage.SECOND_FACTOR, Plaintext(b"pw"))
    clock.now += SECOND_FACTOR_SECONDS + 1
    store.start(random_id(), Stage.SIGNED_IN)
    assert len(store) == 2, "the pending session went"
    clock.now += IDLE
    store.start(random_id(), Stage.SIGNED_IN)
    assert len(store) == 2, "the first signed-in session went"


def test_expired_sessions_go_even_if_their_browser_never_comes_back(
    store: SessionStore, clock: Clock
) -> None:
    """Requests of other members sweep expired sessions (with their sealed keys) away at
    least once a minute; no new sign-in is needed for that."""
    assert SWEEP_SECONDS == 60.0
    store.start(random_id(), Stage.SIGNED_IN, Plaintext(b"sealed org keys"))
    active, _ = store.start(random_id(), Stage.SIGNED_IN)
    clock.now += IDLE - 10
    assert store.get(active) is not None
    assert len(store) == 2
    clock.now += SWEEP_SECONDS + 1
    assert store.get(active) is not None
    assert len(store) == 1, "the abandoned session is gone"


def test_the_number_of_sessions_is_bounded(
    store: SessionStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    tickets = []
    for _ in range(3):
        tickets.append(store.start(random_id(), Stage.SIGNED_IN)[0])
        clock.now += 1
    assert store.get(tickets[0]) is not None  # the first is now the most recently seen
    store.start(random_id(), Stage.SIGNED_IN)
    assert len(store) == 3
    assert store.get(tickets[1]) is None, "the least recently seen went"
    assert store.get(tickets[0]) is not None
    assert store.get(tickets[2]) is not None


# --- ending sessions ------------------------------------------------------------------------


def test_end_and_end_for(store: SessionStore) -> None:
    amina, bob = random_id(), random_id()
    a1, s1 = store.start(amina, Stage.SIGNED_IN)
    a2, _ = store.start(amina, Stage.SECOND_FACTOR, Plaintext(b"pw"))
    a3, s3 = store.start(amina, Stage.SIGNED_IN)
    b1, _ = store.start(bob, Stage.SIGNED_IN)
    store.end(s1)
    assert store.get(a1) is None
    store.end(s1)  # twice is harmless
    assert store.end_for(amina, keep=s3) == 1
    assert store.get(a2) is None
    assert store.get(a3) is s3
    assert store.end_for(amina) == 1
    assert store.get(a3) is None
    assert store.get(b1) is not None
    assert store.end_for(amina) == 0
