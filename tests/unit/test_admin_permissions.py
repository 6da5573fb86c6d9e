"""The role table of the staff interface (admin/permissions.py), written out here in full so
that widening a role fails a test: reviewers never read content, admins read content only
when they are also key-holders (ARCHITECTURE.md, "Who uses it")."""

from __future__ import annotations

from itertools import combinations

import pytest

from admin.permissions import ROLE_PERMISSIONS, Permission, permissions_of
from admin.routes import PERMISSIONS, ROUTES
from intake_bot.storage.models import Role

P = Permission
ALWAYS = {P.PUBLIC, P.SIGNED_IN}
EXPECTED: dict[Role, set[Permission]] = {
    Role.ADMIN: {P.INBOX, P.ACCOUNTS, P.AUDIT},
    Role.KEYHOLDER: {P.INBOX, P.TRIAGE, P.CONTENT, P.KEYS},
    Role.REVIEWER: {P.INBOX, P.TRIAGE},
}


def test_the_role_table_is_exactly_this() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    for role, expected in EXPECTED.items():
        assert set(ROLE_PERMISSIONS[role]) == expected, role


def test_the_roles_that_must_never_read_content() -> None:
    assert P.CONTENT not in permissions_of([Role.REVIEWER])
    assert P.CONTENT not in permissions_of([Role.ADMIN])
    assert P.CONTENT not in permissions_of([Role.ADMIN, Role.REVIEWER])
    assert P.KEYS not in permissions_of([Role.ADMIN, Role.REVIEWER])
    assert P.ACCOUNTS not in permissions_of([Role.KEYHOLDER, Role.REVIEWER])
    assert P.AUDIT not in permissions_of([Role.KEYHOLDER, Role.REVIEWER])


@pytest.mark.parametrize(
    "roles",
    [frozenset(c) for n in range(len(Role) + 1) for c in combinations(Role, n)],
    ids=lambda roles: "+".join(sorted(r.value for r in roles)) or "none",
)
def test_several_roles_give_the_union_and_everyone_the_basics(roles: frozenset[Role]) -> None:
    expected = set(ALWAYS)
    for role in roles:
        expected |= EXPECTED[role]
    assert permissions_of(roles) == expected
    assert permissions_of(list(roles)) == expected, "any iterable of roles"


def test_every_permission_guards_some_route_and_every_route_has_one() -> None:
    used = {route.permission for route in ROUTES}
    assert used == set(Permission)
    assert set(PERMISSIONS) == {route.name for route in ROUTES}
    assert len(PERMISSIONS) == len(ROUTES), "route names are unique"
    for route in ROUTES:
        assert isinstance(route.permission, Permission), route.name


def test_only_the_sign_in_and_enrolment_routes_are_public() -> None:
    public = {route.name for route in ROUTES if route.permission is P.PUBLIC}
    assert public == {
        "static",
        "login-form",
        "login",
        "second-factor-form",
        "second-factor",
        "language",
        "enrol-form",
        "enrol",
    }
    signed_in = {route.name for route in ROUTES if route.permission is P.SIGNED_IN}
    assert signed_in == {"logout", "password-form", "password"}
