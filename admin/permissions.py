"""Who may do what: the role table of the staff interface, as data.

Every route names one :class:`Permission` in :mod:`admin.routes`; the access middleware
refuses a route that names none, so a new route cannot be left unprotected. A person may
hold several roles and gets the union of their permissions.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from intake_bot.storage.models import Role


class Permission(StrEnum):
    PUBLIC = "public"
    """No account needed: log in, enrol, static files."""
    SIGNED_IN = "signed_in"
    """Any logged-in member: log out, own password, language."""
    INBOX = "inbox"
    """See inbox labels: status, priority, assignee, labels, day, urgent."""
    TRIAGE = "triage"
    """Change status, priority, assignee, labels and links; bulk-close as spam."""
    CONTENT = "content"
    """Read content, files and notes; write notes; see the number of files."""
    KEYS = "keys"
    """Grant, revoke, rotate, re-wrap and retire keys."""
    ACCOUNTS = "accounts"
    """Add, disable and re-enrol accounts."""
    AUDIT = "audit"
    """Read and verify the audit log."""


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({Permission.INBOX, Permission.ACCOUNTS, Permission.AUDIT}),
    Role.KEYHOLDER: frozenset(
        {Permission.INBOX, Permission.TRIAGE, Permission.CONTENT, Permission.KEYS}
    ),
    Role.REVIEWER: frozenset({Permission.INBOX, Permission.TRIAGE}),
}


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    granted: set[Permission] = {Permission.PUBLIC, Permission.SIGNED_IN}
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)
