"""Privilege tiers as a rule on grants (``bastion.plane.tiers``), scopes included.

The end-to-end matrix (tests/e2e/test_privilege_tiers.py) runs it through the commands with
the built-in roles; here are the cases built-in roles cannot reach, such as a role group
change by someone who is not a Global Administrator, and scoped grants of every kind.
"""

from __future__ import annotations

import pytest

from bastion.directory.role_groups import Grant, ScopeFilter
from bastion.plane.command_errors import Forbidden
from bastion.plane.tiers import require_grantable, require_outranks, uncovered

SALES = ScopeFilter(department="Sales")
MARKETING = ScopeFilter(department="Marketing")
TEAM = ScopeFilter(group_id="g-1")


def g(role: str, scope: ScopeFilter | None = None) -> Grant:
    return Grant(role=role, role_group=f"{role} {scope}", scope=scope)


GA, HELPDESK, AUDIT = "Global Administrator", "Helpdesk", "Audit Reader"

CASES = [
    # (caller's grants, target's grants, missing roles)
    ([g(HELPDESK)], [], []),
    ([g(HELPDESK)], [g(HELPDESK)], []),
    ([g(HELPDESK)], [g(GA)], [GA]),
    ([g(HELPDESK)], [g(HELPDESK), g(AUDIT)], [AUDIT]),
    ([g(HELPDESK), g(AUDIT)], [g(HELPDESK), g(AUDIT)], []),
    ([g(GA)], [g(GA), g(HELPDESK), g(AUDIT, SALES)], []),
    # an unscoped grant covers the same role in any scope
    ([g(HELPDESK)], [g(HELPDESK, SALES)], []),
    # a scoped grant covers the same role in the same scope, nothing wider or elsewhere
    ([g(HELPDESK, SALES)], [g(HELPDESK, SALES)], []),
    ([g(HELPDESK, SALES)], [g(HELPDESK)], [HELPDESK]),
    ([g(HELPDESK, SALES)], [g(HELPDESK, MARKETING)], [HELPDESK]),
    ([g(HELPDESK, SALES)], [g(HELPDESK, TEAM)], [HELPDESK]),
    ([g(HELPDESK, SALES), g(HELPDESK, MARKETING)], [g(HELPDESK, MARKETING)], []),
    # a Global Administrator limited to a scope covers every role in that scope only
    ([g(GA, SALES)], [g(HELPDESK, SALES), g(AUDIT, SALES)], []),
    ([g(GA, SALES)], [g(HELPDESK)], [HELPDESK]),
    ([g(GA, SALES)], [g(GA)], [GA]),
    # no other role stands for another, whatever its commands
    ([g("Read-Only Reporting")], [g(AUDIT)], [AUDIT]),
    ([g("Mail Recipients Administrator")], [g(HELPDESK), g(HELPDESK, SALES)], [HELPDESK]),
]


@pytest.mark.parametrize(("held", "target", "missing"), CASES)
def test_who_may_change_whose_account(
    held: list[Grant], target: list[Grant], missing: list[str]
) -> None:
    assert uncovered(held, target) == missing
    if missing:
        with pytest.raises(Forbidden) as refused:
            require_outranks(held, target, "x@t")
        assert refused.value.extra["reason"] == "privilege_tier"
        assert all(role in refused.value.detail for role in missing)
    else:
        require_outranks(held, target, "x@t")


@pytest.mark.parametrize(("held", "granted", "missing"), CASES)
def test_a_role_group_change_grants_only_roles_its_author_holds(
    held: list[Grant], granted: list[Grant], missing: list[str]
) -> None:
    if missing:
        with pytest.raises(Forbidden) as refused:
            require_grantable(held, granted, "role group R")
        assert refused.value.extra["reason"] == "privilege_tier"
    else:
        require_grantable(held, granted, "role group R")
