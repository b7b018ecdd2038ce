"""A laboratory's standing with the bot: how often its experts kept the bot's answers, and how
far it may trust the version serving it (``core.trust``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select

from core.agreement import Agreement, AgreementReport, agreement
from core.db.models import AuditEvent, Group, ModelVersion, User
from core.db.session import SessionFactory, transaction
from core.enums import Role
from core.registry import active_model
from core.reviews import reviewed_answers
from core.trust import NEW_LABORATORY, ScoredAnswer, Trust, measure
from vision.labels import display_name


def answers_in_card(card: dict[str, object]) -> list[ScoredAnswer]:
    """The answers a laboratory's adapted version gave the group's held-out reviewed cells when
    it was made (``core.retraining.laboratory``): measured before it served a single photo."""
    metrics = card.get("metrics")
    expert = metrics.get("expert_cells") if isinstance(metrics, dict) else None
    rows = expert.get("answers") if isinstance(expert, dict) else None
    if not isinstance(rows, list):
        return []
    return [ScoredAnswer(float(row[0]), bool(row[1]), bool(row[2])) for row in rows]


def serving_trust(factory: SessionFactory, group_id: int | None, version_id: int) -> Trust:
    """How far this laboratory trusts the version serving it: measured on that version's answers
    its experts reviewed, and on the held-out cells it was judged on when adapted."""
    if group_id is None:
        return NEW_LABORATORY
    with factory() as session:
        version = session.get(ModelVersion, version_id)
        if version is None:
            return NEW_LABORATORY
        card = dict(version.card)
    answers = [ScoredAnswer(a.confidence, a.kept, a.flagged)
               for a in reviewed_answers(factory, group_id, version_id)]
    return measure([*answers_in_card(card), *answers])


@dataclass(frozen=True)
class Standing:
    group: str
    version: str | None  # the version serving it
    agreement: AgreementReport
    trust: Trust


def breakdown(found: Standing, weeks: int = 8) -> list[str]:
    """The agreement per week of review (the last ``weeks``), per model version and per class,
    as the chat and the command line show it."""
    report = found.agreement
    lines = []
    if report.weeks:
        lines.append("Per week of review:")
        lines += [f"   {week:%d %b %Y}: {value.text()}" for week, value in report.weeks[-weeks:]]
    if report.versions:
        lines.append("Per model version:")
        lines += [f"   {version}: {value.text()}" for version, value in report.versions.items()]
    if report.classes:
        lines.append("Per class (the experts' label):")
        lines += [f"   {display_name(label)}: {value.text()}" for label, value in report.classes]
    return lines


def group_id_named(factory: SessionFactory, name: str) -> int | None:
    with factory() as session:
        return session.scalar(select(Group.id).where(Group.name == name))


def standing(factory: SessionFactory, group_id: int) -> Standing:
    with factory() as session:
        group = session.get(Group, group_id)
        name = group.name if group else str(group_id)
    serving = active_model(factory, group_id)
    return Standing(name, serving.version if serving else None,
                    AgreementReport.of(reviewed_answers(factory, group_id)),
                    serving_trust(factory, group_id, serving.id) if serving else NEW_LABORATORY)


PROPOSED = "adaptation proposed"


def _aware(moment: datetime) -> datetime:
    # SQLite hands back the naive UTC it stored; PostgreSQL an aware one.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Proposal:
    group: str
    new_cells: int
    agreement: Agreement  # the bot's first answers on those cells, as its experts judged them
    admin_chat_ids: list[int]  # the group's admins and the owners


def propose_adaptation(factory: SessionFactory, group_id: int | None,
                       after: int) -> Proposal | None:
    """The proposal to adapt, once: when the group has ``after`` new expert cells since its last
    own version (or since it began) and has not been told since; it is recorded as told.

    The default (``Settings.propose_adaptation_after``, 50) is about ten a class of the five to
    eight classes a laboratory usually reviews, where the few-shot curves rise steepest."""
    if group_id is None:
        return None
    with transaction(factory) as session:
        # Locked so that two reviewers finishing together propose it once.
        group = session.get(Group, group_id, with_for_update=True)
        if group is None:
            return None
        since = session.scalar(select(func.max(ModelVersion.created_at))
                               .where(ModelVersion.group_id == group_id))
        told = select(AuditEvent.id).where(AuditEvent.action == PROPOSED,
                                           AuditEvent.group_id == group_id)
        if since is not None:
            told = told.where(AuditEvent.created_at > since)
        if session.scalar(told.limit(1)) is not None:
            return None
        new = [a for a in reviewed_answers(factory, group_id)
               if since is None or _aware(a.reviewed_at) > _aware(since)]
        if len(new) < after:
            return None
        admins = session.scalars(select(User.telegram_id).where(or_(
            User.role == Role.OWNER, (User.role == Role.ADMIN) & (User.group_id == group_id))))
        session.add(AuditEvent(telegram_id=0, action=PROPOSED, allowed=True,
                               detail=f"{len(new)} new expert cells", group_id=group_id))
        return Proposal(group.name, len(new), agreement(new), sorted(set(admins)))
