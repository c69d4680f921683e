"""Billing page state: plan, credits, pools, spend controls, invoices, ledger and rates.

Everyone in the organization reads Billing; only the owner changes it (checkout, top-ups,
portal, spend controls, pools: `Action.billing_manage`). A project-scoped editor sees only its
own projects' pools and ledger lines, and cannot export the whole ledger.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import reflex as rx

from core import db, routes
from models.enums import LedgerEntryKind
from services import billing, credits, form_submissions
from services.errors import DomainError, PermissionDenied, ValidationFailed
from services.policy import Action
from state.navigation import frontend_url, navigate
from state.org_page import Acting, OrgPageState, bounded, browser_id, form_fields

LEDGER_PAGE_SIZE = 50
KIND_LABELS = {
    "grant": "Monthly grant",
    "purchase": "Purchase",
    "hold": "Hold (run started)",
    "settle": "Settle (run finished)",
    "release": "Release (run refunded)",
    "refund": "Refund",
    "adjustment": "Adjustment",
    "expiry": "Expiry",
    "pool_allocate": "Pool allocation",
    "pool_return": "Pool return",
}
OWNER_ONLY_LINE = "Only the organization owner can change billing."
SCOPED_EXPORT_REFUSED = (
    "The ledger export covers every project of the organization, so it is available to "
    "members with access to all projects. Ask an owner or admin."
)
CHECKOUT_NOTICES = {
    "success": (
        "Payment confirmed. Credits and plan changes appear here as soon as the payment "
        "provider reports them (usually within seconds)."
    ),
    "profile": (
        "Billing profile saved; nothing was charged. Models are available on the Free plan now."
    ),
    "canceled": "Checkout was canceled; nothing was charged.",
}

# Longest text a setter or form field of this page keeps (numbers, dates, keys).
SHORT_INPUT_CHARS = 32


# --- read models ----------------------------------------------------------------------------


@dataclass
class LedgerRow:
    id: int
    date: str
    kind: str
    amount: str
    balance_after: str
    detail: str
    positive: bool


@dataclass
class PlanRow:
    key: str
    name: str
    price: str
    monthly_credits: str
    seats: str
    projects: str
    features: list[str]
    current: bool
    purchasable: bool
    action: str
    note: str = ""


@dataclass
class PoolRow:
    project_id: int
    project_name: str
    credits: str


@dataclass
class ProjectOption:
    id: str
    name: str


@dataclass
class InvoiceRow:
    id: str
    date: str
    kind: str
    status: str
    amount: str
    credits: str
    url: str
    period: str = ""


@dataclass
class RateRow:
    name: str
    rate: str
    unit: str
    min_plan: str


@dataclass
class ToolRow:
    name: str
    model: str
    credits: str


# --- formatting and form parsing ------------------------------------------------------------


def _parse_day(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValidationFailed("Use a date like 2026-01-31.", field=field) from None


@dataclass(frozen=True)
class LedgerWindow:
    """Which ledger entries to list: kinds (None = every kind), [since, until) in UTC."""

    kinds: list[LedgerEntryKind] | None
    since: datetime | None
    until: datetime | None


def ledger_window(kind: str, since: str, until: str) -> LedgerWindow:
    """The filter form's values as a window; the "To" day is included.

    Raises:
        ValidationFailed: a day that is not YYYY-MM-DD, or a "From" day after the "To" day.
    """
    known = {entry_kind.value for entry_kind in LedgerEntryKind}
    kinds = [LedgerEntryKind(kind)] if kind in known else None
    first = _parse_day(since, "since")
    last = _parse_day(until, "until")
    if first is not None and last is not None and first > last:
        raise ValidationFailed(
            "The From date is after the To date. Pick a From date on or before the To date.",
            field="since",
        )
    return LedgerWindow(kinds, first, last + timedelta(days=1) if last is not None else None)


def plan_action_label(*, current: bool, rank: int, current_rank: int, name: str) -> str:
    if current:
        return "Renew " + name
    return ("Upgrade to " if rank > current_rank else "Switch to ") + name


def ledger_row(entry) -> LedgerRow:
    return LedgerRow(
        id=entry.id,
        date=entry.created_at.strftime("%Y-%m-%d %H:%M"),
        kind=KIND_LABELS.get(entry.kind, entry.kind),
        amount=("+" if entry.amount_millicredits > 0 else "")
        + credits.format_credits(entry.amount_millicredits),
        balance_after=credits.format_credits(entry.balance_after_millicredits),
        detail=entry.memo or entry.reference,
        positive=entry.amount_millicredits > 0,
    )


RUN_KINDS = frozenset({"hold", "settle", "release"})
_SEATS_AND_PROJECTS = re.compile(r"\bprojects?\b.*\bseats?\b|\bseats?\b.*\bprojects?\b", re.I)


def _signed(millicredits: int) -> str:
    return ("+" if millicredits > 0 else "") + credits.format_credits(millicredits)


def readable_ledger(
    entries: list, projects: dict[int, str], runs: dict[int, str]
) -> list[LedgerRow]:
    """Ledger lines a person can read: one line per run with its net cost (its hold, settle
    and release folded into the detail), and pool lines naming the project and the amount."""
    rows: list[LedgerRow] = []
    run_lines: dict[int, list] = {}
    order: list[tuple[str, Any]] = []
    for entry in entries:  # newest first
        if entry.generation_id is not None and entry.kind in RUN_KINDS:
            if entry.generation_id not in run_lines:
                run_lines[entry.generation_id] = []
                order.append(("run", entry.generation_id))
            run_lines[entry.generation_id].append(entry)
        else:
            order.append(("entry", entry))
    for what, item in order:
        if what == "entry":
            row = ledger_row(item)
            project = projects.get(item.project_id, "")
            if item.kind in ("pool_allocate", "pool_return") and project:
                amount = credits.format_credits(abs(item.pool_amount_millicredits))
                row.detail = (
                    f"{project}: {amount} credits set aside for the project"
                    if item.kind == "pool_allocate"
                    else f"{project}: {amount} credits back to the general balance"
                )
            rows.append(row)
            continue
        lines = run_lines[item]
        newest, oldest = lines[0], lines[-1]
        net = sum(line.amount_millicredits for line in lines)
        steps = " · ".join(
            f"{KIND_LABELS.get(line.kind, line.kind).split(' (')[0]} {_signed(line.amount_millicredits)}"
            for line in reversed(lines)
        )
        project = projects.get(oldest.project_id, "")
        cost = (
            f"net cost {credits.format_credits(-net)} credits"
            if net < 0
            else "no charge (hold returned)"
            if net == 0
            else f"net {_signed(net)} credits"
        )
        rows.append(
            LedgerRow(
                id=newest.id,
                date=oldest.created_at.strftime("%Y-%m-%d %H:%M"),
                kind="Run " + runs.get(item, f"#{item}"),
                amount=_signed(net) if net else "0",
                balance_after=credits.format_credits(newest.balance_after_millicredits),
                detail=(f"{project}: " if project else "") + f"{cost} ({steps})",
                positive=net > 0,
            )
        )
    return rows


# --- the page state -------------------------------------------------------------------------


class BillingState(OrgPageState, rx.State):
    # A project-scoped editor must not learn about other projects (names, pools, runs).
    _scoped_project_ids: list[int] | None = None
    loaded: bool = False
    is_owner: bool = False
    local_mode: bool = True
    plan_name: str = ""
    plan_price: str = ""
    status: str = ""
    status_label: str = ""
    executable: bool = True
    renewal: str = ""
    cancel_at_period_end: bool = False
    balance: str = "0"
    pooled: str = "0"
    available: str = "0"
    low_balance: bool = False
    seats: str = ""
    usage: str = "0"
    cycle_start: str = ""
    cap: str = ""
    alert: str = ""
    billing_profile_required: bool = False
    pools: list[PoolRow] = []
    projects: list[ProjectOption] = []
    invoices: list[InvoiceRow] = []
    plans: list[PlanRow] = []
    _block_credits: int = 10
    _block_price_cents: int = 100
    max_blocks: int = 1000
    terms: str = ""
    blocks: str = "1"
    ledger: list[LedgerRow] = []
    _kind_filter: str = "all"
    since: str = ""
    until: str = ""
    text_rates: list[RateRow] = []
    image_rates: list[RateRow] = []
    video_rates: list[RateRow] = []
    tool_rates: list[ToolRow] = []
    portal_note: str = ""
    scheduled_change: str = ""
    locked_reason: str = ""
    credits_rule: str = ""
    # The plan-change confirmation: what is charged now, what changes when, credits.
    change_open: bool = False
    change_title: str = ""
    change_lines: list[str] = []
    change_confirm: str = ""
    _change_plan_key: str = ""
    _change_kind: str = ""
    _change_quoted_at: datetime | None = None

    # --- the skeleton's hooks ---------------------------------------------------------------

    def _view_action(self) -> Action:
        return Action.billing_view

    def _refresh(self, acting: Acting) -> None:
        actor = acting.actor
        self._scoped_project_ids = sorted(actor.project_ids) if actor.project_scoped else None
        self._fill_overview(acting)
        self._fill_ledger(acting)
        self._fill_rates(acting)

    # --- read models ------------------------------------------------------------------------

    def _visible(self, project_id: int | None) -> bool:
        return (
            self._scoped_project_ids is None
            or project_id is None
            or project_id in self._scoped_project_ids
        )

    def _fill_overview(self, acting: Acting) -> None:
        overview = billing.billing_overview(session=acting.session, org_id=acting.org.id)
        is_owner = acting.can(Action.billing_manage)
        self.is_owner = is_owner
        self.local_mode = overview.payments_mode == "local"
        self.plan_name = overview.plan_name
        self.plan_price = overview.plan_price
        self.status = overview.status
        self.status_label = overview.status_label
        self.executable = overview.executable
        self.renewal = overview.renewal
        self.cancel_at_period_end = overview.cancel_at_period_end
        self.balance = credits.format_credits(overview.balance_millicredits)
        self.pooled = credits.format_credits(overview.pooled_millicredits)
        self.available = credits.format_credits(overview.available_millicredits)
        self.low_balance = overview.low_balance
        allowed = "unlimited" if overview.seats_allowed is None else f"{overview.seats_allowed:,}"
        self.seats = f"{overview.seats_used:,} of {allowed}"
        self.usage = credits.format_credits(overview.usage_this_cycle_millicredits)
        self.cycle_start = overview.cycle_start
        self.cap = "" if overview.monthly_cap_credits is None else str(overview.monthly_cap_credits)
        self.alert = (
            ""
            if overview.low_balance_alert_credits is None
            else str(overview.low_balance_alert_credits)
        )
        self.billing_profile_required = overview.billing_profile_required
        self.scheduled_change = overview.scheduled_change
        self.locked_reason = overview.locked_reason
        self.credits_rule = overview.credits_rule
        self.pools = [
            PoolRow(p.project_id, p.project_name, p.credits)
            for p in overview.pools
            if self._visible(p.project_id)
        ]
        # Only the owner allocates pools; hosted invoice links open without signing in.
        self.projects = (
            [ProjectOption(str(pid), name) for pid, name in overview.projects] if is_owner else []
        )
        self.invoices = [
            InvoiceRow(
                i.id,
                i.date,
                i.kind,
                i.status,
                i.amount,
                i.credits,
                i.url if is_owner else "",
                i.period,
            )
            for i in overview.invoices
        ]
        current_rank = next((p.rank for p in overview.plans if p.current), 0)
        self.plans = [
            PlanRow(
                key=p.key,
                name=p.name,
                price=p.price,
                monthly_credits=p.monthly_credits,
                seats=p.seats,
                projects=p.projects,
                # Seats and projects have their own line; a feature repeating them is dropped.
                features=[f for f in p.features if not _SEATS_AND_PROJECTS.search(f)],
                current=p.current,
                purchasable=p.purchasable,
                action=p.action
                or plan_action_label(
                    current=p.current, rank=p.rank, current_rank=current_rank, name=p.name
                ),
                note=p.note,
            )
            for p in overview.plans
        ]
        terms = overview.top_up
        self._block_credits = terms.block_credits
        self._block_price_cents = terms.block_price_cents
        self.max_blocks = terms.max_blocks
        self.terms = terms.describe()

    def _window(self) -> LedgerWindow:
        """The current filters (only valid ones are ever kept, see `apply_filters`)."""
        return ledger_window(self._kind_filter, self.since, self.until)

    def _fill_ledger(self, acting: Acting) -> None:
        window = self._window()
        entries = credits.ledger_list(
            session=acting.session,
            org_id=acting.org.id,
            kinds=window.kinds,
            since=window.since,
            until=window.until,
            limit=LEDGER_PAGE_SIZE,
        )
        visible = [entry for entry in entries if self._visible(entry.project_id)]
        projects, runs = credits.ledger_names(session=acting.session, entries=visible)
        self.ledger = readable_ledger(visible, projects, runs)

    def _fill_rates(self, acting: Acting) -> None:
        rates, tools = billing.credit_rates(session=acting.session)
        by_modality: dict[str, list[RateRow]] = {"text": [], "image": [], "video": []}
        for rate in rates:
            by_modality.setdefault(rate.modality, []).append(
                RateRow(rate.name, rate.rate, rate.unit, rate.min_plan)
            )
        self.text_rates = by_modality["text"]
        self.image_rates = by_modality["image"]
        self.video_rates = by_modality["video"]
        self.tool_rates = [ToolRow(t.name, t.model, t.credits) for t in tools]

    # --- how this page acts -----------------------------------------------------------------

    async def _manage(self, work: Callable[[Acting], Any], success: str = "") -> Any:
        """An owner-only change; a note about the portal belongs to the previous attempt."""
        self.portal_note = ""
        return await self._act(Action.billing_manage, work, success=success)

    async def _read(self, work: Callable[[Acting], Any], *, refresh: bool = True) -> Any:
        """A read after a browser event: checked like any action, earlier notices stay."""
        notice = self.notice
        result = await self._act(Action.billing_view, work, refresh=refresh)
        if result is not None:
            self.notice = notice
        return result

    # --- events -----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        self.portal_note = ""
        self._kind_filter, self.since, self.until, self.blocks = "all", "", "", "1"
        opened = await self._open()
        if opened.elsewhere is not None:
            return opened.elsewhere
        acting = opened.acting
        self.loaded = acting is not None
        if acting is not None:
            outcome = self.router.url.query_parameters.get("checkout", "")
            self.notice = CHECKOUT_NOTICES.get(outcome, "")

    @rx.event
    def set_blocks(self, value: str):
        self.blocks = bounded(value, SHORT_INPUT_CHARS)

    @rx.event
    async def apply_filters(self, form: dict):
        form = form_fields(form)
        kind = bounded(form.get("kind", "all"), SHORT_INPUT_CHARS)
        since = bounded(form.get("since", ""), SHORT_INPUT_CHARS)
        until = bounded(form.get("until", ""), SHORT_INPUT_CHARS)

        def keep_filters(_acting: Acting) -> None:
            window = ledger_window(kind, since, until)  # refuses a malformed or reversed range
            self._kind_filter = kind if window.kinds is not None else "all"
            self.since, self.until = since, until

        await self._read(keep_filters)

    @rx.event
    async def clear_filters(self):
        await self.apply_filters({"kind": "all", "since": "", "until": ""})

    @rx.event
    async def export_csv(self):
        def ledger_csv(acting: Acting) -> tuple[str, str]:
            if acting.actor.project_scoped:
                raise PermissionDenied(SCOPED_EXPORT_REFUSED)
            window = self._window()
            data = credits.ledger_csv(
                session=acting.session,
                org_id=acting.org.id,
                kinds=window.kinds,
                since=window.since,
                until=window.until,
            )
            return acting.org.slug, data

        exported = await self._read(ledger_csv, refresh=False)
        if exported is None:
            return None
        slug, data = exported
        return rx.download(data=data, filename=f"{slug}-credit-ledger.csv", mime_type="text/csv")

    async def _checkout(self, purpose: str, **choice: str):
        checkout = await self._manage(
            lambda a: billing.checkout_start(
                session=a.session,
                actor=a.user,
                org_id=a.org.id,
                purpose=purpose,
                billing_url=frontend_url(routes.org_billing(a.org.slug)),
                **choice,
            )
        )
        if checkout is None:
            return None
        if checkout.url.startswith("/"):  # local payment mode: a page of this app
            return rx.redirect(checkout.url)
        return navigate(checkout.url)

    @rx.event
    async def buy_credits(self, form: dict):
        form = form_fields(form)
        blocks = bounded(form.get("blocks", ""), SHORT_INPUT_CHARS).strip()
        return await self._checkout("top_up", blocks=blocks)

    @rx.event
    async def upgrade(self, plan_key: str):
        """Choosing a plan opens the confirmation; nothing changes before the owner confirms."""
        plan_key = bounded(plan_key, SHORT_INPUT_CHARS)
        self.change_open = False
        preview = await self._manage(
            lambda a: billing.plan_change_preview(
                session=a.session, actor=a.user, org_id=a.org.id, plan_key=plan_key
            )
        )
        if preview is None:
            return None
        self.change_title, self.change_lines = preview.title, list(preview.lines)
        self.change_confirm = preview.confirm_label
        self._change_plan_key, self._change_kind = preview.plan_key, preview.kind
        self._change_quoted_at = preview.quoted_at
        self.change_open = True
        return None

    @rx.event
    def close_plan_change(self):
        self.change_open = False
        self._change_plan_key = self._change_kind = ""

    @rx.event
    async def confirm_plan_change(self):
        plan_key, kind, quoted_at = (
            self._change_plan_key,
            self._change_kind,
            self._change_quoted_at,
        )
        self.change_open = False
        self._change_plan_key = self._change_kind = ""
        if not plan_key:
            self.error = "Choose a plan under Compare plans first."
            return None
        if kind == "new":
            return await self._checkout("upgrade", plan_key=plan_key)
        owner = await self._manage(lambda a: (a.user.id, a.org.id), "")
        if owner is None:
            return None
        user_id, org_id = owner
        try:
            message = billing.plan_change(
                actor_user_id=user_id, org_id=org_id, plan_key=plan_key, quoted_at=quoted_at
            )
        except DomainError as error:
            await self._read(lambda _a: None)
            with db.new_session() as session:
                self._show_error(session, error)
            return None
        await self._read(lambda _a: None)
        self.notice = message
        return None

    @rx.event
    async def add_billing_profile(self):
        return await self._checkout("billing_profile")

    @rx.event
    async def open_portal(self):
        url = await self._manage(
            lambda a: billing.portal_start(
                session=a.session,
                actor=a.user,
                org_id=a.org.id,
                return_url=frontend_url(routes.org_billing(a.org.slug)),
            )
        )
        if url is None:
            if self.local_mode:  # said next to the button, not as a page error
                self.portal_note, self.error = self.error, ""
            return None
        return navigate(url)

    @rx.event
    async def save_spend_controls(self, form: dict):
        form = form_fields(form)
        cap = bounded(form.get("monthly_cap", ""), SHORT_INPUT_CHARS)
        alert = bounded(form.get("low_balance_alert", ""), SHORT_INPUT_CHARS)
        await self._manage(
            lambda a: billing.spend_controls_set(
                session=a.session,
                actor=a.user,
                org_id=a.org.id,
                monthly_cap_credits=cap,
                low_balance_alert_credits=alert,
            ),
            "Spend controls saved.",
        )

    @rx.event
    async def allocate_pool(self, form: dict):
        """Set credits aside; the form's token makes a double click set them aside once."""
        form = form_fields(form)
        token = form_submissions.form_token_clean(form.get("form_token"))
        request_id = token or uuid.uuid4().hex
        amount = bounded(form.get("pool_credits", ""), SHORT_INPUT_CHARS)
        self.portal_note = ""
        await self._act(
            Action.billing_manage,
            lambda a: (
                billing.pool_allocate_credits(
                    session=a.session,
                    actor=a.user,
                    org_id=a.org.id,
                    project_id=browser_id(form.get("project_id")),
                    credits_amount=amount,
                    request_id=request_id,
                )
                and "allocated"
            ),
            success="Credits set aside for the project.",
            form_token=token,
            purpose="pool_allocate",
        )

    @rx.event
    async def return_pool(self, project_id: int | str, form_token: str = ""):
        """Return a pool. The button sends the page's form token: a double click returns once
        (the token is also the ledger entry's idempotency key)."""
        token = form_submissions.form_token_clean(form_token)
        request_id = token or uuid.uuid4().hex
        self.portal_note = ""
        self.pending = "pool_return"
        yield
        try:
            await self._act(
                Action.billing_manage,
                lambda a: (
                    billing.pool_return_credits(
                        session=a.session,
                        actor=a.user,
                        org_id=a.org.id,
                        project_id=browser_id(project_id),
                        request_id=request_id,
                    )
                    and "returned"
                ),
                success="Pooled credits returned to the general balance.",
                form_token=token,
                purpose="pool_return",
            )
        finally:
            self.pending = ""

    # --- display ----------------------------------------------------------------------------

    @rx.var
    def top_up_quote(self) -> str:
        try:
            count = int(self.blocks)
        except ValueError:
            return f"Enter a whole number of blocks (1 to {self.max_blocks:,})."
        if not 1 <= count <= self.max_blocks:
            return f"Enter a whole number of blocks (1 to {self.max_blocks:,})."
        total = count * self._block_credits
        price = count * self._block_price_cents
        return (
            f"{count} block{'s' if count != 1 else ''} × {self._block_credits} credits = "
            f"{total:,} credits for ${price / 100:,.2f}"
        )


# --- a receipt of local payment mode ----------------------------------------------------------

MAX_INVOICE_ID_CHARS = 255


class ReceiptState(OrgPageState, rx.State):
    """/org/<slug>/billing/receipt?invoice=<id>: one invoice as a receipt (read access)."""

    _invoice_id: str = ""
    ready: bool = False
    org_name: str = ""
    invoice_id: str = ""
    date: str = ""
    kind: str = ""
    status: str = ""
    amount: str = ""
    credits: str = ""
    period: str = ""
    local: bool = False
    billing_path: str = ""

    def _view_action(self) -> Action:
        return Action.billing_view

    def _refresh(self, acting: Acting) -> None:
        self.billing_path = routes.org_billing(acting.org.slug)
        try:
            receipt = billing.invoice_receipt(
                session=acting.session, org_id=acting.org.id, invoice_id=self._invoice_id
            )
        except DomainError as error:
            self.ready = False
            self._show_error(acting.session, error)
            return
        self.org_name, self.invoice_id, self.date = (
            receipt.org_name,
            receipt.invoice_id,
            receipt.date,
        )
        self.kind, self.status, self.amount = receipt.kind, receipt.status, receipt.amount
        self.credits, self.period, self.local = receipt.credits, receipt.period, receipt.local
        self.ready = True

    @rx.event
    async def load(self):
        self.ready = False
        self._invoice_id = bounded(
            self.router.url.query_parameters.get("invoice", ""), MAX_INVOICE_ID_CHARS
        )
        opened = await self._open()
        return opened.elsewhere
