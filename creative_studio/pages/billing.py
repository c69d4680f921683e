"""Billing: plan, credits, pools, seats, usage, invoices, ledger, rates; owner-only changes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import reflex as rx
from sqlmodel import Session

from core.db import get_engine
from core import routes
from creative_studio.api.auth_routes import frontend_url
from creative_studio.components.forms import error_callout, label_for, success_callout
from creative_studio.layout import app_shell
from models.enums import LedgerEntryKind
from services import billing, credits, policy
from services.errors import DomainError, ValidationFailed
from state.session import SessionState

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


def _parse_day(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValidationFailed("Use a date like 2026-01-31.", field=field) from None


class BillingState(rx.State):
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
    block_credits: int = 10
    block_price_cents: int = 100
    max_blocks: int = 1000
    terms: str = ""
    blocks: str = "1"
    ledger: list[LedgerRow] = []
    kind_filter: str = "all"
    since: str = ""
    until: str = ""
    text_rates: list[RateRow] = []
    image_rates: list[RateRow] = []
    video_rates: list[RateRow] = []
    tool_rates: list[ToolRow] = []
    error: str = ""
    notice: str = ""
    portal_note: str = ""

    # --- helpers ---------------------------------------------------------------------------

    async def _actor(self, session: Session, action: policy.Action):
        session_state = await self.get_state(SessionState)
        user, org, actor = session_state._org_actor(session)
        policy.require(actor, action, policy.target_for(session=session, org_id=org.id))
        # A project-scoped editor must not learn about other projects (names, pools, runs).
        self._scoped_project_ids = sorted(actor.project_ids) if actor.project_scoped else None
        return user, org, actor

    def _visible(self, project_id: int | None) -> bool:
        return (
            self._scoped_project_ids is None
            or project_id is None
            or project_id in self._scoped_project_ids
        )

    def _fill(self, session: Session, org_id: int, is_owner: bool) -> None:
        overview = billing.billing_overview(session=session, org_id=org_id)
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
                i.id, i.date, i.kind, i.status, i.amount, i.credits, i.url if is_owner else ""
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
                features=list(p.features),
                current=p.current,
                purchasable=p.purchasable,
                action=(
                    "Renew "
                    if p.current
                    else "Upgrade to "
                    if p.rank > current_rank
                    else "Switch to "
                )
                + p.name,
            )
            for p in overview.plans
        ]
        terms = overview.top_up
        self.block_credits = terms.block_credits
        self.block_price_cents = terms.block_price_cents
        self.max_blocks = terms.max_blocks
        self.terms = terms.describe()
        self._fill_ledger(session, org_id)

    def _ledger_filters(self):
        if self.kind_filter not in {kind.value for kind in LedgerEntryKind}:
            self.kind_filter = "all"  # an unknown kind from the browser means "every kind"
        kinds = None if self.kind_filter in ("", "all") else [LedgerEntryKind(self.kind_filter)]
        since = _parse_day(self.since, "since")
        until = _parse_day(self.until, "until")
        if until is not None:
            until += timedelta(days=1)  # the "to" day is included
        return kinds, since, until

    def _fill_ledger(self, session: Session, org_id: int) -> None:
        kinds, since, until = self._ledger_filters()
        entries = credits.ledger_list(
            session=session,
            org_id=org_id,
            kinds=kinds,
            since=since,
            until=until,
            limit=LEDGER_PAGE_SIZE,
        )
        self.ledger = [
            LedgerRow(
                id=entry.id,
                date=entry.created_at.strftime("%Y-%m-%d %H:%M"),
                kind=KIND_LABELS.get(entry.kind, entry.kind),
                amount=("+" if entry.amount_millicredits > 0 else "")
                + credits.format_credits(entry.amount_millicredits),
                balance_after=credits.format_credits(entry.balance_after_millicredits),
                detail=entry.memo or entry.reference,
                positive=entry.amount_millicredits > 0,
            )
            for entry in entries
            if self._visible(entry.project_id)
        ]

    async def _run(self, action: policy.Action, work, success: str = ""):
        """Re-check who acts, run `work(session, user, org)`, commit, refresh, report."""
        self.error = self.notice = self.portal_note = ""
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user, org, actor = await self._actor(session, action)
                result = work(session, user, org)
                session.commit()
            except DomainError as exc:
                session.rollback()
                self.error = exc.message
                return None
            self._fill(session, org.id, actor.role is not None and actor.role.value == "owner")
        self.notice = success
        return result

    # --- events ----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        self.error = self.notice = self.portal_note = ""
        self.kind_filter, self.since, self.until, self.blocks = "all", "", "", "1"
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                _user, org, actor = await self._actor(session, policy.Action.billing_view)
            except DomainError:
                self.loaded = False
                return
            owner = policy.can(
                actor,
                policy.Action.billing_manage,
                policy.target_for(session=session, org_id=org.id),
            ).allowed
            self._fill(session, org.id, owner)
            rates, tools = billing.credit_rates(session=session)
        by_modality: dict[str, list[RateRow]] = {"text": [], "image": [], "video": []}
        for rate in rates:
            by_modality.setdefault(rate.modality, []).append(
                RateRow(rate.name, rate.rate, rate.unit, rate.min_plan)
            )
        self.text_rates = by_modality["text"]
        self.image_rates = by_modality["image"]
        self.video_rates = by_modality["video"]
        self.tool_rates = [ToolRow(t.name, t.model, t.credits) for t in tools]
        outcome = self.router.url.query_parameters.get("checkout", "")
        if outcome == "success":
            self.notice = (
                "Payment confirmed. Credits and plan changes appear here as soon as the payment "
                "provider reports them (usually within seconds)."
            )
        elif outcome == "canceled":
            self.notice = "Checkout was canceled; nothing was charged."
        self.loaded = True

    @rx.event
    def set_blocks(self, value: str):
        self.blocks = value

    @rx.event
    async def apply_filters(self, form: dict):
        self.kind_filter = str(form.get("kind", "all"))
        self.since = str(form.get("since", ""))
        self.until = str(form.get("until", ""))
        self.error = ""
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                _user, org, _actor = await self._actor(session, policy.Action.billing_view)
                self._fill_ledger(session, org.id)
            except DomainError as exc:
                self.error = exc.message

    @rx.event
    async def clear_filters(self):
        await self.apply_filters({"kind": "all", "since": "", "until": ""})
        self.kind_filter = "all"

    @rx.event
    async def export_csv(self):
        self.error = ""
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                _user, org, _actor = await self._actor(session, policy.Action.billing_view)
                if self._scoped_project_ids is not None:
                    self.error = (
                        "The ledger export covers every project of the organization, so it is "
                        "available to members with access to all projects. Ask an owner or admin."
                    )
                    return None
                kinds, since, until = self._ledger_filters()
                data = credits.ledger_csv(
                    session=session, org_id=org.id, kinds=kinds, since=since, until=until
                )
            except DomainError as exc:
                self.error = exc.message
                return None
        return rx.download(
            data=data, filename=f"{org.slug}-credit-ledger.csv", mime_type="text/csv"
        )

    async def _checkout(self, purpose: str, **kwargs):
        slug = routes.org_slug_from_path(self.router.url.path)
        billing_url = frontend_url(routes.org_billing(slug))
        checkout = await self._run(
            policy.Action.billing_manage,
            lambda s, u, o: billing.checkout_start(
                session=s, actor=u, org_id=o.id, purpose=purpose, billing_url=billing_url, **kwargs
            ),
        )
        if checkout is None:
            return None
        if checkout.url.startswith("/"):
            return rx.redirect(checkout.url)
        return rx.call_script(f"window.location.assign({json.dumps(checkout.url)})")

    @rx.event
    async def buy_credits(self, form: dict):
        return await self._checkout("top_up", blocks=str(form.get("blocks", "")).strip())

    @rx.event
    async def upgrade(self, plan_key: str):
        return await self._checkout("upgrade", plan_key=plan_key)

    @rx.event
    async def add_billing_profile(self):
        return await self._checkout("billing_profile")

    @rx.event
    async def open_portal(self):
        slug = routes.org_slug_from_path(self.router.url.path)
        url = await self._run(
            policy.Action.billing_manage,
            lambda s, u, o: billing.portal_start(
                session=s, actor=u, org_id=o.id, return_url=frontend_url(routes.org_billing(slug))
            ),
        )
        if url is None:
            if self.local_mode:
                self.portal_note, self.error = self.error, ""
            return None
        return rx.call_script(f"window.location.assign({json.dumps(url)})")

    @rx.event
    async def save_spend_controls(self, form: dict):
        await self._run(
            policy.Action.billing_manage,
            lambda s, u, o: billing.spend_controls_set(
                session=s,
                actor=u,
                org_id=o.id,
                monthly_cap_credits=form.get("monthly_cap", ""),
                low_balance_alert_credits=form.get("low_balance_alert", ""),
            ),
            "Spend controls saved.",
        )

    @rx.event
    async def allocate_pool(self, form: dict):
        request_id = uuid.uuid4().hex
        await self._run(
            policy.Action.billing_manage,
            lambda s, u, o: billing.pool_allocate_credits(
                session=s,
                actor=u,
                org_id=o.id,
                project_id=form.get("project_id"),
                credits_amount=form.get("pool_credits"),
                request_id=request_id,
            ),
            "Credits set aside for the project.",
        )

    @rx.event
    async def return_pool(self, project_id: int):
        request_id = uuid.uuid4().hex
        await self._run(
            policy.Action.billing_manage,
            lambda s, u, o: billing.pool_return_credits(
                session=s, actor=u, org_id=o.id, project_id=project_id, request_id=request_id
            ),
            "Pooled credits returned to the general balance.",
        )

    # --- display ---------------------------------------------------------------------------

    @rx.var
    def top_up_quote(self) -> str:
        try:
            count = int(self.blocks)
        except ValueError:
            return f"Enter a whole number of blocks (1 to {self.max_blocks:,})."
        if not 1 <= count <= self.max_blocks:
            return f"Enter a whole number of blocks (1 to {self.max_blocks:,})."
        total = count * self.block_credits
        price = count * self.block_price_cents
        return (
            f"{count} block{'s' if count != 1 else ''} × {self.block_credits} credits = "
            f"{total:,} credits for ${price / 100:,.2f}"
        )


# --- components -----------------------------------------------------------------------------


def _card(title: str, *children, icon: str = "", **props) -> rx.Component:
    heading = rx.hstack(
        rx.icon(icon, size=18, aria_hidden="true") if icon else rx.fragment(),
        rx.heading(title, size="4", as_="h2"),
        align="center",
        spacing="2",
    )
    return rx.card(rx.vstack(heading, *children, spacing="3", width="100%"), width="100%", **props)


def _stat(label: str, value, hint=None) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", color=rx.color("gray", 11)),
        rx.text(value, size="6", weight="bold"),
        rx.text(hint, size="1", color=rx.color("gray", 10)) if hint is not None else rx.fragment(),
        spacing="1",
        min_width="0",
        role="group",
        aria_label=label,
    )


def _local_badge() -> rx.Component:
    return rx.cond(
        BillingState.local_mode,
        rx.badge(
            rx.icon("flask-conical", size=14),
            "Local payment mode",
            color_scheme="amber",
            size="2",
            variant="surface",
        ),
    )


def _read_only_note() -> rx.Component:
    return rx.cond(
        ~BillingState.is_owner,
        rx.callout(
            OWNER_ONLY_LINE + " You can see the plan, credits and history here.",
            icon="lock",
            color_scheme="gray",
            width="100%",
            role="note",
        ),
    )


def _status_badge() -> rx.Component:
    return rx.badge(
        BillingState.status_label,
        color_scheme=rx.match(
            BillingState.status,
            ("active", "green"),
            ("trialing", "green"),
            ("past_due", "amber"),
            "red",
        ),
        size="2",
    )


def _plan_card() -> rx.Component:
    return _card(
        "Plan",
        rx.hstack(
            rx.text(BillingState.plan_name, size="6", weight="bold"),
            _status_badge(),
            rx.text(BillingState.plan_price, color=rx.color("gray", 11)),
            align="center",
            spacing="3",
            wrap="wrap",
        ),
        rx.cond(
            BillingState.renewal != "",
            rx.text(
                rx.cond(BillingState.cancel_at_period_end, "Ends on ", "Renews on "),
                rx.text.strong(BillingState.renewal),
                ". Monthly credits are added when each invoice is paid.",
                size="2",
            ),
            rx.text(
                "No renewal date: this plan has no paid subscription.",
                size="2",
                color=rx.color("gray", 11),
            ),
        ),
        rx.cond(
            ~BillingState.executable,
            rx.callout(
                "The subscription has expired or is unpaid, so tools are paused. Everything stays "
                "readable. Renew by choosing a plan below.",
                icon="circle-alert",
                color_scheme="red",
                width="100%",
            ),
        ),
        rx.cond(
            BillingState.is_owner,
            rx.hstack(
                rx.button(
                    rx.icon("external-link", size=16),
                    "Manage billing",
                    variant="soft",
                    on_click=BillingState.open_portal,
                ),
                rx.cond(
                    BillingState.local_mode,
                    rx.text(
                        "Manage billing opens Stripe's Customer Portal, which is not available "
                        "in local payment mode.",
                        size="1",
                        color=rx.color("gray", 10),
                    ),
                ),
                align="center",
                spacing="3",
                wrap="wrap",
            ),
        ),
        rx.cond(
            BillingState.portal_note != "",
            rx.callout(BillingState.portal_note, icon="info", width="100%"),
        ),
        icon="badge-check",
    )


def _billing_profile_card() -> rx.Component:
    return rx.cond(
        BillingState.billing_profile_required,
        rx.callout(
            rx.vstack(
                rx.text(
                    "Add a billing profile before using models (Free plan). Nothing is charged "
                    "until you buy credits or upgrade.",
                ),
                rx.cond(
                    BillingState.is_owner,
                    rx.button(
                        "Add billing profile", on_click=BillingState.add_billing_profile, size="2"
                    ),
                    rx.text("Ask the organization owner to add it.", size="2"),
                ),
                spacing="2",
            ),
            icon="credit-card",
            color_scheme="amber",
            width="100%",
        ),
    )


def _credits_card() -> rx.Component:
    return _card(
        "Credits",
        rx.grid(
            _stat("Balance", BillingState.balance, "credits"),
            _stat("In project pools", BillingState.pooled, "part of the balance"),
            _stat("Unpooled", BillingState.available, "usable by any project"),
            _stat("Used this cycle", BillingState.usage, "since " + BillingState.cycle_start),
            _stat("Seats", BillingState.seats, "members and pending invites"),
            columns=rx.breakpoints(initial="2", sm="3"),
            spacing="4",
            width="100%",
        ),
        rx.cond(
            BillingState.low_balance,
            rx.callout(
                "The balance is below the low-balance alert of " + BillingState.alert + " credits.",
                icon="triangle-alert",
                color_scheme="amber",
                width="100%",
            ),
        ),
        icon="coins",
    )


def _top_up_card() -> rx.Component:
    return _card(
        "Add credits",
        rx.text(BillingState.terms, size="2"),
        rx.cond(
            BillingState.is_owner,
            rx.form(
                rx.vstack(
                    rx.hstack(
                        rx.vstack(
                            label_for("Number of blocks (10 credits each)", "top-up-blocks"),
                            rx.input(
                                id="top-up-blocks",
                                name="blocks",
                                type="number",
                                min="1",
                                max=BillingState.max_blocks,
                                step="1",
                                value=BillingState.blocks,
                                on_change=BillingState.set_blocks,
                                size="3",
                                width="10rem",
                            ),
                            spacing="1",
                        ),
                        rx.button("Continue to checkout", type="submit", size="3"),
                        align="end",
                        spacing="3",
                        wrap="wrap",
                    ),
                    rx.text(
                        BillingState.top_up_quote, size="2", weight="medium", aria_live="polite"
                    ),
                    spacing="2",
                ),
                on_submit=BillingState.buy_credits,
            ),
            rx.text(OWNER_ONLY_LINE, size="2", color=rx.color("gray", 11)),
        ),
        icon="circle-plus",
    )


def _plan_option(plan: PlanRow) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(plan.name, size="4", as_="h3"),
                rx.cond(plan.current, rx.badge("Current plan", color_scheme="green")),
                align="center",
                spacing="2",
            ),
            rx.text(plan.price, size="5", weight="bold"),
            rx.text(plan.monthly_credits + " credits / month", size="2"),
            rx.text(
                plan.seats + " seats · " + plan.projects + " projects",
                size="2",
                color=rx.color("gray", 11),
            ),
            rx.el.ul(
                rx.foreach(plan.features, lambda f: rx.el.li(rx.text(f, size="2"))),
                style={"paddingLeft": "1.1rem", "margin": 0},
            ),
            rx.cond(
                BillingState.is_owner & plan.purchasable,
                rx.button(
                    plan.action,
                    on_click=BillingState.upgrade(plan.key),
                    width="100%",
                    variant=rx.cond(plan.current, "soft", "solid"),
                ),
            ),
            spacing="2",
            height="100%",
        ),
        width="100%",
    )


def _plans_card() -> rx.Component:
    return _card(
        "Compare plans",
        rx.grid(
            rx.foreach(BillingState.plans, _plan_option),
            columns=rx.breakpoints(initial="1", sm="2", lg="4"),
            spacing="3",
            width="100%",
        ),
        rx.cond(
            BillingState.is_owner,
            rx.text(
                "Upgrading opens checkout; monthly credits arrive with each paid invoice.",
                size="1",
                color=rx.color("gray", 10),
            ),
        ),
        icon="layers",
    )


def _pools_card() -> rx.Component:
    return _card(
        "Project pools",
        rx.text(
            "Pools earmark part of the balance for a project; runs there draw from the pool first.",
            size="2",
            color=rx.color("gray", 11),
        ),
        rx.cond(
            BillingState.pools.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Project"),
                        rx.table.column_header_cell("Pooled credits"),
                        rx.table.column_header_cell(rx.cond(BillingState.is_owner, "Action", "")),
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        BillingState.pools,
                        lambda pool: rx.table.row(
                            rx.table.cell(pool.project_name),
                            rx.table.cell(pool.credits),
                            rx.table.cell(
                                rx.cond(
                                    BillingState.is_owner,
                                    rx.button(
                                        "Return to balance",
                                        size="1",
                                        variant="soft",
                                        on_click=BillingState.return_pool(pool.project_id),
                                        aria_label="Return pooled credits of " + pool.project_name,
                                    ),
                                )
                            ),
                        ),
                    )
                ),
                width="100%",
            ),
            rx.text(
                "No credits are pooled; every project draws from the shared balance.", size="2"
            ),
        ),
        rx.cond(
            BillingState.is_owner & (BillingState.projects.length() > 0),
            rx.form(
                rx.hstack(
                    rx.vstack(
                        label_for("Project", "pool-project"),
                        rx.el.select(
                            rx.foreach(
                                BillingState.projects,
                                lambda p: rx.el.option(p.name, value=p.id),
                            ),
                            id="pool-project",
                            name="project_id",
                            class_name="cs-native-select",
                        ),
                        spacing="1",
                    ),
                    rx.vstack(
                        label_for("Credits to set aside", "pool-credits"),
                        rx.input(
                            id="pool-credits",
                            name="pool_credits",
                            type="number",
                            min="1",
                            required=True,
                            size="3",
                            width="10rem",
                        ),
                        spacing="1",
                    ),
                    rx.button("Set aside", type="submit", size="3", variant="soft"),
                    align="end",
                    spacing="3",
                    wrap="wrap",
                ),
                on_submit=BillingState.allocate_pool,
                reset_on_submit=True,
            ),
        ),
        icon="folder-input",
    )


def _spend_controls_card() -> rx.Component:
    return _card(
        "Spend controls",
        rx.cond(
            BillingState.is_owner,
            rx.form(
                rx.vstack(
                    rx.hstack(
                        rx.vstack(
                            label_for("Monthly spend cap (credits)", "monthly-cap"),
                            rx.input(
                                id="monthly-cap",
                                name="monthly_cap",
                                type="number",
                                min="1",
                                default_value=BillingState.cap,
                                key=BillingState.cap,
                                placeholder="No cap",
                                size="3",
                                width="12rem",
                            ),
                            spacing="1",
                        ),
                        rx.vstack(
                            label_for("Low-balance alert (credits)", "low-balance-alert"),
                            rx.input(
                                id="low-balance-alert",
                                name="low_balance_alert",
                                type="number",
                                min="0",
                                default_value=BillingState.alert,
                                key=BillingState.alert,
                                placeholder="No alert",
                                size="3",
                                width="12rem",
                            ),
                            spacing="1",
                        ),
                        rx.button("Save spend controls", type="submit", size="3", variant="soft"),
                        align="end",
                        spacing="3",
                        wrap="wrap",
                    ),
                    rx.text(
                        "Leave a field empty to turn it off.", size="1", color=rx.color("gray", 10)
                    ),
                    spacing="2",
                ),
                on_submit=BillingState.save_spend_controls,
            ),
            rx.vstack(
                rx.text(
                    "Monthly spend cap: ",
                    rx.text.strong(
                        rx.cond(BillingState.cap != "", BillingState.cap + " credits", "none")
                    ),
                    size="2",
                ),
                rx.text(
                    "Low-balance alert: ",
                    rx.text.strong(
                        rx.cond(BillingState.alert != "", BillingState.alert + " credits", "none")
                    ),
                    size="2",
                ),
                spacing="1",
            ),
        ),
        icon="gauge",
    )


def _invoices_card() -> rx.Component:
    return _card(
        "Invoices and receipts",
        rx.cond(
            BillingState.invoices.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in ("Date", "What", "Status", "Amount", "Credits", "Receipt")
                        ]
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        BillingState.invoices,
                        lambda inv: rx.table.row(
                            rx.table.cell(inv.date),
                            rx.table.cell(inv.kind),
                            rx.table.cell(inv.status),
                            rx.table.cell(inv.amount),
                            rx.table.cell(inv.credits),
                            rx.table.cell(
                                rx.cond(
                                    inv.url != "",
                                    rx.link("View receipt", href=inv.url, is_external=True),
                                    rx.text(inv.id, size="1", color=rx.color("gray", 10)),
                                )
                            ),
                        ),
                    )
                ),
                width="100%",
            ),
            rx.text(
                "No invoices yet. Receipts appear here after a purchase or a paid subscription invoice.",
                size="2",
            ),
        ),
        icon="receipt",
        overflow_x="auto",
    )


def _ledger_card() -> rx.Component:
    kind_options = [rx.el.option("All kinds", value="all")] + [
        rx.el.option(label, value=kind) for kind, label in KIND_LABELS.items()
    ]
    return _card(
        "Credit history",
        rx.form(
            rx.hstack(
                rx.vstack(
                    label_for("Kind", "ledger-kind"),
                    rx.el.select(
                        *kind_options, id="ledger-kind", name="kind", class_name="cs-native-select"
                    ),
                    spacing="1",
                ),
                rx.vstack(
                    label_for("From", "ledger-since"),
                    rx.input(id="ledger-since", name="since", type="date", size="3"),
                    spacing="1",
                ),
                rx.vstack(
                    label_for("To", "ledger-until"),
                    rx.input(id="ledger-until", name="until", type="date", size="3"),
                    spacing="1",
                ),
                rx.button("Apply filters", type="submit", size="3", variant="soft"),
                rx.button(
                    rx.icon("download", size=16),
                    "Export CSV",
                    type="button",
                    size="3",
                    variant="outline",
                    on_click=BillingState.export_csv,
                ),
                align="end",
                spacing="3",
                wrap="wrap",
            ),
            on_submit=BillingState.apply_filters,
        ),
        rx.cond(
            BillingState.ledger.length() > 0,
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *[
                                rx.table.column_header_cell(h)
                                for h in (
                                    "When (UTC)",
                                    "Kind",
                                    "Credits",
                                    "Balance after",
                                    "Details",
                                )
                            ]
                        )
                    ),
                    rx.table.body(
                        rx.foreach(
                            BillingState.ledger,
                            lambda row: rx.table.row(
                                rx.table.cell(row.date, white_space="nowrap"),
                                rx.table.cell(row.kind),
                                rx.table.cell(
                                    rx.text(
                                        row.amount,
                                        color=rx.cond(
                                            row.positive,
                                            rx.color("green", 11),
                                            rx.color("gray", 12),
                                        ),
                                        weight="medium",
                                    )
                                ),
                                rx.table.cell(row.balance_after),
                                rx.table.cell(row.detail),
                            ),
                        )
                    ),
                    width="100%",
                    aria_label="Credit history",
                ),
                width="100%",
                overflow_x="auto",
            ),
            rx.text("No entries match these filters.", size="2"),
        ),
        rx.text(
            f"Showing the newest {LEDGER_PAGE_SIZE} matching entries; the CSV export has all of them.",
            size="1",
            color=rx.color("gray", 10),
        ),
        icon="history",
    )


def _rate_table(rows, unit_header: str) -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("Model"),
                rx.table.column_header_cell(unit_header),
                rx.table.column_header_cell("Minimum plan"),
            )
        ),
        rx.table.body(
            rx.foreach(
                rows,
                lambda r: rx.table.row(
                    rx.table.cell(r.name),
                    rx.table.cell(r.rate),
                    rx.table.cell(r.min_plan),
                ),
            )
        ),
        width="100%",
    )


def _rates_card() -> rx.Component:
    return _card(
        "Credit rates",
        rx.tabs.root(
            rx.tabs.list(
                rx.tabs.trigger("Text", value="text"),
                rx.tabs.trigger("Image", value="image"),
                rx.tabs.trigger("Video", value="video"),
                rx.tabs.trigger("Tools", value="tools"),
            ),
            rx.tabs.content(
                _rate_table(BillingState.text_rates, "Credits per 1K tokens"),
                value="text",
                padding_top="0.75rem",
            ),
            rx.tabs.content(
                _rate_table(BillingState.image_rates, "Credits per image"),
                value="image",
                padding_top="0.75rem",
            ),
            rx.tabs.content(
                _rate_table(BillingState.video_rates, "Credits per second"),
                value="video",
                padding_top="0.75rem",
            ),
            rx.tabs.content(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Tool"),
                            rx.table.column_header_cell("Default model"),
                            rx.table.column_header_cell("Credits per standard run"),
                        )
                    ),
                    rx.table.body(
                        rx.foreach(
                            BillingState.tool_rates,
                            lambda t: rx.table.row(
                                rx.table.cell(t.name),
                                rx.table.cell(t.model),
                                rx.table.cell(t.credits),
                            ),
                        )
                    ),
                    width="100%",
                ),
                value="tools",
                padding_top="0.75rem",
            ),
            default_value="text",
            width="100%",
        ),
        icon="tags",
    )


NATIVE_SELECT_CSS = """
.cs-native-select { height: var(--space-7); min-width: 12rem; padding: 0 0.5rem; border-radius: var(--radius-2);
  border: 1px solid var(--gray-7); background: var(--color-surface); color: var(--gray-12); font-size: var(--font-size-2); }
"""


def billing_content() -> rx.Component:
    return rx.vstack(
        rx.el.style(NATIVE_SELECT_CSS),
        error_callout(BillingState.error),
        success_callout(BillingState.notice),
        _read_only_note(),
        _billing_profile_card(),
        rx.grid(
            _plan_card(),
            _credits_card(),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        _top_up_card(),
        _plans_card(),
        rx.grid(
            _pools_card(),
            _spend_controls_card(),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        _invoices_card(),
        _ledger_card(),
        _rates_card(),
        spacing="4",
        width="100%",
    )


@rx.page(
    route=f"/org/[{routes.ORG_ROUTE_ARG}]/billing",
    title="Billing · Creative Studio",
    on_load=[SessionState.load_org, BillingState.load],
)
def billing_page() -> rx.Component:
    return app_shell(
        "billing",
        "Billing",
        "Plan, credits, invoices and spend controls.",
        rx.cond(BillingState.loaded, billing_content(), rx.fragment()),
        action=_local_badge(),
    )
