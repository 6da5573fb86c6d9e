"""Triage rules: the status workflow, close reasons, priorities and labels.

Pure domain code: it knows nothing of HTTP or SQL. The web adapter asks it whether a change
is allowed and stores what it returns. The workflow::

    new → in review → needs information / verified / escalated → closed (with a reason)

Any open status may be closed (spam is closed straight from ``new``); a closed report may
be reopened into review; the middle statuses move freely between each other and back to
review. Nothing returns to ``new``: once someone has looked, the report has been seen.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    IN_REVIEW = "in_review"
    NEEDS_INFORMATION = "needs_information"
    VERIFIED = "verified"
    ESCALATED = "escalated"
    CLOSED = "closed"


class CloseReason(StrEnum):
    RESOLVED = "resolved"
    DUPLICATE = "duplicate"
    SPAM = "spam"
    OUT_OF_SCOPE = "out_of_scope"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


_WORKING = frozenset({Status.NEEDS_INFORMATION, Status.VERIFIED, Status.ESCALATED})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.IN_REVIEW, Status.CLOSED}),
    Status.IN_REVIEW: _WORKING | {Status.CLOSED},
    Status.NEEDS_INFORMATION: (_WORKING - {Status.NEEDS_INFORMATION})
    | {Status.IN_REVIEW, Status.CLOSED},
    Status.VERIFIED: (_WORKING - {Status.VERIFIED}) | {Status.IN_REVIEW, Status.CLOSED},
    Status.ESCALATED: (_WORKING - {Status.ESCALATED}) | {Status.IN_REVIEW, Status.CLOSED},
    Status.CLOSED: frozenset({Status.IN_REVIEW}),
}

LABEL_MAX = 40
LABELS_MAX = 12
"""Labels per report: enough for triage, small enough to show in one inbox cell."""


class TriageError(ValueError):
    """A change the workflow does not allow; ``code`` names the message for staff."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Triage:
    """A report's triage state as stored in the clear."""

    status: Status
    reason: CloseReason | None = None


def allowed(current: Status) -> frozenset[Status]:
    """Statuses a report in ``current`` may move to."""
    return TRANSITIONS[current]


def move(current: Triage, target: Status, reason: CloseReason | None = None) -> Triage:
    """The triage state after moving to ``target``; :class:`TriageError` if not allowed.

    Closing needs a reason and any other status must not carry one.
    """
    if target not in TRANSITIONS[current.status]:
        raise TriageError("status_not_allowed")
    if target is Status.CLOSED and reason is None:
        raise TriageError("close_reason_needed")
    if target is not Status.CLOSED and reason is not None:
        raise TriageError("reason_only_when_closing")
    return Triage(target, reason)


def close_as_spam(current: Triage) -> Triage | None:
    """For bulk closing: the closed state, or None when the report is already closed."""
    if current.status is Status.CLOSED:
        return None
    return move(current, Status.CLOSED, CloseReason.SPAM)


def clean_label(text: str) -> str:
    """A label as staff typed it, normalised: NFC, trimmed, inner white space collapsed;
    letters (with their marks), digits, spaces, ``-`` and ``_`` only; 1 to
    :data:`LABEL_MAX` characters. Case is kept: lower-casing Azerbaijani ``İ`` yields
    ``i`` plus a combining dot, not ``i``."""
    label = " ".join(unicodedata.normalize("NFC", text).split())
    if not label or len(label) > LABEL_MAX:
        raise TriageError("label_length")
    if not all(
        ch.isalnum() or ch in " -_" or unicodedata.category(ch).startswith("M") for ch in label
    ):
        raise TriageError("label_characters")
    return label


def parse_labels(text: str) -> frozenset[str]:
    """Labels from one comma-separated field; empty pieces are ignored."""
    labels = frozenset(clean_label(piece) for piece in text.split(",") if piece.strip())
    if len(labels) > LABELS_MAX:
        raise TriageError("too_many_labels")
    return labels
