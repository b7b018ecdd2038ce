"""Who may do what: registration, approval by admins, roles, laboratory groups, the audit trail."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import AuditEvent, Group, User
from core.db.session import SessionFactory, transaction
from core.enums import ADMIN_ROLES, APPROVED_ROLES, Role

DEFAULT_GROUP = "default"


class AccessDenied(Exception):
    """The member may not do this, or the thing named is not theirs to see."""


@dataclass(frozen=True)
class Sender:
    telegram_id: int
    username: str | None
    full_name: str | None


@dataclass(frozen=True)
class Member:
    user_id: int
    telegram_id: int
    name: str
    role: Role
    group_id: int | None
    group_name: str | None
    current_case_id: int | None

    @property
    def approved(self) -> bool:
        return self.role in APPROVED_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def is_owner(self) -> bool:
        return self.role is Role.OWNER

    @property
    def can_review(self) -> bool:
        return self.role in (Role.REVIEWER, *ADMIN_ROLES)

    def administers(self, group_id: int | None) -> bool:
        """Whether this member may act on ``group_id``'s models and members: an owner on
        every laboratory and on what serves them all (``None``), an admin on their own only."""
        return self.is_owner or (self.is_admin and group_id is not None
                                 and group_id == self.group_id)


def member_of(user: User) -> Member:
    name = f"@{user.username}" if user.username else (user.full_name or str(user.telegram_id))
    return Member(user.id, user.telegram_id, name, user.role, user.group_id,
                  user.group.name if user.group else None, user.current_case_id)


def group_named(session: Session, name: str) -> Group:
    """The laboratory group of this name, created on first use."""
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        group = Group(name=name)
        session.add(group)
        session.flush()
    return group


def default_group(session: Session) -> Group:
    return group_named(session, DEFAULT_GROUP)


def ensure_user(session: Session, sender: Sender, admin_ids: Iterable[int] = ()) -> User:
    """The user row for a sender, created as pending; configured admins are laboratory-wide
    owners at once."""
    user = session.scalar(select(User).where(User.telegram_id == sender.telegram_id))
    if user is None:
        user = User(telegram_id=sender.telegram_id, role=Role.PENDING)
        session.add(user)
    user.username = sender.username
    user.full_name = sender.full_name
    if sender.telegram_id in set(admin_ids) and user.role is not Role.OWNER:
        user.role = Role.OWNER
    if user.role in ADMIN_ROLES and user.group_id is None:
        user.group_id = default_group(session).id
    session.flush()
    return user


@dataclass(frozen=True)
class Registration:
    member: Member
    newly_pending: bool  # the admins have not been asked about this user yet


def register(factory: SessionFactory, sender: Sender, admin_ids: Iterable[int]) -> Registration:
    with transaction(factory) as session:
        existed = session.scalar(select(User.id).where(User.telegram_id == sender.telegram_id))
        user = ensure_user(session, sender, admin_ids)
        return Registration(member_of(user), existed is None and user.role is Role.PENDING)


def lookup(factory: SessionFactory, sender: Sender, admin_ids: Iterable[int]) -> Member | None:
    """The member behind an update, or None for someone who never sent /start."""
    admin_ids = set(admin_ids)
    with factory() as session:
        user = session.scalar(select(User).where(User.telegram_id == sender.telegram_id))
        if user is not None and (user.role is Role.OWNER or sender.telegram_id not in admin_ids):
            return member_of(user)
    if sender.telegram_id in admin_ids:
        return register(factory, sender, admin_ids).member
    return None


def decide(factory: SessionFactory, admin: Member, target_user_id: int, role: Role) -> Member:
    """An admin approves a pending user with a role, or denies them: a user of another
    laboratory only an owner; the owner role nobody (it comes from the settings)."""
    if not admin.is_admin:
        raise AccessDenied("only admins decide on access")
    if role is Role.OWNER:
        raise AccessDenied("owners are configured (HV_ADMIN_IDS), not granted in the chat")
    with transaction(factory) as session:
        user = session.get(User, target_user_id)
        if user is None:
            raise AccessDenied("no such user")
        if not _may_move(session, admin, user):
            raise AccessDenied("that user belongs to another laboratory")
        user.role = role
        user.decided_by = admin.telegram_id
        if role in APPROVED_ROLES and user.group_id is None:
            user.group_id = admin.group_id or default_group(session).id
        session.flush()
        return member_of(user)


def assign_group(factory: SessionFactory, admin: Member, target_telegram_id: int,
                 group_name: str) -> Member:
    """Move a user to a laboratory group (created on first use). An admin who is not an owner
    brings users into their own laboratory only, from it or from no laboratory yet."""
    if not admin.is_admin:
        raise AccessDenied("only admins assign groups")
    name = group_name.strip().lower()
    if not name or len(name) > 64:
        raise ValueError("a group name is 1 to 64 characters")
    if not admin.is_owner and name != admin.group_name:
        raise AccessDenied(f"you add users to your own laboratory ({admin.group_name}) only; "
                           "a laboratory-wide owner can move anyone")
    with transaction(factory) as session:
        user = session.scalar(select(User).where(User.telegram_id == target_telegram_id))
        if user is None:
            raise AccessDenied("no such user")
        if not _may_move(session, admin, user):
            raise AccessDenied("that user belongs to another laboratory")
        user.group_id = group_named(session, name).id
        user.current_case_id = None  # a case of the old group is no longer theirs
        session.flush()
        return member_of(user)


def _may_move(session: Session, admin: Member, user: User) -> bool:
    """A user still without a laboratory (none, or the default one) is anyone's to take."""
    return user.group_id is None or admin.administers(user.group_id) \
        or user.group_id == default_group(session).id


def admin_chat_ids(factory: SessionFactory, admin_ids: Iterable[int]) -> list[int]:
    with factory() as session:
        stored = session.scalars(select(User.telegram_id)
                                 .where(User.role.in_(ADMIN_ROLES))).all()
    return sorted(set(admin_ids) | set(stored))


def audit(factory: SessionFactory, telegram_id: int, action: str, allowed: bool,
          detail: str | None = None, group_id: int | None = None) -> None:
    """Record an action; ``group_id``: the laboratory it acted in (the actor's, unless the
    action names another)."""
    with transaction(factory) as session:
        session.add(AuditEvent(telegram_id=telegram_id, action=action[:64], allowed=allowed,
                               detail=detail, group_id=group_id))
