"""/org/<slug>/audit: the organization's audit log, for owners/admins and operators.

Filters by actor, action and UTC date range, CSV export of what the filters select, and
"verify integrity", which recomputes the organization's hash chain (services/audit.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import reflex as rx

from services import audit as audit_service
from services import policy
from services.errors import ValidationFailed
from state.org_page import Acting, OrgPageState, bounded, form_fields

Action = policy.Action
MAX_FILTER_CHARS = 120
PAGE_ROWS = 200
MAX_EXPORT_ROWS = audit_service.MAX_AUDIT_PAGE


@dataclass
class AuditEntryRow:
    id: int
    when: str
    actor: str
    action: str
    target: str
    details: str


def _day(text: str, label: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{label} {text!r} is not a date. Use the date picker or YYYY-MM-DD.", field=label
        ) from None


class OrgAuditState(OrgPageState, rx.State):
    entries: list[AuditEntryRow] = []
    actor_filter: str = ""
    action_filter: str = ""
    since: str = ""
    until: str = ""
    verify_ok: bool = False
    verify_message: str = ""
    org_address: str = ""
    loaded: bool = False

    def _view_action(self) -> policy.Action:
        return Action.audit_view

    def _window(self) -> tuple[datetime | None, datetime | None]:
        since, until = _day(self.since, "From"), _day(self.until, "To")
        if since and until and since > until:
            raise ValidationFailed("From must be on or before To.", field="since")
        start = datetime(since.year, since.month, since.day, tzinfo=UTC) if since else None
        end = (
            datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1)
            if until
            else None
        )
        return start, end

    def _rows(self, acting: Acting, limit: int) -> list[audit_service.AuditRow]:
        start, end = self._window()
        return audit_service.audit_search(
            session=acting.session,
            org_id=acting.org.id,
            actor=self.actor_filter,
            action=self.action_filter,
            since=start,
            until=end,
            limit=limit,
        )

    def _refresh(self, acting: Acting) -> None:
        self.org_address = acting.org.slug
        try:
            rows = self._rows(acting, PAGE_ROWS)
        except ValidationFailed:
            self.since = self.until = ""
            rows = self._rows(acting, PAGE_ROWS)
        self.entries = [
            AuditEntryRow(
                id=row.id,
                when=f"{row.at:%Y-%m-%d %H:%M:%S}",
                actor=row.actor,
                action=row.action,
                target=row.target,
                details=row.details,
            )
            for row in rows
        ]

    @rx.event
    async def load(self):
        self.actor_filter = self.action_filter = self.since = self.until = ""
        self.verify_message, self.verify_ok = "", False
        opened = await self._open()
        self.loaded = opened.acting is not None
        return opened.elsewhere

    @rx.event
    async def apply_filters(self, form: dict):
        fields = form_fields(form)
        previous = (self.actor_filter, self.action_filter, self.since, self.until)
        self.actor_filter = bounded(fields.get("actor", ""), MAX_FILTER_CHARS).strip()
        self.action_filter = bounded(fields.get("action", ""), MAX_FILTER_CHARS).strip()
        self.since = bounded(fields.get("since", ""), 20).strip()
        self.until = bounded(fields.get("until", ""), 20).strip()

        def check(acting: Acting) -> None:
            self._window()  # a malformed or reversed range is refused with its message

        if await self._act(Action.audit_view, check) is None:
            self.actor_filter, self.action_filter, self.since, self.until = previous

    @rx.event
    async def clear_filters(self):
        await self.apply_filters({})

    @rx.event
    async def export_csv(self):
        exported = await self._act(
            Action.audit_view,
            lambda acting: (
                acting.org.slug,
                audit_service.audit_csv(self._rows(acting, MAX_EXPORT_ROWS)),
            ),
            refresh=False,
        )
        if exported is None:
            return None
        slug, data = exported
        return rx.download(data=data, filename=f"{slug}-audit-log.csv", mime_type="text/csv")

    @rx.event
    async def verify(self):
        check = await self._act(
            Action.audit_view,
            lambda acting: audit_service.audit_verify(session=acting.session, org_id=acting.org.id),
            refresh=False,
        )
        if check is not None:
            self.verify_ok, self.verify_message = check.ok, check.message
