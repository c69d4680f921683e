"""/org/<slug>/settings/logs: the API request log (owners and admins).

Search by request id finds a request on any date still kept; filters (status, error code,
model, key) look at the retention window. Each row names its run and the credit ledger entries
of that run. CSV export of the filtered rows. Rows are kept `LOG_RETENTION_DAYS` days (a job).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import reflex as rx

from core import routes
from services import api_keys as key_service
from services import api_requests, policy, storage
from services import credits as credit_service
from services import models_registry as registry
from state.navigation import backend_url
from state.org_page import Acting, OrgPageState, bounded, form_fields

Action = policy.Action
PAGE_ROWS = 100
ALL = "all"
STATUS_CHOICES: tuple[tuple[str, str], ...] = (
    (ALL, "Any status"),
    ("success", "Succeeded"),
    ("error", "Failed"),
)


@dataclass
class LogRowView:
    request_id: str
    when: str
    route: str
    status: str
    ok: bool
    error_code: str
    model: str
    key: str
    generation: str
    credits: str
    ledger: str
    stream: str
    duration: str


@dataclass
class Choice:
    value: str
    label: str


@dataclass
class LedgerLineView:
    kind: str
    amount: str  # signed, as the balance saw it: "-4", "+4"
    when: str
    memo: str


@dataclass
class RunDetailView:
    """One request's run and its ledger entries (the drill-down)."""

    request_id: str = ""
    run_id: str = ""
    run_status: str = ""
    run_model: str = ""
    run_steps: str = ""
    run_failure: str = ""
    run_note: str = ""  # why there is no run to show
    net: str = ""
    asset_href: str = ""
    report_href: str = ""
    ledger: list[LedgerLineView] = field(default_factory=list)


def _signed_credits(millicredits: int) -> str:
    sign = "+" if millicredits > 0 else "-" if millicredits < 0 else ""
    return f"{sign}{credit_service.format_credits(abs(millicredits))}"


def _detail_view(detail: api_requests.LogDetail, slug: str) -> RunDetailView:
    view = detail.generation
    ledger = [
        LedgerLineView(
            kind=line.kind,
            amount=_signed_credits(line.amount_millicredits),
            when=f"{line.created_at:%Y-%m-%d %H:%M:%S} UTC",
            memo=line.memo,
        )
        for line in detail.ledger
    ]
    net = f"{credit_service.format_credits(max(detail.net_millicredits, 0))} credits"
    if view is None:
        note = (
            "This request started no run (it was refused or only read data)."
            if not detail.ledger
            else "Its run is no longer available; its ledger entries are below."
        )
        return RunDetailView(
            request_id=detail.request_id, run_note=note, net=net if ledger else "", ledger=ledger
        )
    asset_href = ""
    shown = [a for a in view.assets if a.kind != "text"] or list(view.assets)
    if shown:
        asset_href = backend_url(storage.asset_path(storage.asset_link_sign(shown[0].public_id)))
    steps = " → ".join(
        f"{step.status} {step.at:%H:%M:%S}" if step.at else step.status for step in view.steps
    )
    failure = f"{view.failure_code}: {view.failure_reason or ''}" if view.failure_code else ""
    return RunDetailView(
        request_id=detail.request_id,
        run_id=view.public_id,
        run_status=view.status,
        run_model=view.model_name or view.model_key,
        run_steps=steps,
        run_failure=failure.strip().rstrip(":"),
        net=net,
        asset_href=asset_href,
        report_href=routes.support_new(
            slug,
            generation_id=view.public_id,
            request_id=detail.request_id,
            model=view.model_key,
            error_code=view.failure_code or "",
        ),
        ledger=ledger,
    )


def _view(row: api_requests.LogRow) -> LogRowView:
    return LogRowView(
        request_id=row.request_id,
        when=f"{row.created_at:%Y-%m-%d %H:%M:%S} UTC",
        route=f"{row.method} {row.path}",
        status=str(row.status_code),
        ok=row.status_code < 400,
        error_code=row.error_code or "—",
        model=row.model_key or "—",
        key=f"{row.key_name} ({row.key_prefix}…)" if row.key_prefix else "—",
        generation=row.generation_public_id or "—",
        credits=credit_service.format_credits(row.millicredits),
        ledger=", ".join(row.ledger_entries) or "—",
        stream="Streamed" if row.stream else "",
        duration=f"{row.duration_ms:,} ms",
    )


class ApiLogsState(OrgPageState, rx.State):
    rows: list[LogRowView] = []
    _searched_request_id: str = ""
    status_filter: str = ALL
    code_filter: str = ALL
    model_filter: str = ALL
    key_filter: str = ALL
    code_choices: list[Choice] = []
    model_choices: list[Choice] = []
    key_choices: list[Choice] = []
    org_address: str = ""
    retention_days: int = api_requests.LOG_RETENTION_DAYS
    detail_open: bool = False
    detail: RunDetailView = rx.field(default_factory=RunDetailView)

    @rx.var
    def status_choices(self) -> list[Choice]:
        return [Choice(value, label) for value, label in STATUS_CHOICES]

    @rx.var
    def api_settings_href(self) -> str:
        return routes.org_subpage(self.org_address, "settings", "api") if self.org_address else ""

    @rx.var
    def studio_href(self) -> str:
        return routes.org_area(self.org_address, "studio") if self.org_address else ""

    @rx.var
    def billing_href(self) -> str:
        return routes.org_billing(self.org_address) if self.org_address else ""

    def _view_action(self) -> policy.Action:
        return Action.api_keys_manage

    def _filters(self) -> api_requests.LogFilters:
        key_id = int(self.key_filter) if self.key_filter.isdigit() else None
        return api_requests.LogFilters(
            request_id=self._searched_request_id,
            status="" if self.status_filter == ALL else self.status_filter,
            code="" if self.code_filter == ALL else self.code_filter,
            model="" if self.model_filter == ALL else self.model_filter,
            key_id=key_id,
        )

    def _refresh(self, acting: Acting) -> None:
        session, org = acting.session, acting.org
        self.org_address = org.slug
        rows = api_requests.request_logs_search(
            session=session,
            actor_user=acting.user,
            org_id=org.id,
            filters=self._filters(),
            limit=PAGE_ROWS,
        )
        self.rows = [_view(row) for row in rows]
        self.code_choices = [Choice(ALL, "Any error code")] + [
            Choice(code, code) for code in api_requests.log_codes(session=session, org_id=org.id)
        ]
        keys = key_service.api_keys_list(session=session, actor_user=acting.user, org_id=org.id)
        self.key_choices = [Choice(ALL, "Any key")] + [
            Choice(str(k.id), f"{k.name} ({k.prefix}…)") for k in keys
        ]
        self.model_choices = [Choice(ALL, "Any model")] + [
            Choice(item.key, item.key)
            for item in registry.models_for_org(session=session, org_id=org.id)
        ]

    def _forget(self) -> None:
        self.rows, self.code_choices, self.key_choices, self.model_choices = [], [], [], []
        self.org_address = ""
        self.detail_open, self.detail = False, RunDetailView()

    # --- events ----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        self._searched_request_id = ""
        self.status_filter = self.code_filter = self.model_filter = self.key_filter = ALL
        opened = await self._open()
        return opened.elsewhere

    def _pick(self, value: Any, choices: list[Choice]) -> str:
        if not self.org_address:  # a tab the page was never shown to filters nothing
            return ALL
        return value if isinstance(value, str) and value in {c.value for c in choices} else ALL

    @rx.event
    async def set_status_filter(self, value: str):
        self.status_filter = self._pick(value, self.status_choices)
        await self._load()

    @rx.event
    async def set_code_filter(self, value: str):
        self.code_filter = self._pick(value, self.code_choices)
        await self._load()

    @rx.event
    async def set_model_filter(self, value: str):
        self.model_filter = self._pick(value, self.model_choices)
        await self._load()

    @rx.event
    async def set_key_filter(self, value: str):
        self.key_filter = self._pick(value, self.key_choices)
        await self._load()

    @rx.event
    async def search(self, form: dict):
        self._searched_request_id = bounded(form_fields(form).get("request_id", ""), 64).strip()
        if await self._load() is None:
            self._searched_request_id = ""
            return
        if self._searched_request_id and not self.rows and not self.error:
            self.notice = (
                f"No request {self._searched_request_id} in this organization's log. Check the id "
                f"(it starts with req_); requests are kept {self.retention_days} days."
            )

    @rx.event
    async def clear_search(self):
        self._searched_request_id = ""
        self.status_filter = self.code_filter = self.model_filter = self.key_filter = ALL
        await self._load()

    @rx.event
    async def open_detail(self, request_id: str):
        """The run and ledger entries of one request of this organization's log."""
        wanted = bounded(request_id, 64).strip()

        def read(acting: Acting) -> RunDetailView:
            detail = api_requests.request_log_detail(
                session=acting.session,
                actor_user=acting.user,
                org_id=acting.org.id,
                request_id=wanted,
            )
            return _detail_view(detail, acting.org.slug)

        shown = await self._act(Action.api_keys_manage, read, refresh=False)
        if isinstance(shown, RunDetailView):
            self.detail, self.detail_open = shown, True
        else:
            self.detail, self.detail_open = RunDetailView(), False

    @rx.event
    def detail_open_change(self, is_open: bool):
        """Closing the drill-down (Esc, Close, outside click); it opens only via open_detail."""
        if is_open is not True:
            self.detail_open, self.detail = False, RunDetailView()

    @rx.event
    async def download_csv(self):
        filters = self._filters()

        def export(acting: Acting) -> tuple[str, str]:
            data = api_requests.request_logs_csv(
                session=acting.session,
                actor_user=acting.user,
                org_id=acting.org.id,
                filters=filters,
            )
            return acting.org.slug, data

        exported = await self._act(Action.api_keys_manage, export, refresh=False)
        if not isinstance(exported, tuple):
            return None
        slug, data = exported
        return rx.download(data=data, filename=f"{slug}-api-requests.csv", mime_type="text/csv")
