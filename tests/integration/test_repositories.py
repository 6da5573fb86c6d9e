"""Repositories on both databases: keys, grants, staff, enrolments and reports, with real crypto.

Every ciphertext is made by :mod:`intake_bot.crypto` and, where it matters, opened again
after the round trip through the database, so a byte changed or a column mixed up on the
way shows as a decryption failure rather than passing unnoticed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from intake_bot.crypto import (
    KDF_INSECURE_TEST,
    DataKey,
    EncryptedPayload,
    OrgPrivateKey,
    PayloadContext,
    PayloadKind,
    Plaintext,
    SealedDataKey,
    Secret,
    SignedOrgKey,
    SigningPrivateKey,
    StaffPrivateKey,
    WrappedStaffKey,
    decrypt_payload,
    encrypt_payload,
    grant_org_key,
    grant_signing_key,
    open_data_key,
    open_org_grant,
    open_signing_grant,
    random_id,
    seal_data_key,
    unwrap_staff_key,
    verify_org_key,
    wrap_staff_key,
)
from intake_bot.storage import keys, reports, staff
from intake_bot.storage.db import session_factory
from intake_bot.storage.models import (
    Attachment,
    CurrentOrgKey,
    Enrolment,
    OrgKey,
    OrgKeyState,
    Payload,
    ReportKey,
    ReportLabel,
    ReportState,
    Role,
    StaffState,
)

DAY1 = dt.date(2024, 5, 1)
DAY2 = dt.date(2024, 5, 2)
DAY3 = dt.date(2024, 5, 3)
PASSWORD = Secret(b"a long staff passphrase for tests")

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


@dataclass(frozen=True)
class Org:
    """The organisation's keys as a key-holder would have them unsealed."""

    signer: SigningPrivateKey
    key: OrgPrivateKey

    @property
    def signed(self) -> SignedOrgKey:
        return self.key.sign_public(self.signer)

    def seal(self, dek: DataKey) -> SealedDataKey:
        return seal_data_key(dek, verify_org_key(self.signer.public, self.signed))


def _org(signer: SigningPrivateKey | None = None) -> Org:
    return Org(signer or SigningPrivateKey.generate(), OrgPrivateKey.generate())


async def _add_org_key(sessions: Sessions, org: Org, day: dt.date, *, active: bool) -> None:
    async with sessions() as session, session.begin():
        await keys.add_org_key(session, org.signed, day, active=active)


async def _add_member(sessions: Sessions, name: str, *roles: Role) -> bytes:
    staff_id = random_id()
    async with sessions() as session, session.begin():
        await staff.add_staff(
            session, staff_id=staff_id, name=name, roles=roles or [Role.KEYHOLDER], day=DAY1
        )
    return staff_id


async def _new_report(
    sessions: Sessions,
    orgs: list[Org],
    *,
    urgent: bool = False,
    state: ReportState = ReportState.DRAFT,
    day: dt.date = DAY1,
) -> tuple[bytes, DataKey]:
    report_id, dek = random_id(), DataKey.generate()
    async with sessions() as session, session.begin():
        await reports.create_report(
            session,
            report_id=report_id,
            sealed_keys={org.key.key_id: org.seal(dek) for org in orgs},
            state=state,
            urgent=urgent,
            day=day,
        )
    return report_id, dek


def _encrypt(
    dek: DataKey,
    report_id: bytes,
    slot_id: bytes,
    kind: PayloadKind,
    content: str,
    *,
    part: int = 0,
) -> EncryptedPayload:
    context = PayloadContext(kind, report_id, slot_id, part)
    return encrypt_payload(dek, context, Plaintext.from_text(content))


async def _count(sessions: Sessions, model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _summary(sessions: Sessions, report_id: bytes) -> reports.ReportSummary:
    async with sessions() as session:
        found = [s for s in await reports.summaries(session) if s.id == report_id]
    assert len(found) == 1
    return found[0]


# --- Keys and grants ----------------------------------------------------------------------


async def test_signing_key_round_trip(sessions: Sessions) -> None:
    """The oldest recorded signing key is returned, byte for byte."""
    first, later = SigningPrivateKey.generate(), SigningPrivateKey.generate()
    async with sessions() as session:
        assert await keys.signing_key(session) is None
    async with sessions() as session, session.begin():
        await keys.add_signing_key(session, later.public, DAY2)
        await keys.add_signing_key(session, first.public, DAY1)
    async with sessions() as session:
        assert await keys.signing_key(session) == first.public


async def test_org_keys_active_and_listing(sessions: Sessions) -> None:
    signer = SigningPrivateKey.generate()
    old, current = _org(signer), _org(signer)
    async with sessions() as session:
        assert await keys.active_org_key(session) is None
        assert await keys.list_org_keys(session) == []
    await _add_org_key(sessions, old, DAY1, active=False)
    await _add_org_key(sessions, current, DAY2, active=True)

    async with sessions() as session:
        active = await keys.active_org_key(session)
    assert active == current.signed
    # The stored signature still verifies against the pinned key after the round trip.
    assert verify_org_key(signer.public, active).key_id == current.key.key_id

    await _new_report(sessions, [current])
    await _new_report(sessions, [current])
    await _new_report(sessions, [old, current])
    amina = await _add_member(sessions, "amina")
    rauf = await _add_member(sessions, "rauf")
    holder = StaffPrivateKey.generate()
    async with sessions() as session, session.begin():
        for member in (rauf, amina):
            await keys.add_org_grant(
                session,
                org_key_id=current.key.key_id,
                staff_id=member,
                sealed=grant_org_key(current.key, holder.public_key),
                granted_by=None,
                day=DAY2,
            )
        await keys.add_org_grant(
            session,
            org_key_id=old.key.key_id,
            staff_id=rauf,
            sealed=grant_org_key(old.key, holder.public_key),
            granted_by=amina,
            day=DAY2,
        )

    async with sessions() as session:
        listed = await keys.list_org_keys(session)
    assert [
        (info.key, info.state, info.created_on, info.retired_on, info.reports, info.holders)
        for info in listed
    ] == [
        (current.signed, OrgKeyState.ACTIVE, DAY2, None, 3, ("amina", "rauf")),
        (old.signed, OrgKeyState.RETIRED, DAY1, None, 1, ("rauf",)),
    ]


async def test_org_and_signing_grants_round_trip(sessions: Sessions) -> None:
    """Grants come back sealed and open to the very keys that were granted."""
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    holder_key, other_key = StaffPrivateKey.generate(), StaffPrivateKey.generate()
    holder = await _add_member(sessions, "leyla")
    other = await _add_member(sessions, "orxan")
    async with sessions() as session, session.begin():
        await keys.add_signing_key(session, org.signer.public, DAY1)
        await keys.add_org_grant(
            session,
            org_key_id=org.key.key_id,
            staff_id=holder,
            sealed=grant_org_key(org.key, holder_key.public_key),
            granted_by=None,
            day=DAY1,
        )
        await keys.add_signing_grant(
            session,
            signing_key_id=org.signer.public.key_id,
            staff_id=holder,
            sealed=grant_signing_key(org.signer, holder_key.public_key),
            granted_by=None,
            day=DAY1,
        )
        await keys.add_org_grant(
            session,
            org_key_id=org.key.key_id,
            staff_id=other,
            sealed=grant_org_key(org.key, other_key.public_key),
            granted_by=holder,
            day=DAY2,
        )

    async with sessions() as session:
        grants = await keys.org_grants(session, holder)
        signing = await keys.signing_grant(session, holder, org.signer.public.key_id)
        assert await keys.signing_grant(session, other, org.signer.public.key_id) is None
        assert await keys.org_grants(session, random_id()) == {}
    assert list(grants) == [org.key.key_id]
    opened = open_org_grant(grants[org.key.key_id], holder_key, org.key.key_id)
    assert opened.public_key == org.key.public_key
    assert signing is not None
    assert open_signing_grant(signing, holder_key, org.signer.public).public == org.signer.public


# --- Staff and enrolments -----------------------------------------------------------------


async def test_staff_accounts_roles_and_credentials(sessions: Sessions) -> None:
    boss = await _add_member(sessions, "zaur", Role.ADMIN, Role.KEYHOLDER, Role.ADMIN)
    reviewer = await _add_member(sessions, "aysel", Role.REVIEWER)

    async with sessions() as session:
        assert await staff.name_taken(session, "zaur")
        assert not await staff.name_taken(session, "nobody")
        listed = await staff.list_staff(session)
        info = await staff.get_staff(session, boss)
        assert await staff.get_staff(session, random_id()) is None
        # A pending account cannot log in.
        assert await staff.credentials(session, "zaur") is None
    assert [(m.name, m.id, m.roles, m.state) for m in listed] == [
        ("aysel", reviewer, frozenset({Role.REVIEWER}), StaffState.PENDING),
        ("zaur", boss, frozenset({Role.ADMIN, Role.KEYHOLDER}), StaffState.PENDING),
    ]
    assert info is not None
    assert (info.name, info.created_on, info.public_key) == ("zaur", DAY1, None)

    async with sessions() as session, session.begin():
        await staff.activate(session, boss, password_hash="$argon2id$hash", totp_secret="TOTP")
        with pytest.raises(LookupError):
            await staff.activate(session, random_id(), password_hash="x", totp_secret="y")
    async with sessions() as session:
        assert await staff.credentials(session, "zaur") == staff.Credentials(
            boss, "$argon2id$hash", "TOTP"
        )
        assert await staff.credentials(session, "aysel") is None
        assert await staff.credentials(session, "nobody") is None
        info = await staff.get_staff(session, boss)
    assert info is not None
    assert info.state is StaffState.ACTIVE


async def test_staff_names_are_unique(sessions: Sessions) -> None:
    await _add_member(sessions, "nigar")
    with pytest.raises(IntegrityError):
        await _add_member(sessions, "nigar")


async def test_staff_key_round_trip_and_replacement(sessions: Sessions) -> None:
    """Salt, KDF parameters and ciphertext survive byte-exact: the key still unwraps."""
    member = await _add_member(sessions, "samir")
    private = StaffPrivateKey.generate()
    wrapped = wrap_staff_key(private, PASSWORD, KDF_INSECURE_TEST)
    async with sessions() as session, session.begin():
        assert await staff.staff_key(session, member) is None
        await staff.put_staff_key(session, member, wrapped, DAY1)

    async with sessions() as session:
        stored = await staff.staff_key(session, member)
        info = await staff.get_staff(session, member)
    assert stored == wrapped
    assert isinstance(stored, WrappedStaffKey)
    assert stored.params == KDF_INSECURE_TEST
    assert unwrap_staff_key(stored, PASSWORD, KDF_INSECURE_TEST).public_key == private.public_key
    assert info is not None
    assert info.public_key == private.public_key

    # A reset replaces the key pair (one row per member).
    replacement = wrap_staff_key(StaffPrivateKey.generate(), PASSWORD, KDF_INSECURE_TEST)
    async with sessions() as session, session.begin():
        await staff.put_staff_key(session, member, replacement, DAY2)
    async with sessions() as session:
        assert await staff.staff_key(session, member) == replacement


async def test_enrolment_tokens_work_once(sessions: Sessions) -> None:
    member = await _add_member(sessions, "elvin")
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    token = bytes(range(32))
    async with sessions() as session, session.begin():
        await staff.add_enrolment(
            session, token_hash=token, staff_id=member, expires_at=now + dt.timedelta(hours=1)
        )
    async with sessions() as session, session.begin():
        assert await staff.take_enrolment(session, token, now) == member
    async with sessions() as session, session.begin():
        assert await staff.take_enrolment(session, token, now) is None
    assert await _count(sessions, Enrolment) == 0


async def test_expired_and_unknown_enrolment_tokens(sessions: Sessions) -> None:
    """Expired tokens give None; any take sweeps expired rows, live ones stay."""
    member = await _add_member(sessions, "gunel")
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    expired, other_expired, live = b"e" * 32, b"o" * 32, b"l" * 32
    async with sessions() as session, session.begin():
        for token, delta in ((expired, -1), (other_expired, -5), (live, 5)):
            await staff.add_enrolment(
                session,
                token_hash=token,
                staff_id=member,
                expires_at=now + dt.timedelta(minutes=delta),
            )
    async with sessions() as session, session.begin():
        assert await staff.take_enrolment(session, expired, now) is None
    async with sessions() as session:
        left = set(await session.scalars(select(Enrolment.token_hash)))
    assert left == {live}
    async with sessions() as session, session.begin():
        assert await staff.take_enrolment(session, b"u" * 32, now) is None
        # Exactly at the expiry time a token no longer works.
        assert await staff.take_enrolment(session, live, now + dt.timedelta(minutes=5)) is None


async def test_enrolment_expiry_given_in_another_time_zone(sessions: Sessions) -> None:
    """An expiry is an instant: the same instant written in Baku time (UTC+4) must expire."""
    member = await _add_member(sessions, "tural")
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    baku = dt.timezone(dt.timedelta(hours=4))
    expired_an_hour_ago = (now - dt.timedelta(hours=1)).astimezone(baku)
    async with sessions() as session, session.begin():
        await staff.add_enrolment(
            session, token_hash=b"b" * 32, staff_id=member, expires_at=expired_an_hour_ago
        )
    async with sessions() as session, session.begin():
        assert await staff.take_enrolment(session, b"b" * 32, now) is None


# --- Reports ------------------------------------------------------------------------------


async def test_create_report_with_sealed_keys(sessions: Sessions) -> None:
    """The DEK sealed to each org key comes back and opens with that key."""
    signer = SigningPrivateKey.generate()
    first, second = _org(signer), _org(signer)
    await _add_org_key(sessions, first, DAY1, active=False)
    await _add_org_key(sessions, second, DAY2, active=True)
    report_id, dek = await _new_report(sessions, [first, second], urgent=False)

    async with sessions() as session:
        sealed = await reports.sealed_keys(session, report_id)
        assert await reports.sealed_keys(session, random_id()) == {}
    assert set(sealed) == {first.key.key_id, second.key.key_id}
    for org in (first, second):
        assert open_data_key(sealed[org.key.key_id], org.key) == dek

    summary = await _summary(sessions, report_id)
    assert (summary.state, summary.urgent, summary.priority, summary.triage_status) == (
        ReportState.DRAFT,
        False,
        "normal",
        "new",
    )
    assert (summary.created_on, summary.updated_on, summary.labels) == (DAY1, DAY1, ())


async def test_create_report_needs_a_sealed_key(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        with pytest.raises(ValueError, match="at least one org key"):
            await reports.create_report(
                session,
                report_id=random_id(),
                sealed_keys={},
                state=ReportState.DRAFT,
                urgent=False,
                day=DAY1,
            )


async def test_put_payload_inserts_and_replaces(sessions: Sessions) -> None:
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    report_id, dek = await _new_report(sessions, [org])
    slot = random_id()
    first = _encrypt(dek, report_id, slot, PayloadKind.ANSWER, "Qardaşım həbs olunub")
    async with sessions() as session, session.begin():
        await reports.put_payload(
            session,
            report_id=report_id,
            slot_id=slot,
            part=0,
            kind=PayloadKind.ANSWER,
            ciphertext=first,
            day=DAY1,
        )
    async with sessions() as session:
        stored = await reports.payloads(session, report_id)
    assert stored == [reports.StoredPayload(slot, 0, PayloadKind.ANSWER, first)]
    assert isinstance(stored[0].ciphertext, EncryptedPayload)

    second = _encrypt(dek, report_id, slot, PayloadKind.DRAFT_STATE, "step 2")
    async with sessions() as session, session.begin():
        await reports.put_payload(
            session,
            report_id=report_id,
            slot_id=slot,
            part=0,
            kind=PayloadKind.DRAFT_STATE,
            ciphertext=second,
            day=DAY2,
        )
    async with sessions() as session:
        stored = await reports.payloads(session, report_id)
    assert stored == [reports.StoredPayload(slot, 0, PayloadKind.DRAFT_STATE, second)]
    context = PayloadContext(PayloadKind.DRAFT_STATE, report_id, slot, 0)
    assert decrypt_payload(dek, context, stored[0].ciphertext).text() == "step 2"
    assert (await _summary(sessions, report_id)).updated_on == DAY2


async def test_payloads_filtered_by_kind(sessions: Sessions) -> None:
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    report_id, dek = await _new_report(sessions, [org])
    other_report, other_dek = await _new_report(sessions, [org])
    written: dict[tuple[bytes, int], PayloadKind] = {}
    async with sessions() as session, session.begin():
        for kind, parts in (
            (PayloadKind.ANSWER, 1),
            (PayloadKind.ANSWER, 1),
            (PayloadKind.DOCUMENT, 3),
            (PayloadKind.NOTE, 1),
        ):
            slot = random_id()
            for part in range(parts):
                written[slot, part] = kind
                await reports.put_payload(
                    session,
                    report_id=report_id,
                    slot_id=slot,
                    part=part,
                    kind=kind,
                    ciphertext=_encrypt(dek, report_id, slot, kind, f"{kind} {part}", part=part),
                    day=DAY1,
                )
        slot = random_id()
        await reports.put_payload(
            session,
            report_id=other_report,
            slot_id=slot,
            part=0,
            kind=PayloadKind.ANSWER,
            ciphertext=_encrypt(other_dek, other_report, slot, PayloadKind.ANSWER, "other"),
            day=DAY1,
        )

    async with sessions() as session:
        everything = await reports.payloads(session, report_id)
        answers = await reports.payloads(session, report_id, PayloadKind.ANSWER)
        documents = await reports.payloads(session, report_id, PayloadKind.DOCUMENT)
        messages = await reports.payloads(session, report_id, PayloadKind.MESSAGE)
    assert {(p.slot_id, p.part): p.kind for p in everything} == written
    assert [(p.slot_id, p.part) for p in everything] == sorted(written)
    assert len(answers) == 2
    assert {p.kind for p in answers} == {PayloadKind.ANSWER}
    assert [p.part for p in documents] == [0, 1, 2]
    assert messages == []
    for p in everything:
        context = PayloadContext(p.kind, report_id, p.slot_id, p.part)
        assert decrypt_payload(dek, context, p.ciphertext).text() == f"{p.kind} {p.part}"


async def test_attachments(sessions: Sessions) -> None:
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    report_id, _ = await _new_report(sessions, [org])
    other_report, _ = await _new_report(sessions, [org])
    files = [random_id() for _ in range(3)]
    async with sessions() as session, session.begin():
        assert await reports.attachments(session, report_id) == []
        for file_id in files:
            await reports.add_attachment(
                session, file_id=file_id, report_id=report_id, blob_size=1234, day=DAY3
            )
        await reports.add_attachment(
            session, file_id=random_id(), report_id=other_report, blob_size=1, day=DAY1
        )
    async with sessions() as session:
        assert await reports.attachments(session, report_id) == sorted(files)
        sizes = set(await session.scalars(select(Attachment.blob_size)))
    assert sizes == {1234, 1}
    assert (await _summary(sessions, report_id)).updated_on == DAY3


async def test_state_urgency_and_labels(sessions: Sessions) -> None:
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    report_id, _ = await _new_report(sessions, [org])
    async with sessions() as session, session.begin():
        await reports.set_state(session, report_id, ReportState.SUBMITTED, DAY2)
        await reports.mark_urgent(session, report_id)
        await reports.set_labels(session, report_id, {"torture", "detention", "baku"})
    summary = await _summary(sessions, report_id)
    assert (summary.state, summary.updated_on) == (ReportState.SUBMITTED, DAY2)
    assert (summary.urgent, summary.priority) == (True, "urgent")
    assert summary.labels == ("baku", "detention", "torture")

    async with sessions() as session, session.begin():
        await reports.set_labels(session, report_id, {"detention", "verified"})
    assert (await _summary(sessions, report_id)).labels == ("detention", "verified")
    async with sessions() as session, session.begin():
        await reports.set_labels(session, report_id, set())
    assert (await _summary(sessions, report_id)).labels == ()
    assert await _count(sessions, ReportLabel) == 0


async def test_summaries_urgent_first_then_newest(sessions: Sessions) -> None:
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    old_normal, _ = await _new_report(sessions, [org], day=DAY1)
    new_normal, _ = await _new_report(sessions, [org], day=DAY3)
    old_urgent, _ = await _new_report(sessions, [org], urgent=True, day=DAY1)
    marked_later, _ = await _new_report(sessions, [org], state=ReportState.INCOMPLETE, day=DAY2)
    async with sessions() as session, session.begin():
        await reports.mark_urgent(session, marked_later)
        await reports.set_labels(session, new_normal, {"threats"})

    async with sessions() as session:
        inbox = await reports.summaries(session)
        incomplete = await reports.summaries(session, state=ReportState.INCOMPLETE)
        submitted = await reports.summaries(session, state=ReportState.SUBMITTED)
    assert [s.id for s in inbox] == [marked_later, old_urgent, new_normal, old_normal]
    assert [(s.urgent, s.priority) for s in inbox] == [
        (True, "urgent"),
        (True, "urgent"),
        (False, "normal"),
        (False, "normal"),
    ]
    assert [s.labels for s in inbox] == [(), (), ("threats",), ()]
    assert [s.id for s in incomplete] == [marked_later]
    assert submitted == []


# --- Constraints --------------------------------------------------------------------------


async def test_exactly_one_org_key_is_current(sessions: Sessions) -> None:
    """Several keys may be live during a rotation; the database holds one current key."""
    signer = SigningPrivateKey.generate()
    first, second = _org(signer), _org(signer)
    await _add_org_key(sessions, first, DAY1, active=True)
    # A retired one does not move the current key.
    await _add_org_key(sessions, _org(signer), DAY2, active=False)
    async with sessions() as session:
        assert await keys.active_org_key(session) == first.signed
    # A new active key becomes current; the first stays live (state active).
    await _add_org_key(sessions, second, DAY2, active=True)
    async with sessions() as session:
        assert await keys.active_org_key(session) == second.signed
        states = {i.key.key_id: i.state.value for i in await keys.list_org_keys(session)}
    assert states[first.key.key_id] == "active"
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            session.add(CurrentOrgKey(id=2, key_id=first.key.key_id))


async def test_an_org_key_in_use_cannot_be_deleted(sessions: Sessions) -> None:
    """The database, not only the code, keeps a key that a data key is sealed to."""
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    await _new_report(sessions, [org])
    drop_key = delete(OrgKey).where(OrgKey.key_id == org.key.key_id)
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await session.execute(drop_key)
    assert await _count(sessions, OrgKey) == 1

    # Once the report is gone (its sealed keys cascade), only being current keeps it...
    async with sessions() as session, session.begin():
        await session.execute(text("DELETE FROM reports"))
    assert await _count(sessions, ReportKey) == 0
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await session.execute(drop_key)
    # ...and when no key is current any more, it can go.
    async with sessions() as session, session.begin():
        await session.execute(text("DELETE FROM current_org_key"))
        await session.execute(drop_key)
    assert await _count(sessions, OrgKey) == 0


@pytest.mark.parametrize("plain", [b"plaintext answer", bytearray(b"plaintext answer")])
async def test_payload_column_refuses_plain_bytes(sessions: Sessions, plain: Any) -> None:
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    report_id, _ = await _new_report(sessions, [org])
    with pytest.raises((StatementError, TypeError)) as raised:
        async with sessions() as session, session.begin():
            await reports.put_payload(
                session,
                report_id=report_id,
                slot_id=random_id(),
                part=0,
                kind=PayloadKind.ANSWER,
                ciphertext=plain,
                day=DAY1,
            )
    error = raised.value
    cause = error.orig if isinstance(error, StatementError) else error
    assert isinstance(cause, TypeError)
    assert "EncryptedPayload" in str(cause)
    assert await _count(sessions, Payload) == 0


async def test_ciphertext_columns_refuse_the_wrong_kind(sessions: Sessions) -> None:
    """A grant (also ciphertext, but another kind) cannot pose as a sealed data key."""
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    wrong_kind = grant_org_key(org.key, StaffPrivateKey.generate().public_key)
    with pytest.raises((StatementError, TypeError)) as raised:
        async with sessions() as session, session.begin():
            await reports.create_report(
                session,
                report_id=random_id(),
                sealed_keys={org.key.key_id: wrong_kind},  # type: ignore[dict-item]
                state=ReportState.DRAFT,
                urgent=False,
                day=DAY1,
            )
    error = raised.value
    cause = error.orig if isinstance(error, StatementError) else error
    assert isinstance(cause, TypeError)
    assert await _count(sessions, ReportKey) == 0


async def test_foreign_keys_are_enforced(sessions: Sessions) -> None:
    """A payload for a report that does not exist is refused (SQLite: PRAGMA foreign_keys)."""
    org = _org()
    report_id, slot, dek = random_id(), random_id(), DataKey.generate()
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await reports.put_payload(
                session,
                report_id=report_id,
                slot_id=slot,
                part=0,
                kind=PayloadKind.ANSWER,
                ciphertext=_encrypt(dek, report_id, slot, PayloadKind.ANSWER, "orphan"),
                day=DAY1,
            )
    # A sealed key for an org key that is not stored is refused as well.
    with pytest.raises(IntegrityError):
        await _new_report(sessions, [org])
    assert await _count(sessions, Payload) == 0


async def test_deleting_a_report_removes_everything_of_it(sessions: Sessions) -> None:
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    doomed, dek = await _new_report(sessions, [org])
    kept, kept_dek = await _new_report(sessions, [org])
    async with sessions() as session, session.begin():
        for report_id, key in ((doomed, dek), (kept, kept_dek)):
            slot = random_id()
            await reports.put_payload(
                session,
                report_id=report_id,
                slot_id=slot,
                part=0,
                kind=PayloadKind.ANSWER,
                ciphertext=_encrypt(key, report_id, slot, PayloadKind.ANSWER, "x"),
                day=DAY1,
            )
            await reports.add_attachment(
                session, file_id=random_id(), report_id=report_id, blob_size=1, day=DAY1
            )
            await reports.set_labels(session, report_id, {"label"})
    async with sessions() as session, session.begin():
        await session.execute(text("DELETE FROM reports WHERE id = :id"), {"id": doomed})
    for model in (Payload, Attachment, ReportLabel, ReportKey):
        assert await _count(sessions, model) == 1, model.__name__
    async with sessions() as session:
        assert [s.id for s in await reports.summaries(session)] == [kept]
        assert await reports.payloads(session, doomed) == []


async def test_report_state_is_checked(sessions: Sessions) -> None:
    org = _org()
    await _add_org_key(sessions, org, DAY1, active=True)
    report_id, _ = await _new_report(sessions, [org])
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await session.execute(
                text("UPDATE reports SET state = 'published' WHERE id = :id"), {"id": report_id}
            )
    assert (await _summary(sessions, report_id)).state is ReportState.DRAFT
