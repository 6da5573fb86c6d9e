"""Tables. What is stored in the clear is only what triage and key management need.

Reporter data (reports, sealed data keys, payloads, attachments, labels) lives in tables
that SQLite creates ``WITHOUT ROWID``: rows are stored by their random primary key, so
neither the physical order nor a rowid tells in which order reports arrived. Times in the
clear are days (``*_on`` columns); exact times are inside the encryption. Ids are 128-bit
random values from :func:`intake_bot.crypto.random_id`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from intake_bot.crypto import (
    EncryptedPayload,
    SealedDataKey,
    SealedGrant,
    WrappedDraftBox,
    WrappedPrivateKey,
)

from .types import CiphertextColumn, UTCDateTime

ID = LargeBinary(16)
KEY = LargeBinary(32)
WITHOUT_ROWID = {"sqlite_with_rowid": False}


class Base(DeclarativeBase):
    pass


class OrgKeyState(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


class KeyJobKind(StrEnum):
    REWRAP = "rewrap"
    REENCRYPT = "reencrypt"


class StaffState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DISABLED = "disabled"


class Role(StrEnum):
    ADMIN = "admin"
    KEYHOLDER = "keyholder"
    REVIEWER = "reviewer"


class ReportState(StrEnum):
    DRAFT = "draft"
    INCOMPLETE = "incomplete"
    SUBMITTED = "submitted"


def _in(column: str, enum: type[StrEnum]) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


# --- Keys ---------------------------------------------------------------------------------


class SigningKey(Base):
    """The org signing key's public half (also pinned in a file outside the database)."""

    __tablename__ = "signing_keys"

    key_id: Mapped[bytes] = mapped_column(ID, primary_key=True)
    public_key: Mapped[bytes] = mapped_column(KEY)
    created_on: Mapped[dt.date] = mapped_column(Date)


class OrgKey(Base):
    """An org X25519 public key with the signing key's signature.

    ``active`` keys are live (granted, able to open reports); one of them, named by
    :class:`CurrentOrgKey`, encrypts new reports. ``retired`` keys have no grants left and
    no report depends on them.
    """

    __tablename__ = "org_keys"
    __table_args__ = (_in("state", OrgKeyState),)

    key_id: Mapped[bytes] = mapped_column(ID, primary_key=True)
    public_key: Mapped[bytes] = mapped_column(KEY)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    state: Mapped[str] = mapped_column(String(16))
    created_on: Mapped[dt.date] = mapped_column(Date)
    retired_on: Mapped[dt.date | None] = mapped_column(Date)
    retired_by: Mapped[bytes | None] = mapped_column(ID, ForeignKey("staff.id"))


class CurrentOrgKey(Base):
    """The one org key new reports are sealed to (a single row; rotation moves it)."""

    __tablename__ = "current_org_key"
    __table_args__ = (CheckConstraint("id = 1", name="single_current_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key_id: Mapped[bytes] = mapped_column(ID, ForeignKey("org_keys.key_id"))


class KeyJob(Base):
    """A re-wrap (or re-encryption) from one org key to another: progress survives a
    crash, and starting again resumes (the work left is what still depends on the old
    key)."""

    __tablename__ = "key_jobs"
    __table_args__ = (_in("kind", KeyJobKind),)

    id: Mapped[bytes] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    from_key_id: Mapped[bytes] = mapped_column(ID, ForeignKey("org_keys.key_id"))
    to_key_id: Mapped[bytes] = mapped_column(ID, ForeignKey("org_keys.key_id"))
    actor: Mapped[str] = mapped_column(String(64))
    started_on: Mapped[dt.date] = mapped_column(Date)
    finished_on: Mapped[dt.date | None] = mapped_column(Date)
    done: Mapped[int] = mapped_column(BigInteger, default=0)


class OrgKeyGrant(Base):
    """An org private key sealed to one key-holder's public key."""

    __tablename__ = "org_key_grants"

    org_key_id: Mapped[bytes] = mapped_column(ID, ForeignKey("org_keys.key_id"), primary_key=True)
    staff_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    sealed: Mapped[SealedGrant] = mapped_column(CiphertextColumn(SealedGrant))
    granted_by: Mapped[bytes | None] = mapped_column(ID, ForeignKey("staff.id"))
    created_on: Mapped[dt.date] = mapped_column(Date)


class SigningKeyGrant(Base):
    """The signing key's seed sealed to one key-holder's public key."""

    __tablename__ = "signing_key_grants"

    signing_key_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("signing_keys.key_id"), primary_key=True
    )
    staff_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    sealed: Mapped[SealedGrant] = mapped_column(CiphertextColumn(SealedGrant))
    granted_by: Mapped[bytes | None] = mapped_column(ID, ForeignKey("staff.id"))
    created_on: Mapped[dt.date] = mapped_column(Date)


# --- Staff --------------------------------------------------------------------------------


class Staff(Base):
    """A staff account. Password and second factor are set by the member at enrolment."""

    __tablename__ = "staff"
    __table_args__ = (_in("state", StaffState),)

    id: Mapped[bytes] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    """The last TOTP time step accepted: a code is accepted once, and never an older one."""
    language: Mapped[str | None] = mapped_column(String(8))
    """The staff interface language the member chose."""
    created_on: Mapped[dt.date] = mapped_column(Date)


class StaffRole(Base):
    __tablename__ = "staff_roles"
    __table_args__ = (_in("role", Role),)

    staff_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)


class StaffKey(Base):
    """A key-holder's public key and private key wrapped under Argon2id of their password."""

    __tablename__ = "staff_keys"

    staff_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    public_key: Mapped[bytes] = mapped_column(KEY)
    salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    opslimit: Mapped[int] = mapped_column(BigInteger)
    memlimit: Mapped[int] = mapped_column(BigInteger)
    wrapped: Mapped[WrappedPrivateKey] = mapped_column(CiphertextColumn(WrappedPrivateKey))
    created_on: Mapped[dt.date] = mapped_column(Date)


class RecoveryCode(Base):
    """A one-time second-factor recovery code, stored as its SHA-256 (80 random bits)."""

    __tablename__ = "recovery_codes"

    staff_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    code_hash: Mapped[bytes] = mapped_column(KEY, primary_key=True)


class Enrolment(Base):
    """A one-time enrolment link, stored as the SHA-256 of its token; deleted when used."""

    __tablename__ = "enrolments"

    token_hash: Mapped[bytes] = mapped_column(KEY, primary_key=True)
    staff_id: Mapped[bytes] = mapped_column(ID, ForeignKey("staff.id", ondelete="CASCADE"))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


# --- Reports ------------------------------------------------------------------------------


class Report(Base):
    """A report's clear metadata: state, day, the urgent flag and staff triage fields.

    The inbox lists reports urgent first, then newest, then by id (a random value, so the
    order within a day says nothing about arrival). Each filter has an index that ends in
    that order, so a page is read by walking an index from a cursor, never by sorting.
    """

    __tablename__ = "reports"
    __table_args__ = (
        _in("state", ReportState),
        Index("reports_inbox", "urgent", "created_on", "id"),
        Index("reports_by_status", "triage_status", "urgent", "created_on", "id"),
        Index("reports_by_priority", "priority", "urgent", "created_on", "id"),
        Index("reports_by_assignee", "assignee_id", "urgent", "created_on", "id"),
        Index("reports_by_state", "state", "urgent", "created_on", "id"),
        WITHOUT_ROWID,
    )

    id: Mapped[bytes] = mapped_column(ID, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_on: Mapped[dt.date] = mapped_column(Date)
    updated_on: Mapped[dt.date] = mapped_column(Date)
    triage_status: Mapped[str] = mapped_column(String(32), default="new")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    assignee_id: Mapped[bytes | None] = mapped_column(
        ID, ForeignKey("staff.id", ondelete="SET NULL")
    )
    close_reason: Mapped[str | None] = mapped_column(String(32))


class ReportKey(Base):
    """A report's data key sealed to one org key; the org key cannot go while it is used."""

    __tablename__ = "report_keys"
    __table_args__ = (Index("report_keys_by_key", "org_key_id"), WITHOUT_ROWID)

    report_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    org_key_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("org_keys.key_id", ondelete="RESTRICT"), primary_key=True
    )
    sealed: Mapped[SealedDataKey] = mapped_column(CiphertextColumn(SealedDataKey))


class ReportPrimaryKey(Base):
    """Which sealed copy of a report's data key is the one in use.

    The composite foreign key is what makes retiring safe: retiring an org key deletes
    its sealed copies, which the database refuses while any report's copy in use is one
    of them (a report whose key is sealed only to that org key). Checked at the end of the
    statement (NO ACTION), so deleting a whole report still cascades.
    """

    __tablename__ = "report_primary_keys"
    __table_args__ = (
        ForeignKeyConstraint(
            ["report_id", "org_key_id"],
            ["report_keys.report_id", "report_keys.org_key_id"],
            name="primary_key_is_sealed",
        ),
        Index("report_primary_keys_by_key", "org_key_id", "report_id"),
        WITHOUT_ROWID,
    )

    report_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    org_key_id: Mapped[bytes] = mapped_column(ID)


class Payload(Base):
    """One encrypted payload (an answer, the report document, a note, …) in a random slot."""

    __tablename__ = "payloads"
    __table_args__ = (WITHOUT_ROWID,)

    report_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    slot_id: Mapped[bytes] = mapped_column(ID, primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    ciphertext: Mapped[EncryptedPayload] = mapped_column(CiphertextColumn(EncryptedPayload))
    created_on: Mapped[dt.date] = mapped_column(Date)


class Attachment(Base):
    """A file's ciphertext blob, by random id; name, type and digest are in the manifest."""

    __tablename__ = "attachments"
    __table_args__ = (Index("attachments_by_report", "report_id"), WITHOUT_ROWID)

    id: Mapped[bytes] = mapped_column(ID, primary_key=True)
    report_id: Mapped[bytes] = mapped_column(ID, ForeignKey("reports.id", ondelete="CASCADE"))
    blob_size: Mapped[int] = mapped_column(BigInteger)
    created_on: Mapped[dt.date] = mapped_column(Date)


class ReportLabel(Base):
    """A triage label chosen by staff (never derived from content)."""

    __tablename__ = "report_labels"
    __table_args__ = (Index("report_labels_by_label", "label", "report_id"), WITHOUT_ROWID)

    report_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(64), primary_key=True)


class ReportLink(Base):
    """Two related reports, stored in both directions so either page finds the other."""

    __tablename__ = "report_links"
    __table_args__ = (CheckConstraint("report_id <> other_id", name="no_self_link"), WITHOUT_ROWID)

    report_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    other_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )


class Draft(Base):
    """An open draft: the reporter's handle (a MAC of their user id under a key that dies
    with the boot) and the boot-wrapped box with the report key. Deleted at submit, cancel
    or close; after a reboot the box cannot be opened, so nothing links a user to it."""

    __tablename__ = "drafts"
    __table_args__ = (WITHOUT_ROWID,)

    report_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    handle: Mapped[bytes] = mapped_column(KEY, unique=True)
    boot_tag: Mapped[bytes] = mapped_column(ID)
    box: Mapped[WrappedDraftBox] = mapped_column(CiphertextColumn(WrappedDraftBox))


class Receipt(Base):
    """Finds a submitted report from its receipt code: Argon2id of the code, nothing else."""

    __tablename__ = "receipts"
    __table_args__ = (WITHOUT_ROWID,)

    lookup_id: Mapped[bytes] = mapped_column(KEY, primary_key=True)
    report_id: Mapped[bytes] = mapped_column(
        ID, ForeignKey("reports.id", ondelete="CASCADE"), unique=True
    )


# --- Audit --------------------------------------------------------------------------------


class AuditEntry(Base):
    """One staff action in the hash chain. Never updated or deleted by the application."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("audit_log_by_target", "target", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[bytes] = mapped_column(KEY)
    hash: Mapped[bytes] = mapped_column(KEY)


class AuditHead(Base):
    """The chain's single head row; appends lock it, which serialises them."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_head"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(KEY)


class AuditCheckpoint(Base):
    """The chain's head as signed with the org signing key by a key-holder at unlock."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(KEY)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    signed_on: Mapped[dt.date] = mapped_column(Date)
