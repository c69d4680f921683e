"""The operator console's rules: find a customer, see everything about it, refund a run,
adjust credits (four-eyes above a threshold), recover runs, control models, view as.

Invariants
----------
* Every function asks the policy module first (operator_* actions; `view_as_*` too), so an
  operator viewing an organization as its members see it is refused every change there.
* Money moves only through `services/credits.py`, inside the caller's transaction:
    - a run refund carries the idempotency key ``operator-refund:<generation id>``, taken
      under a lock on the run's row, so a double click or two operators at once refund once;
    - an adjustment carries ``operator-adjust:<approval id>`` (one row per request, the
      request itself is unique by the form's ``request_key``), so two approvals move once.
* An adjustment larger than ``OPERATOR_APPROVAL_THRESHOLD_CREDITS`` waits for a second
  operator; the requester cannot approve (or reject) their own.
* Every action writes an audit entry in the customer's chain with the operator's name, so the
  customer sees it in their audit log. These functions flush; the caller commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc, utcnow
from core.settings import get_settings
from models import (
    AdjustmentApproval,
    AIModel,
    AuditLogEntry,
    CreditLedgerEntry,
    Generation,
    Membership,
    OAuthConnection,
    Organization,
    Plan,
    Subscription,
    SupportTicket,
    User,
    ViewAsGrant,
)
from models.enums import GenerationStatus, LedgerEntryKind, ModelStatus
from services import credits, models_registry, policy, run_engine
from services import generations as generation_service
from services.audit import audit_record
from services.error_codes import Code
from services.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    error_with_code,
)

Action = policy.Action

VIEW_AS_MINUTES = 30
MAX_REASON_CHARS = 500
MAX_SEARCH_CHARS = 320
SEARCH_LIMIT = 25
APPROVED, PENDING, REJECTED = "approved", "pending", "rejected"


# --- checks -------------------------------------------------------------------------------------


def _require(session: Session, actor: User, action: Action, org_id: int | None = None) -> None:
    target = (
        policy.Target() if org_id is None else policy.target_for(session=session, org_id=org_id)
    )
    policy.require(policy.actor_for(session=session, user=actor, org_id=org_id), action, target)


def _reason(reason: str) -> str:
    text = " ".join(str(reason or "").split())
    if len(text) < 3:
        raise error_with_code(
            Code.reason_required,
            "Give a reason (at least a few words): it goes into the customer's audit log.",
            base=ValidationFailed,
            field="reason",
        )
    if len(text) > MAX_REASON_CHARS:
        raise ValidationFailed(
            f"The reason is {len(text)} characters; keep it under {MAX_REASON_CHARS}.",
            field="reason",
        )
    return text


def _operator_label(user: User) -> str:
    return f"{user.name} <{user.email}>" if user.name else user.email


def _org(session: Session, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    if org is None or org.deleted_at is not None:
        raise NotFound("This customer does not exist or was deleted. Search again.")
    return org


# --- search and overview ---------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerHit:
    org_id: int
    slug: str
    name: str
    plan: str
    matched: str  # what matched: "slug", "member alice@…", "Stripe cus_…"


def customers_search(*, session: Session, actor: User, query: str) -> list[CustomerHit]:
    """Organizations whose slug or name contains `query`, that have a member whose email
    contains it, or whose Stripe customer id is it (operators only)."""
    _require(session, actor, Action.operator_access)
    needle = " ".join(str(query or "").split())[:MAX_SEARCH_CHARS].lower()
    if not needle:
        return []
    pattern = "%" + needle.replace("%", "").replace("_", r"\_") + "%"
    hits: dict[int, CustomerHit] = {}

    def add(org: Organization, matched: str) -> None:
        if org.deleted_at is None and org.id not in hits and len(hits) < SEARCH_LIMIT:
            hits[org.id] = CustomerHit(org.id, org.slug, org.name, org.plan_key, matched)

    for org in session.exec(
        select(Organization).where(col(Organization.stripe_customer_id) == query.strip()).limit(5)
    ):
        add(org, f"Stripe {org.stripe_customer_id}")
    for org, email in session.exec(
        select(Organization, User.email)
        .join(Membership, col(Membership.org_id) == col(Organization.id))
        .join(User, col(User.id) == col(Membership.user_id))
        .where(func.lower(User.email).like(pattern, escape="\\"))
        .order_by(col(User.email))
        .limit(SEARCH_LIMIT)
    ):
        add(org, f"member {email}")
    for org in session.exec(
        select(Organization)
        .where(
            or_(
                func.lower(Organization.slug).like(pattern, escape="\\"),
                func.lower(Organization.name).like(pattern, escape="\\"),
            )
        )
        .order_by(col(Organization.slug))
        .limit(SEARCH_LIMIT)
    ):
        add(org, "slug or name")
    return list(hits.values())


@dataclass(frozen=True)
class RunSummary:
    public_id: str
    status: str
    model_key: str
    created_at: datetime
    timeline: str  # "queued 10:00:01 → running 10:00:02 → failed 10:15:02"
    failure: str
    charged_millicredits: int
    estimate_millicredits: int
    refunded: bool
    retried: bool


@dataclass(frozen=True)
class CustomerOverview:
    org_id: int
    slug: str
    name: str
    plan_key: str
    plan_name: str
    subscription: str  # "active, renews 2026-12-01" / "none (free)"
    stripe_customer_id: str
    balance_millicredits: int
    pooled_millicredits: int
    pools: list[tuple[int, int]]  # (project id, millicredits)
    ledger: list[CreditLedgerEntry]
    members: list[tuple[str, str, str]]  # (name, email, role)
    runs: list[RunSummary]
    tickets: list[SupportTicket]
    connections: list[tuple[str, str, str]]  # (provider, account, status)
    audit: list[tuple[AuditLogEntry, str]]  # (entry, actor label)
    pending_adjustments: list[AdjustmentApproval]
    view_as_until: datetime | None


def _timeline(generation: Generation) -> str:
    steps = []
    for step in generation.status_history or []:
        at = str(step.get("at", ""))[11:19]
        steps.append(f"{step.get('status', '?')} {at}".strip())
    return " → ".join(steps) or generation.status


def refund_key(generation_id: int) -> str:
    return f"operator-refund:{generation_id}"


def customer_overview(
    *, session: Session, actor: User, slug: str, limit: int = 20
) -> CustomerOverview:
    """Everything an operator needs on one customer, newest first (operators only)."""
    _require(session, actor, Action.operator_access)
    org = session.exec(
        select(Organization).where(Organization.slug == str(slug or "").strip().lower()[:64])
    ).first()
    if org is None or org.deleted_at is not None:
        raise NotFound(f"No customer at {slug!r}. Search by slug, member email or Stripe id.")
    plan = session.exec(select(Plan).where(Plan.key == org.plan_key)).first()
    sub = session.exec(select(Subscription).where(Subscription.org_id == org.id)).first()
    if sub is None:
        subscription = "none (free plan)"
    else:
        end = as_utc(sub.current_period_end)
        subscription = sub.status + (f", period ends {end:%Y-%m-%d}" if end else "")
        if sub.cancel_at_period_end:
            subscription += ", cancels at period end"
    balance = credits.balance_get(session=session, org_id=org.id)
    pools = [
        (pool.project_id, pool.balance_millicredits)
        for pool in credits.pools_list(session=session, org_id=org.id)
    ]
    ledger = list(
        session.exec(
            select(CreditLedgerEntry)
            .where(CreditLedgerEntry.org_id == org.id)
            .order_by(col(CreditLedgerEntry.id).desc())
            .limit(limit)
        )
    )
    members = [
        (user.name, user.email, membership.role)
        for membership, user in session.exec(
            select(Membership, User)
            .join(User, col(User.id) == col(Membership.user_id))
            .where(Membership.org_id == org.id)
            .order_by(col(Membership.id))
            .limit(200)
        )
    ]
    generations = list(
        session.exec(
            select(Generation)
            .where(Generation.org_id == org.id)
            .order_by(col(Generation.id).desc())
            .limit(limit)
        )
    )
    ids = [g.id for g in generations]
    refunded = set()
    retried = set()
    if ids:
        keys = [refund_key(i) for i in ids]
        refunded = {
            int(key.rsplit(":", 1)[1])
            for key in session.exec(
                select(CreditLedgerEntry.idempotency_key).where(
                    col(CreditLedgerEntry.idempotency_key).in_(keys)
                )
            )
        }
        retried = set(
            session.exec(select(Generation.retry_of_id).where(col(Generation.retry_of_id).in_(ids)))
        )
    runs = [
        RunSummary(
            public_id=g.public_id,
            status=g.status,
            model_key=g.model_key,
            created_at=as_utc(g.created_at),
            timeline=_timeline(g),
            failure=(f"{g.failure_code}: {g.failure_reason or ''}" if g.failure_code else "")[:300],
            charged_millicredits=g.charged_millicredits,
            estimate_millicredits=g.estimate_millicredits,
            refunded=g.id in refunded,
            retried=g.id in retried,
        )
        for g in generations
    ]
    tickets = list(
        session.exec(
            select(SupportTicket)
            .where(SupportTicket.org_id == org.id)
            .order_by(col(SupportTicket.id).desc())
            .limit(limit)
        )
    )
    connections = [
        (c.provider_key, c.account_label or c.account_id, c.status)
        for c in session.exec(
            select(OAuthConnection).where(OAuthConnection.org_id == org.id).limit(50)
        )
    ]
    audit = [
        (entry, (name or email) if entry.actor_user_id else "system")
        for entry, email, name in session.exec(
            select(AuditLogEntry, User.email, User.name)
            .join(User, col(User.id) == col(AuditLogEntry.actor_user_id), isouter=True)
            .where(AuditLogEntry.org_id == org.id)
            .order_by(col(AuditLogEntry.id).desc())
            .limit(limit)
        )
    ]
    pending = list(
        session.exec(
            select(AdjustmentApproval)
            .where(AdjustmentApproval.org_id == org.id, AdjustmentApproval.status == PENDING)
            .order_by(col(AdjustmentApproval.id))
        )
    )
    grant = policy.view_as_active(session=session, user_id=actor.id, org_id=org.id)
    return CustomerOverview(
        org_id=org.id,
        slug=org.slug,
        name=org.name,
        plan_key=org.plan_key,
        plan_name=plan.name if plan else org.plan_key,
        subscription=subscription,
        stripe_customer_id=org.stripe_customer_id or "",
        balance_millicredits=balance.balance,
        pooled_millicredits=balance.pooled,
        pools=pools,
        ledger=ledger,
        members=members,
        runs=runs,
        tickets=tickets,
        connections=connections,
        audit=audit,
        pending_adjustments=pending,
        view_as_until=as_utc(grant.expires_at) if grant else None,
    )


# --- refunds and adjustments ------------------------------------------------------------------


def _locked_generation(session: Session, org_id: int, public_id: str) -> Generation:
    generation = session.exec(
        select(Generation)
        .where(Generation.public_id == str(public_id or "")[:40], Generation.org_id == org_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if generation is None:
        raise NotFound("This run does not exist in this organization. Reload the page.")
    return generation


def refundable_millicredits(generation: Generation) -> int:
    """What a refund of this run gives back: what it was charged, or for a failed run (whose
    hold was already returned) its price, as a goodwill credit for the failure."""
    if generation.charged_millicredits > 0:
        return generation.charged_millicredits
    if generation.status == GenerationStatus.failed.value:
        return generation.estimate_millicredits
    return 0


def run_refund(
    *,
    session: Session,
    actor: User,
    org_id: int,
    public_id: str,
    reason: str,
    amount_millicredits: int | None = None,
) -> CreditLedgerEntry:
    """Refund one run once, whoever presses it and however often (operators only).

    `amount_millicredits` refunds part of it (more than 0, at most `refundable_millicredits`);
    None refunds all of it. Either way the run can be refunded once: a partial refund is the
    refund of that run.

    Raises:
        ValidationFailed (reason_required): no reason.
        ValidationFailed (refund_amount_invalid): zero, negative or more than was charged.
        Conflict (already_refunded): it was refunded before (the message says by whom, when).
        Conflict (nothing_to_refund): a queued/running run, or one that cost nothing.
    """
    _require(session, actor, Action.operator_refund, org_id)
    reason = _reason(reason)
    generation = _locked_generation(session, org_id, public_id)  # serializes refunds of a run
    key = refund_key(generation.id)
    existing = session.exec(
        select(CreditLedgerEntry).where(CreditLedgerEntry.idempotency_key == key)
    ).first()
    if existing is not None:
        by = session.get(User, existing.actor_user_id) if existing.actor_user_id else None
        raise error_with_code(
            Code.already_refunded,
            f"{generation.public_id} was already refunded "
            f"({credits.format_credits(existing.amount_millicredits)} credits"
            f"{' by ' + _operator_label(by) if by else ''}, "
            f"{as_utc(existing.created_at):%Y-%m-%d %H:%M} UTC). Nothing more was refunded.",
            base=Conflict,
        )
    refundable = refundable_millicredits(generation)
    if refundable <= 0:
        raise error_with_code(
            Code.nothing_to_refund,
            f"{generation.public_id} is {generation.status} and was charged nothing, so there is "
            "nothing to refund. Stop a running run instead, or make an adjustment.",
            base=Conflict,
        )
    amount = refundable if amount_millicredits is None else amount_millicredits
    most = credits.format_credits(refundable)
    problem = ""
    if isinstance(amount, bool) or not isinstance(amount, int):
        problem = "The refund must be a number of credits."
    elif amount <= 0:
        problem = "A refund must be more than 0 credits."
    elif amount > refundable:
        problem = f"{credits.format_credits(amount)} credits is more than that."
    if problem:
        raise error_with_code(
            Code.refund_amount_invalid,
            f"{problem} {generation.public_id} can be refunded at most {most} credits (what it "
            "was charged, or its price as it failed). Enter up to that, or leave the amount "
            "empty to refund all of it.",
            base=ValidationFailed,
            field="amount",
        )
    entry = credits.credits_grant(
        session=session,
        org_id=org_id,
        amount_millicredits=amount,
        idempotency_key=key,
        actor_user_id=actor.id,
        kind=LedgerEntryKind.refund,
        reference=f"generation:{generation.public_id}",
        memo=(
            f"{'Partial refund' if amount < refundable else 'Refund'} of run "
            f"{generation.public_id} by {actor.name or actor.email}: {reason}"
        )[:500],
    )
    audit_record(
        session=session,
        action="credits.refunded",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="generation",
        target_id=generation.public_id,
        details={
            "operator": _operator_label(actor),
            "millicredits": amount,
            "refundable_millicredits": refundable,
            "partial": amount < refundable,
            "reason": reason,
            "ledger_entry_id": entry.id,
        },
    )
    return entry


@dataclass(frozen=True)
class AdjustmentOutcome:
    applied: bool  # False: waiting for a second operator
    approval: AdjustmentApproval | None
    entry: CreditLedgerEntry | None


def approval_threshold_millicredits() -> int:
    return get_settings().operator_approval_threshold_credits * credits.MILLICREDITS_PER_CREDIT


def adjust_key(approval_id: int) -> str:
    return f"operator-adjust:{approval_id}"


def _apply_adjustment(
    session: Session, approval: AdjustmentApproval, actor: User
) -> CreditLedgerEntry:
    sign = "+" if approval.amount_millicredits > 0 else ""
    return credits.credits_grant(
        session=session,
        org_id=approval.org_id,
        amount_millicredits=approval.amount_millicredits,
        idempotency_key=adjust_key(approval.id),
        actor_user_id=actor.id,
        kind=LedgerEntryKind.adjustment,
        reference=f"adjustment:{approval.id}",
        memo=(
            f"Adjustment {sign}{credits.format_credits(approval.amount_millicredits)} by "
            f"{actor.name or actor.email}: {approval.reason}"
        )[:500],
    )


def adjustment_submit(
    *,
    session: Session,
    actor: User,
    org_id: int,
    amount_millicredits: int,
    reason: str,
    request_key: str,
) -> AdjustmentOutcome:
    """Add or remove credits with a reason. At or below the threshold it applies now; above
    it, it waits for another operator. The same `request_key` twice is one request.

    Raises:
        ValidationFailed: zero, too large, or no reason.
        InsufficientCredits: a removal larger than the unpooled balance (when applied).
    """
    _require(session, actor, Action.operator_adjust, org_id)
    reason = _reason(reason)
    if isinstance(amount_millicredits, bool) or not isinstance(amount_millicredits, int):
        raise ValidationFailed("Enter a whole number of credits, e.g. 25 or -10.", field="amount")
    if amount_millicredits == 0 or abs(amount_millicredits) > credits.MAX_MOVEMENT_MILLICREDITS:
        raise ValidationFailed(
            "Enter a number of credits other than zero (negative removes credits).",
            field="amount",
        )
    request_key = str(request_key or "")[:80]
    if not request_key:
        raise ValidationFailed("This form expired. Reload the page and try again.")
    _org(session, org_id)
    existing = session.exec(
        select(AdjustmentApproval).where(AdjustmentApproval.request_key == request_key)
    ).first()
    if existing is not None:  # a double submit: the first one stands
        entry = (
            session.get(CreditLedgerEntry, existing.ledger_entry_id)
            if existing.ledger_entry_id
            else None
        )
        return AdjustmentOutcome(existing.status == APPROVED, existing, entry)
    needs_second = abs(amount_millicredits) > approval_threshold_millicredits()
    approval = AdjustmentApproval(
        org_id=org_id,
        amount_millicredits=amount_millicredits,
        reason=reason,
        request_key=request_key,
        status=PENDING,
        requested_by_user_id=actor.id,
    )
    session.add(approval)
    session.flush()
    details = {
        "operator": _operator_label(actor),
        "millicredits": amount_millicredits,
        "reason": reason,
        "approval_id": approval.id,
    }
    if needs_second:
        audit_record(
            session=session,
            action="credits.adjustment_requested",
            actor_user_id=actor.id,
            org_id=org_id,
            target_type="adjustment",
            target_id=approval.id,
            details=details,
        )
        return AdjustmentOutcome(False, approval, None)
    entry = _apply_adjustment(session, approval, actor)
    approval.status = APPROVED
    approval.decided_by_user_id = actor.id
    approval.decided_at = utcnow()
    approval.ledger_entry_id = entry.id
    session.add(approval)
    audit_record(
        session=session,
        action="credits.adjusted",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="adjustment",
        target_id=approval.id,
        details={**details, "ledger_entry_id": entry.id},
    )
    session.flush()
    return AdjustmentOutcome(True, approval, entry)


def _locked_pending(session: Session, approval_id: int, actor: User) -> AdjustmentApproval:
    approval = session.exec(
        select(AdjustmentApproval)
        .where(AdjustmentApproval.id == approval_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if approval is None:
        raise NotFound("This adjustment request does not exist. Reload the page.")
    _require(session, actor, Action.operator_adjust, approval.org_id)
    if approval.status != PENDING:
        decider = (
            session.get(User, approval.decided_by_user_id) if approval.decided_by_user_id else None
        )
        raise error_with_code(
            Code.approval_decided,
            f"This adjustment was already {approval.status}"
            f"{' by ' + _operator_label(decider) if decider else ''}. Nothing changed.",
            base=Conflict,
        )
    if approval.requested_by_user_id == actor.id:
        raise error_with_code(
            Code.self_approval,
            "You requested this adjustment, so another operator must approve or reject it "
            "(four-eyes rule).",
            base=PermissionDenied,
        )
    return approval


def adjustment_approve(*, session: Session, actor: User, approval_id: int) -> CreditLedgerEntry:
    """A second operator approves a pending adjustment; credits move once.

    Raises:
        PermissionDenied (self_approval): the requester tries to approve their own.
        Conflict (approval_decided): it was approved or rejected already.
    """
    approval = _locked_pending(session, approval_id, actor)
    entry = _apply_adjustment(session, approval, actor)
    approval.status = APPROVED
    approval.decided_by_user_id = actor.id
    approval.decided_at = utcnow()
    approval.ledger_entry_id = entry.id
    session.add(approval)
    audit_record(
        session=session,
        action="credits.adjustment_approved",
        actor_user_id=actor.id,
        org_id=approval.org_id,
        target_type="adjustment",
        target_id=approval.id,
        details={
            "operator": _operator_label(actor),
            "millicredits": approval.amount_millicredits,
            "reason": approval.reason,
            "requested_by_user_id": approval.requested_by_user_id,
            "ledger_entry_id": entry.id,
        },
    )
    session.flush()
    return entry


def adjustment_reject(
    *, session: Session, actor: User, approval_id: int, reason: str
) -> AdjustmentApproval:
    approval = _locked_pending(session, approval_id, actor)
    reason = _reason(reason)
    approval.status = REJECTED
    approval.decided_by_user_id = actor.id
    approval.decided_at = utcnow()
    session.add(approval)
    audit_record(
        session=session,
        action="credits.adjustment_rejected",
        actor_user_id=actor.id,
        org_id=approval.org_id,
        target_type="adjustment",
        target_id=approval.id,
        details={"operator": _operator_label(actor), "reason": reason},
    )
    session.flush()
    return approval


def adjustments_pending(
    *, session: Session, actor: User
) -> list[tuple[AdjustmentApproval, str, str]]:
    """Every pending adjustment with its org slug and requester (operators only)."""
    _require(session, actor, Action.operator_access)
    return [
        (approval, slug, (name or email or "?"))
        for approval, slug, email, name in session.exec(
            select(AdjustmentApproval, Organization.slug, User.email, User.name)
            .join(Organization, col(Organization.id) == col(AdjustmentApproval.org_id))
            .join(User, col(User.id) == col(AdjustmentApproval.requested_by_user_id), isouter=True)
            .where(AdjustmentApproval.status == PENDING)
            .order_by(col(AdjustmentApproval.id))
            .limit(100)
        )
    ]


# --- run recovery ------------------------------------------------------------------------------


def _run_org(session: Session, public_id: str) -> int:
    org_id = session.exec(
        select(Generation.org_id).where(Generation.public_id == str(public_id or "")[:40])
    ).first()
    if org_id is None:
        raise NotFound("This run does not exist. Reload the page.")
    return org_id


def run_recover(*, session: Session, actor: User, public_id: str, action: str, reason: str) -> str:
    """One recovery action on one run: "requeue" (queued), "stop" (queued/running: fail now and
    return the hold) or "retry" (failed: start it again for the member who ran it, once).

    Returns a sentence for the operator. Audited by the run engine / here.
    """
    org_id = _run_org(session, public_id)
    _require(session, actor, Action.operator_support, org_id)
    reason = _reason(reason)
    if action == "requeue":
        generation = run_engine.run_requeue(session=session, actor=actor, public_id=public_id)
        return f"{generation.public_id} was sent to the run queue again."
    if action == "stop":
        generation = run_engine.run_force_fail(
            session=session, actor=actor, public_id=public_id, reason=reason
        )
        return f"{generation.public_id} is {generation.status}; its held credits were returned."
    if action == "retry":
        original = _locked_generation(session, org_id, public_id)
        owner = session.get(User, original.user_id) if original.user_id else None
        if owner is None:
            raise Conflict(
                "The member who started this run no longer exists, so it cannot be retried "
                "for them. Refund it instead."
            )
        retry = generation_service.generation_retry(
            session=session, user=owner, org_id=org_id, public_id=original.public_id
        )
        audit_record(
            session=session,
            action="generation.retried_by_operator",
            actor_user_id=actor.id,
            org_id=org_id,
            target_type="generation",
            target_id=original.public_id,
            details={
                "operator": _operator_label(actor),
                "retry": retry.public_id,
                "reason": reason,
            },
        )
        return f"{original.public_id} was retried as {retry.public_id}."
    raise ValidationFailed("Unknown recovery action. Use requeue, stop or retry.")


BULK_RETRY_LIMIT = 20


def runs_bulk_retry(*, session: Session, actor: User, org_id: int, reason: str) -> list[str]:
    """Retry the customer's recent failed, not yet retried runs (at most BULK_RETRY_LIMIT),
    only once a single operator retry of this customer succeeded ("use the recovery controls
    before bulk reruns"). Runs that cannot start now (caps, credits) are skipped and named.

    Returns the new runs' public ids. Audited as one entry.

    Raises:
        Conflict (bulk_needs_single_retry): no single retry has succeeded yet.
    """
    _require(session, actor, Action.operator_support, org_id)
    reason = _reason(reason)
    retried_ids = [
        str((details or {}).get("retry", ""))
        for details in session.exec(
            select(AuditLogEntry.details).where(
                AuditLogEntry.org_id == org_id,
                AuditLogEntry.action == "generation.retried_by_operator",
            )
        )
    ]
    succeeded = (
        retried_ids
        and session.exec(
            select(func.count())
            .select_from(Generation)
            .where(
                col(Generation.public_id).in_(retried_ids),
                Generation.status == GenerationStatus.succeeded.value,
            )
        ).one()
    )
    if not succeeded:
        raise error_with_code(
            Code.bulk_needs_single_retry,
            "Retry one failed run first and wait until it succeeds; a bulk rerun of runs that "
            "fail the same way only burns the customer's time. Then rerun the rest here.",
            base=Conflict,
        )
    already = select(Generation.retry_of_id).where(col(Generation.retry_of_id).is_not(None))
    failed = list(
        session.exec(
            select(Generation)
            .where(
                Generation.org_id == org_id,
                Generation.status == GenerationStatus.failed.value,
                col(Generation.retry_of_id).is_(None),
                col(Generation.id).not_in(already),
            )
            .order_by(col(Generation.id).desc())
            .limit(BULK_RETRY_LIMIT)
        )
    )
    started: list[str] = []
    skipped: list[str] = []
    for original in failed:
        owner = session.get(User, original.user_id) if original.user_id else None
        if owner is None:
            skipped.append(original.public_id)
            continue
        try:
            with session.begin_nested():
                retry = generation_service.generation_retry(
                    session=session, user=owner, org_id=org_id, public_id=original.public_id
                )
        except DomainError:
            skipped.append(original.public_id)
            continue
        started.append(retry.public_id)
    audit_record(
        session=session,
        action="generation.bulk_retried",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="organization",
        target_id=org_id,
        details={
            "operator": _operator_label(actor),
            "reason": reason,
            "started": started,
            "skipped": skipped,
        },
    )
    return started


BULK_RUN_LIMIT = 50
BULK_AFTER_SINGLE_HOURS = 24
# bulk action -> (the single action that must have been tried first, the bulk audit action)
_BULK_ACTIONS = {
    "requeue": ("generation.requeued", "generation.bulk_requeued"),
    "stop": ("generation.force_failed", "generation.bulk_stopped"),
}


@dataclass(frozen=True)
class BulkOutcome:
    action: str  # "requeue" | "stop"
    acted: list[str]  # public ids
    skipped: list[tuple[str, str]]  # (public id, why)
    replayed: bool  # this request was done before (a double click): nothing happened now

    @property
    def message(self) -> str:
        verb = {"requeue": "Sent to the queue again", "stop": "Stopped (credits returned)"}
        text = (
            f"{verb[self.action]}: {len(self.acted)} run(s)"
            + (
                f" ({', '.join(self.acted[:10])}{'…' if len(self.acted) > 10 else ''})"
                if self.acted
                else ""
            )
            + "."
        )
        if self.skipped:
            text += f" Skipped {len(self.skipped)}: " + "; ".join(
                f"{public_id} ({why})" for public_id, why in self.skipped[:10]
            )
            text += "…" if len(self.skipped) > 10 else "."
        if self.replayed:
            text = "Already done for this form, nothing more happened. " + text
            text += " Reload the page to act again."
        return text


def runs_bulk_recover(
    *,
    session: Session,
    actor: User,
    org_id: int,
    action: str,
    reason: str,
    request_key: str,
) -> BulkOutcome:
    """Requeue every queued run of the customer ("requeue") or stop every running one now and
    return its held credits ("stop"), at most BULK_RUN_LIMIT, oldest first; only after the
    single action was tried on one of this customer's runs in the last 24 hours.

    One audit entry names what was acted on and what was skipped (and why). The same
    `request_key` twice (a double click, two tabs) acts once: the second gets the first's
    outcome with ``replayed``. The caller commits.

    Raises:
        ValidationFailed: unknown action, no reason, or no request key.
        Conflict (bulk_needs_single_action): no single requeue/stop of this customer yet.
    """
    _require(session, actor, Action.operator_support, org_id)
    if action not in _BULK_ACTIONS:
        raise ValidationFailed("Unknown bulk action. Use requeue or stop.")
    reason = _reason(reason)
    request_key = str(request_key or "")[:64]
    if not request_key:
        raise ValidationFailed("This form expired. Reload the page and try again.")
    single_action, bulk_action = _BULK_ACTIONS[action]
    # One bulk action of a customer at a time (two operators, two tabs): lock the customer.
    session.exec(select(Organization.id).where(Organization.id == org_id).with_for_update()).first()
    _org(session, org_id)
    done = session.exec(
        select(AuditLogEntry.details).where(
            AuditLogEntry.org_id == org_id,
            AuditLogEntry.action == bulk_action,
            AuditLogEntry.target_type == "bulk_request",
            AuditLogEntry.target_id == request_key,
        )
    ).first()
    if done is not None:
        return BulkOutcome(
            action,
            [str(public_id) for public_id in done.get("acted", [])],
            [(str(item[0]), str(item[1])) for item in done.get("skipped", [])],
            replayed=True,
        )
    tried = session.exec(
        select(AuditLogEntry.id).where(
            AuditLogEntry.org_id == org_id,
            AuditLogEntry.action == single_action,
            col(AuditLogEntry.created_at) >= utcnow() - timedelta(hours=BULK_AFTER_SINGLE_HOURS),
        )
    ).first()
    if tried is None:
        noun = "Requeue one queued run" if action == "requeue" else "Stop one running run"
        raise error_with_code(
            Code.bulk_needs_single_action,
            f"{noun} of this customer first and check what happens to it; a bulk action on "
            "runs stuck for the same reason only repeats the problem. Then act on the rest here.",
            base=Conflict,
        )
    wanted = (
        GenerationStatus.queued.value if action == "requeue" else GenerationStatus.running.value
    )
    candidates = list(
        session.exec(
            select(Generation.id, Generation.public_id)
            .where(Generation.org_id == org_id, Generation.status == wanted)
            .order_by(col(Generation.id))
            .limit(BULK_RUN_LIMIT + 1)
        )
    )
    acted: list[str] = []
    skipped: list[tuple[str, str]] = []
    for _generation_id, public_id in candidates[BULK_RUN_LIMIT:]:
        skipped.append((public_id, f"more than {BULK_RUN_LIMIT} at once; press again"))
    for generation_id, public_id in candidates[:BULK_RUN_LIMIT]:
        query = select(Generation).where(Generation.id == generation_id)
        if db.is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        generation = session.exec(query.execution_options(populate_existing=True)).first()
        if generation is None:
            skipped.append((public_id, "a worker is updating it right now"))
            continue
        if generation.status != wanted:
            skipped.append((public_id, f"it is {generation.status} now"))
            continue
        if action == "requeue":
            generation.enqueued_at = utcnow()
            session.add(generation)
            run_engine.run_enqueue_after_commit(session=session, generation_id=generation.id)
        else:
            # The one-run stop without its per-run audit entry (this action is audited once).
            run_engine._fail_and_release(  # noqa: SLF001
                session,
                generation,
                code=Code.stopped_by_operator.value,
                reason=run_engine.STOPPED_REASON,
            )
        acted.append(public_id)
    session.flush()
    audit_record(
        session=session,
        action=bulk_action,
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="bulk_request",
        target_id=request_key,
        details={
            "operator": _operator_label(actor),
            "reason": reason,
            "acted": acted,
            "skipped": [list(item) for item in skipped],
        },
    )
    return BulkOutcome(action, acted, skipped, replayed=False)


# --- model controls ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelControl:
    key: str
    name: str
    modality: str
    status: str
    status_reason: str
    backup_key: str
    min_plan_key: str
    orgs_affected: int  # organizations whose plan may use it


def _orgs_affected(session: Session, model: AIModel, ranks: dict[str, int]) -> int:
    allowed = [key for key, rank in ranks.items() if rank >= ranks.get(model.min_plan_key, 0)]
    return int(
        session.exec(
            select(func.count())
            .select_from(Organization)
            .where(col(Organization.deleted_at).is_(None), col(Organization.plan_key).in_(allowed))
        ).one()
    )


def models_controls(*, session: Session, actor: User) -> list[ModelControl]:
    _require(session, actor, Action.operator_models)
    ranks = {plan.key: plan.rank for plan in session.exec(select(Plan))}
    return [
        ModelControl(
            key=model.key,
            name=model.display_name,
            modality=model.modality,
            status=model.status,
            status_reason=model.status_reason or "",
            backup_key=model.backup_model_key or "",
            min_plan_key=model.min_plan_key,
            orgs_affected=_orgs_affected(session, model, ranks),
        )
        for model in session.exec(select(AIModel).order_by(col(AIModel.modality), col(AIModel.key)))
    ]


def model_control(
    *, session: Session, actor: User, model_key: str, change: str, reason: str
) -> str:
    """Disable, enable or swap a model to its backup, with a reason; says who is affected."""
    _require(session, actor, Action.operator_models)
    reason = _reason(reason)
    functions = {
        "disable": models_registry.model_disable,
        "enable": models_registry.model_enable,
        "swap": models_registry.model_swap,
    }
    if change not in functions:
        raise ValidationFailed("Unknown model change. Use disable, enable or swap.")
    model = functions[change](
        session=session, actor=actor, model_key=str(model_key or "")[:64], reason=reason
    )
    ranks = {plan.key: plan.rank for plan in session.exec(select(Plan))}
    affected = _orgs_affected(session, model, ranks)
    state = {
        ModelStatus.active.value: "is active again",
        ModelStatus.disabled.value: "is disabled",
        ModelStatus.swapped.value: f"now runs on its backup {model.backup_model_key}",
    }.get(model.status, model.status)
    return (
        f"{model.display_name} {state}. {affected} organization"
        f"{'' if affected == 1 else 's'} can use it; the studio banner and status page follow."
    )


# --- view as -----------------------------------------------------------------------------------


def view_as_start(*, session: Session, actor: User, org_id: int, reason: str) -> ViewAsGrant:
    """Start a read-only, 30-minute view of the organization as its members see it.

    Recorded in the customer's audit log. Starting again while active extends nothing: the
    active grant is returned.
    """
    _require(session, actor, Action.operator_access, org_id)
    reason = _reason(reason)
    _org(session, org_id)
    active = policy.view_as_active(session=session, user_id=actor.id, org_id=org_id)
    if active is not None:
        return active
    now = utcnow()
    grant = ViewAsGrant(
        operator_user_id=actor.id,
        org_id=org_id,
        reason=reason,
        started_at=now,
        expires_at=now + timedelta(minutes=VIEW_AS_MINUTES),
    )
    session.add(grant)
    session.flush()
    audit_record(
        session=session,
        action="operator.view_as_started",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="view_as",
        target_id=grant.id,
        details={
            "operator": _operator_label(actor),
            "reason": reason,
            "expires_at": grant.expires_at.isoformat(timespec="seconds"),
        },
    )
    return grant


def view_as_stop(*, session: Session, actor: User, org_id: int) -> bool:
    """Stop the operator's view-as of the organization; audited. False when none was active."""
    grant = policy.view_as_active(session=session, user_id=actor.id, org_id=org_id)
    if grant is None:
        return False
    grant.ended_at = utcnow()
    session.add(grant)
    audit_record(
        session=session,
        action="operator.view_as_stopped",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="view_as",
        target_id=grant.id,
        details={"operator": _operator_label(actor)},
    )
    session.flush()
    return True


def new_request_key() -> str:
    return uuid.uuid4().hex
