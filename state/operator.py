"""/operator and /operator/customers/<slug>: the operator console.

Not an org page (the operator is usually no member), so it has a skeleton of its own, with the
same shape as `OrgPageState._act`: on every call re-derive the person from the session cookie
(and the customer from the URL), let the service ask the policy module, run one transaction
and commit it, map every domain error to a message, then refresh the read models. State holds
read models only: no table rows, ids used for access checks are re-read from the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import reflex as rx
from sqlmodel import Session

from core import db, routes
from core.clock import as_utc
from models import User
from services import operator as operator_service
from services import orgs as org_service
from services import policy
from services.credits import MILLICREDITS_PER_CREDIT, format_credits
from services.errors import DomainError, NotFound, ValidationFailed
from state.org_page import bounded, browser_id, form_fields
from state.session import SessionState

T = TypeVar("T")

MAX_QUERY_CHARS = 321
MAX_REASON_INPUT = operator_service.MAX_REASON_CHARS + 1
MAX_AMOUNT_INPUT = 24
RECOVERY_ACTIONS = ("requeue", "stop", "retry")
RUN_ACTIONS = ("refund", *RECOVERY_ACTIONS)
MODEL_CHANGES = ("disable", "enable", "swap")


def customer_path(slug: str) -> str:
    return f"{routes.OPERATOR_HOME}/customers/{slug}"


CUSTOMER_ROUTE = f"{routes.OPERATOR_HOME}/customers/[customer_slug]"
SUPPORT_PATH = f"{routes.OPERATOR_HOME}/support"
ANALYTICS_PATH = f"{routes.OPERATOR_HOME}/analytics"


def _slug_from_path(path: str) -> str:
    parts = [part for part in (path or "").split("/") if part]
    if len(parts) >= 3 and parts[0] == "operator" and parts[1] == "customers":
        return parts[2].lower()[:64]
    return ""


def _when(moment) -> str:
    moment = as_utc(moment)
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


def _credits(millicredits: int) -> str:
    return format_credits(millicredits)


def _parse_credits(text: str) -> int:
    """ "25", "-10", "+2.5" credits -> millicredits."""
    cleaned = str(text or "").strip().replace(",", "").replace(" ", "")
    try:
        value = float(cleaned)
    except ValueError:
        raise ValidationFailed(
            f"{text!r} is not a number of credits. Enter e.g. 25 to add or -10 to remove.",
            field="amount",
        ) from None
    if value != value or abs(value) > 10**12:  # NaN or absurd
        raise ValidationFailed("Enter a sensible number of credits.", field="amount")
    return round(value * MILLICREDITS_PER_CREDIT)


# --- read models -------------------------------------------------------------------------------


@dataclass
class HitRow:
    slug: str
    name: str
    plan: str
    matched: str
    href: str


@dataclass
class PendingRow:
    approval_id: int
    org_slug: str
    amount: str
    reason: str
    requested_by: str
    created: str
    href: str


@dataclass
class ModelRow:
    key: str
    name: str
    modality: str
    status: str
    status_reason: str
    backup: str
    orgs_affected: int


@dataclass
class LedgerRow:
    when: str
    kind: str
    amount: str
    balance_after: str
    memo: str


@dataclass
class MemberRow:
    name: str
    email: str
    role: str


@dataclass
class RunRow:
    public_id: str
    status: str
    model: str
    created: str
    timeline: str
    failure: str
    charged: str
    refund_label: str  # "" when there is nothing to refund
    refunded: bool
    can_requeue: bool
    can_stop: bool
    can_retry: bool


@dataclass
class TicketRow:
    subject: str
    status: str
    created: str


@dataclass
class ConnectionRow:
    provider: str
    account: str
    status: str


@dataclass
class AuditLine:
    when: str
    actor: str
    action: str
    details: str


class _OperatorBase(rx.State, mixin=True):
    allowed: bool = False
    denied_message: str = ""
    error: str = ""
    notice: str = ""

    def _refresh(self, session: Session, user: User) -> None:
        """Reload the page's read models. Pages override it."""

    async def _operator(self, session: Session) -> User:
        """The signed-in operator, re-checked against the session row and the policy."""
        session_state = await self.get_state(SessionState)
        user = session_state._current_user(session)
        if user is None:
            raise NotFound("Your session has ended. Sign in again.")
        policy.require(
            policy.actor_for(session=session, user=user, org_id=None),
            policy.Action.operator_access,
            policy.Target(),
        )
        return user

    async def _load_page(self):
        self.error = self.notice = ""
        with db.new_session() as session:
            session_state = await self.get_state(SessionState)
            if session_state._current_user(session) is None:
                return rx.redirect(routes.sign_in(self.router.url.path or routes.OPERATOR_HOME))
            try:
                user = await self._operator(session)
                self._refresh(session, user)
            except DomainError as error:
                self.reset()
                self.denied_message = error.message
                return None
        self.allowed = True
        return None

    async def _run(
        self, work: Callable[[Session, User], T], success: str | Callable[[T], str] = ""
    ) -> T | None:
        """Check, run `work` in one transaction, commit, refresh, say what happened."""
        self.error = self.notice = ""
        with db.new_session() as session:
            try:
                user = await self._operator(session)
                result = work(session, user)
                session.commit()
            except DomainError as error:
                session.rollback()
                self.error = error.message
                try:
                    self._refresh(session, await self._operator(session))
                except DomainError as refused:
                    self.reset()
                    self.error = self.denied_message = refused.message
                return None
            self._refresh(session, user)
        self.notice = success(result) if callable(success) else success
        return result


class OperatorState(_OperatorBase, rx.State):
    """/operator: find a customer, approve adjustments, control models."""

    query: str = ""
    searched: bool = False
    hits: list[HitRow] = []
    pending: list[PendingRow] = []
    models: list[ModelRow] = []
    threshold: str = ""
    model_key: str = ""  # the model whose change form is open
    model_change: str = ""

    def _refresh(self, session: Session, user: User) -> None:
        self.pending = [
            PendingRow(
                approval_id=approval.id,
                org_slug=slug,
                amount=("+" if approval.amount_millicredits > 0 else "")
                + _credits(approval.amount_millicredits),
                reason=approval.reason,
                requested_by=requester,
                created=_when(approval.created_at),
                href=customer_path(slug),
            )
            for approval, slug, requester in operator_service.adjustments_pending(
                session=session, actor=user
            )
        ]
        self.models = [
            ModelRow(
                key=m.key,
                name=m.name,
                modality=m.modality,
                status=m.status,
                status_reason=m.status_reason,
                backup=m.backup_key,
                orgs_affected=m.orgs_affected,
            )
            for m in operator_service.models_controls(session=session, actor=user)
        ]
        self.threshold = _credits(operator_service.approval_threshold_millicredits())
        if self.searched and self.query:
            self.hits = self._search(session, user, self.query)

    def _search(self, session: Session, user: User, query: str) -> list[HitRow]:
        return [
            HitRow(h.slug, h.name, h.plan, h.matched, customer_path(h.slug))
            for h in operator_service.customers_search(session=session, actor=user, query=query)
        ]

    @rx.event
    async def load(self):
        return await self._load_page()

    @rx.event
    async def search(self, form: dict):
        query = bounded(form_fields(form).get("query", ""), MAX_QUERY_CHARS).strip()
        self.query, self.searched = query, bool(query)
        if not query:
            self.hits = []
            self.error = "Type a slug, a member's email or a Stripe customer id (cus_…) to search."
            return
        hits = await self._run(lambda session, user: self._search(session, user, query))
        if hits is not None:
            self.hits = hits
            if not hits:
                self.notice = (
                    f"No customer matches {query!r}. Check the spelling or search by email."
                )

    @rx.event
    def open_model_change(self, key: str, change: str):
        key, change = bounded(key, 64), bounded(change, 16)
        if change not in MODEL_CHANGES or not any(m.key == key for m in self.models):
            self.error = "Pick a model and a change from the list."
            return
        self.model_key, self.model_change = key, change
        self.error = self.notice = ""

    @rx.event
    def cancel_model_change(self):
        self.model_key = self.model_change = ""

    @rx.event
    async def change_model(self, form: dict):
        fields = form_fields(form)
        key, change = self.model_key, self.model_change
        reason = bounded(fields.get("reason", ""), MAX_REASON_INPUT)
        if change not in MODEL_CHANGES or not key:
            self.error = "Pick a model and a change from the list first."
            return
        result = await self._run(
            lambda session, user: operator_service.model_control(
                session=session, actor=user, model_key=key, change=change, reason=reason
            ),
            success=lambda message: message,
        )
        if result is not None:
            self.model_key = self.model_change = ""

    @rx.event
    async def approve(self, approval_id: str):
        await self._run(
            lambda session, user: operator_service.adjustment_approve(
                session=session, actor=user, approval_id=browser_id(approval_id)
            ),
            success=lambda entry: (
                f"Approved: {_credits(entry.amount_millicredits)} credits moved; "
                "the customer sees it in Billing and the audit log."
            ),
        )

    @rx.event
    async def reject(self, approval_id: str):
        await self._run(
            lambda session, user: operator_service.adjustment_reject(
                session=session,
                actor=user,
                approval_id=browser_id(approval_id),
                reason="rejected by a second operator",
            ),
            success="Rejected: no credits moved.",
        )


class OperatorCustomerState(_OperatorBase, rx.State):
    """/operator/customers/<slug>: one customer, with refunds, adjustments, recovery, view-as."""

    slug: str = ""
    name: str = ""
    plan: str = ""
    subscription: str = ""
    stripe_customer_id: str = ""
    balance: str = ""
    pooled: str = ""
    ledger: list[LedgerRow] = []
    members: list[MemberRow] = []
    runs: list[RunRow] = []
    tickets: list[TicketRow] = []
    connections: list[ConnectionRow] = []
    audit: list[AuditLine] = []
    pending: list[PendingRow] = []
    view_as_until: str = ""
    threshold: str = ""
    # The run action whose reason form is open: refund | requeue | stop | retry.
    run_action: str = ""
    _run_public_id: str = ""
    run_action_label: str = ""
    _request_key: str = ""  # one adjustment form = one request, however often submitted
    _bulk_key: str = ""  # one page load = one bulk request per kind, however often pressed

    @rx.var
    def audit_href(self) -> str:
        return f"/org/{self.slug}/audit" if self.slug else ""

    @rx.var
    def billing_href(self) -> str:
        return routes.org_billing(self.slug) if self.slug else ""

    def _refresh(self, session: Session, user: User) -> None:
        slug = _slug_from_path(self.router.url.path)
        view = operator_service.customer_overview(session=session, actor=user, slug=slug)
        self.slug, self.name = view.slug, view.name
        self.plan, self.subscription = view.plan_name, view.subscription
        self.stripe_customer_id = view.stripe_customer_id
        self.balance = _credits(view.balance_millicredits)
        self.pooled = _credits(view.pooled_millicredits)
        self.ledger = [
            LedgerRow(
                when=_when(e.created_at),
                kind=e.kind,
                amount=("+" if e.amount_millicredits > 0 else "") + _credits(e.amount_millicredits),
                balance_after=_credits(e.balance_after_millicredits),
                memo=e.memo,
            )
            for e in view.ledger
        ]
        self.members = [MemberRow(n or e, e, r) for n, e, r in view.members]
        self.runs = [
            RunRow(
                public_id=r.public_id,
                status=r.status,
                model=r.model_key,
                created=_when(r.created_at),
                timeline=r.timeline,
                failure=r.failure,
                charged=_credits(r.charged_millicredits),
                refund_label=(
                    ""
                    if r.refunded
                    else (
                        _credits(r.charged_millicredits)
                        if r.charged_millicredits
                        else (_credits(r.estimate_millicredits) if r.status == "failed" else "")
                    )
                ),
                refunded=r.refunded,
                can_requeue=r.status == "queued",
                can_stop=r.status in ("queued", "running"),
                can_retry=r.status == "failed" and not r.retried,
            )
            for r in view.runs
        ]
        self.tickets = [TicketRow(t.subject, t.status, _when(t.created_at)) for t in view.tickets]
        self.connections = [ConnectionRow(p, a, s) for p, a, s in view.connections]
        self.audit = [
            AuditLine(
                when=_when(entry.created_at),
                actor=actor,
                action=entry.action,
                details=", ".join(f"{k}={v}" for k, v in sorted((entry.details or {}).items()))[
                    :300
                ],
            )
            for entry, actor in view.audit
        ]
        self.pending = [
            PendingRow(
                approval_id=a.id,
                org_slug=view.slug,
                amount=("+" if a.amount_millicredits > 0 else "") + _credits(a.amount_millicredits),
                reason=a.reason,
                requested_by="",
                created=_when(a.created_at),
                href="",
            )
            for a in view.pending_adjustments
        ]
        self.view_as_until = _when(view.view_as_until) if view.view_as_until else ""
        self.threshold = _credits(operator_service.approval_threshold_millicredits())
        if not self._request_key:
            self._request_key = operator_service.new_request_key()
        if not self._bulk_key:
            self._bulk_key = operator_service.new_request_key()

    def _org_id(self, session: Session, user: User) -> int:
        """The customer of the URL, re-read (never an id the browser sent)."""
        slug = _slug_from_path(self.router.url.path)
        return operator_service.customer_overview(
            session=session, actor=user, slug=slug, limit=1
        ).org_id

    @rx.event
    async def load(self):
        self.run_action = self._run_public_id = self.run_action_label = ""
        if self._bulk_key:  # a new page load is a new bulk request (set again by _refresh)
            self._bulk_key = ""
        return await self._load_page()

    @rx.event
    def open_run_action(self, public_id: str, action: str):
        public_id, action = bounded(public_id, 40), bounded(action, 16)
        run = next((r for r in self.runs if r.public_id == public_id), None)
        if action not in RUN_ACTIONS or run is None:
            self.error = "That run is not on this page any more. Reload the page."
            return
        if action == "refund" and not run.refund_label:
            self.error = (
                f"{public_id} was already refunded or cost nothing, so there is nothing to "
                "refund. Make an adjustment instead if the customer is owed credits."
            )
            return
        self.error = self.notice = ""
        self.run_action, self._run_public_id = action, public_id
        self.run_action_label = {
            "refund": f"Refund {run.refund_label} credits for {public_id}",
            "requeue": f"Send {public_id} to the queue again",
            "stop": f"Stop {public_id} now and return its credits",
            "retry": f"Retry {public_id} for the member who ran it",
        }[action]

    @rx.event
    def cancel_run_action(self):
        self.run_action = self._run_public_id = self.run_action_label = ""

    @rx.event
    async def submit_run_action(self, form: dict):
        fields = form_fields(form)
        reason = bounded(fields.get("reason", ""), MAX_REASON_INPUT)
        amount_text = bounded(fields.get("amount", ""), MAX_AMOUNT_INPUT).strip()
        action, public_id = self.run_action, self._run_public_id
        if action not in RUN_ACTIONS or not public_id:
            self.error = "Pick a run and an action first."
            return

        def work(session: Session, user: User) -> str:
            org_id = self._org_id(session, user)
            if action == "refund":
                entry = operator_service.run_refund(
                    session=session,
                    actor=user,
                    org_id=org_id,
                    public_id=public_id,
                    reason=reason,
                    amount_millicredits=_parse_credits(amount_text) if amount_text else None,
                )
                return (
                    f"Refunded {_credits(entry.amount_millicredits)} credits for {public_id}. "
                    "The customer sees it in Billing and in their audit log."
                )
            return operator_service.run_recover(
                session=session, actor=user, public_id=public_id, action=action, reason=reason
            )

        result = await self._run(work, success=lambda message: message)
        if result is not None:
            self.run_action = self._run_public_id = self.run_action_label = ""

    @rx.event
    async def bulk_retry(self, form: dict):
        reason = bounded(form_fields(form).get("reason", ""), MAX_REASON_INPUT)
        await self._run(
            lambda session, user: operator_service.runs_bulk_retry(
                session=session, actor=user, org_id=self._org_id(session, user), reason=reason
            ),
            success=lambda started: (
                f"Started {len(started)} rerun(s): {', '.join(started)}."
                if started
                else "No failed runs were waiting for a rerun."
            ),
        )

    async def _bulk(self, form: dict, action: str) -> None:
        reason = bounded(form_fields(form).get("reason", ""), MAX_REASON_INPUT)
        key = self._bulk_key  # set when the page loaded for this operator
        await self._run(
            lambda session, user: operator_service.runs_bulk_recover(
                session=session,
                actor=user,
                org_id=self._org_id(session, user),
                action=action,
                reason=reason,
                request_key=key,
            ),
            success=lambda outcome: outcome.message,
        )

    @rx.event
    async def bulk_requeue(self, form: dict):
        await self._bulk(form, "requeue")

    @rx.event
    async def bulk_stop(self, form: dict):
        await self._bulk(form, "stop")

    @rx.event
    async def adjust(self, form: dict):
        fields = form_fields(form)
        amount_text = bounded(fields.get("amount", ""), MAX_AMOUNT_INPUT)
        reason = bounded(fields.get("reason", ""), MAX_REASON_INPUT)
        key = self._request_key or operator_service.new_request_key()

        def work(session: Session, user: User):
            return operator_service.adjustment_submit(
                session=session,
                actor=user,
                org_id=self._org_id(session, user),
                amount_millicredits=_parse_credits(amount_text),
                reason=reason,
                request_key=key,
            )

        def said(outcome) -> str:
            amount = _credits(outcome.approval.amount_millicredits)
            if outcome.applied:
                return f"Adjusted by {amount} credits. The customer sees it in Billing."
            return (
                f"The adjustment of {amount} credits is above {self.threshold} credits, so it "
                "waits for a second operator's approval (on the operator home)."
            )

        if await self._run(work, success=said) is not None:
            self._request_key = operator_service.new_request_key()

    @rx.event
    async def reject(self, approval_id: str):
        await self._run(
            lambda session, user: operator_service.adjustment_reject(
                session=session,
                actor=user,
                approval_id=browser_id(approval_id),
                reason="rejected by a second operator",
            ),
            success="Rejected: no credits moved.",
        )

    @rx.event
    async def approve(self, approval_id: str):
        await self._run(
            lambda session, user: operator_service.adjustment_approve(
                session=session, actor=user, approval_id=browser_id(approval_id)
            ),
            success=lambda entry: f"Approved: {_credits(entry.amount_millicredits)} credits moved.",
        )

    @rx.event
    async def start_view_as(self, form: dict):
        reason = bounded(form_fields(form).get("reason", ""), MAX_REASON_INPUT)
        grant = await self._run(
            lambda session, user: operator_service.view_as_start(
                session=session, actor=user, org_id=self._org_id(session, user), reason=reason
            ),
            success=lambda grant: (
                f"Viewing as {self.name} until {_when(grant.expires_at)} (read-only). "
                "Recorded in the customer's audit log."
            ),
        )
        if grant is not None:
            return rx.redirect(routes.org_home(self.slug))
        return None

    @rx.event
    async def stop_view_as(self):
        await self._run(
            lambda session, user: operator_service.view_as_stop(
                session=session, actor=user, org_id=self._org_id(session, user)
            ),
            success="Stopped viewing as the customer.",
        )


class ViewAsBannerState(rx.State):
    """The banner on every org page while an operator views that organization as its members."""

    until: str = ""
    org_slug: str = ""

    @rx.event
    async def check(self):
        """on_mount of the banner: is this operator viewing this org as the customer?"""
        self.until = self.org_slug = ""
        slug = routes.org_slug_from_path(self.router.url.path)
        if not slug:
            return
        session_state = await self.get_state(SessionState)
        with db.new_session() as session:
            user = session_state._current_user(session)
            if user is None or not user.is_operator:
                return
            try:
                org = org_service.org_by_slug(session=session, slug=slug)
            except DomainError:
                return
            grant = policy.view_as_active(session=session, user_id=user.id, org_id=org.id)
            if grant is not None:
                self.until, self.org_slug = _when(grant.expires_at), org.slug

    @rx.event
    async def stop(self):
        slug = routes.org_slug_from_path(self.router.url.path)
        session_state = await self.get_state(SessionState)
        with db.session_scope() as session:
            user = session_state._current_user(session)
            if user is None:
                return rx.redirect(routes.SIGN_IN)
            try:
                org = org_service.org_by_slug(session=session, slug=slug)
                operator_service.view_as_stop(session=session, actor=user, org_id=org.id)
            except DomainError as error:
                return rx.toast.error(error.message)
        self.until = ""
        return rx.redirect(customer_path(slug))
