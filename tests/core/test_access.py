"""Registration, approval, roles and groups, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.access import (
    AccessDenied,
    Sender,
    admin_chat_ids,
    assign_group,
    audit,
    decide,
    lookup,
    register,
)
from core.db.models import AuditEvent
from core.enums import Role
from tests.core.conftest import ADMIN_ID, Lab


def test_a_newcomer_is_pending_until_an_admin_decides(lab: Lab) -> None:
    first = register(lab.sessions, Sender(5, "tech", "Tech"), [ADMIN_ID])
    again = register(lab.sessions, Sender(5, "tech", "Tech"), [ADMIN_ID])
    assert first.newly_pending and not again.newly_pending  # admins are asked once
    assert first.member.role is Role.PENDING and not first.member.approved

    approved = decide(lab.sessions, lab.admin, first.member.user_id, Role.REVIEWER)
    assert approved.approved and approved.can_review and not approved.is_admin
    assert approved.group_name == "default"


def test_only_admins_decide_and_configured_admins_need_no_approval(lab: Lab) -> None:
    user = lab.member(6)
    with pytest.raises(AccessDenied):
        decide(lab.sessions, user, user.user_id, Role.ADMIN)
    configured = lookup(lab.sessions, Sender(77, "new_admin", None), [ADMIN_ID, 77])
    assert configured is not None and configured.is_admin
    assert admin_chat_ids(lab.sessions, [ADMIN_ID]) == [ADMIN_ID, 77]


def test_a_stranger_is_unknown_and_a_denied_user_stays_out(lab: Lab) -> None:
    assert lookup(lab.sessions, Sender(404, None, None), [ADMIN_ID]) is None
    denied = lab.member(8, Role.DENIED)
    assert not denied.approved and denied.role is Role.DENIED


def test_refusals_are_kept_in_the_audit_trail(sessions: sessionmaker[Session]) -> None:
    audit(sessions, 9, "retrain", False, "role user")
    with sessions() as session:
        event = session.scalars(select(AuditEvent)).one()
    assert (event.telegram_id, event.action, event.allowed) == (9, "retrain", False)


def test_configured_admins_are_owners_and_the_owner_role_is_never_granted_in_the_chat(
    lab: Lab,
) -> None:
    assert lab.admin.is_owner and lab.admin.role is Role.OWNER
    newcomer = register(lab.sessions, Sender(12, "tech", None), [ADMIN_ID]).member
    with pytest.raises(AccessDenied, match="configured"):
        decide(lab.sessions, lab.admin, newcomer.user_id, Role.OWNER)


def test_an_admin_brings_users_into_their_own_laboratory_only(lab: Lab) -> None:
    admin_a = lab.member(20, Role.ADMIN, group="lab-a")
    tech_b = lab.member(21, group="lab-b")
    newcomer = lab.member(22)  # approved into the default group: nobody's laboratory yet
    # Not into another laboratory, not themselves, not another laboratory's member.
    with pytest.raises(AccessDenied, match="your own laboratory"):
        assign_group(lab.sessions, admin_a, 20, "lab-b")
    with pytest.raises(AccessDenied, match="another laboratory"):
        assign_group(lab.sessions, admin_a, tech_b.telegram_id, "lab-a")
    assert assign_group(lab.sessions, admin_a, newcomer.telegram_id, "lab-a").group_name == "lab-a"
    # An owner moves anyone anywhere.
    assert assign_group(lab.sessions, lab.admin, tech_b.telegram_id, "lab-a").group_name == "lab-a"


def test_an_admin_decides_on_newcomers_and_their_own_laboratorys_users_only(lab: Lab) -> None:
    admin_a = lab.member(30, Role.ADMIN, group="lab-a")
    tech_b = lab.member(31, group="lab-b")
    with pytest.raises(AccessDenied, match="another laboratory"):
        decide(lab.sessions, admin_a, tech_b.user_id, Role.DENIED)
    newcomer = register(lab.sessions, Sender(32, "new", None), [ADMIN_ID]).member
    assert decide(lab.sessions, admin_a, newcomer.user_id, Role.USER).group_name == "lab-a"


def test_the_audit_trail_records_the_laboratory_acted_in(lab: Lab) -> None:
    admin_a = lab.member(40, Role.ADMIN, group="lab-a")
    audit(lab.sessions, admin_a.telegram_id, "promote", True, "a1", admin_a.group_id)
    with lab.sessions() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.telegram_id == 40)).one()
    assert event.group_id == admin_a.group_id is not None
