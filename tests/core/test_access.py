"""Registration, approval, roles and groups, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.access import AccessDenied, Sender, admin_chat_ids, audit, decide, lookup, register
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
