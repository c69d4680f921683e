"""/status (public) and the in-app incident banner.

The status page shows only what is public: component levels with their reasons, and
incidents meant for everyone (incidents aimed at some organizations reach only their members,
through the banner).
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from core import db
from services import status as status_service
from services.errors import DomainError
from state.session import SessionState

LEVEL_LABELS = {
    "operational": "Operational",
    "degraded": "Degraded",
    "outage": "Outage",
}
STATUS_LABELS = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
}


@dataclass
class ComponentRow:
    key: str
    name: str
    level: str
    label: str
    reason: str


@dataclass
class UpdateRow:
    status: str
    body: str
    at: str


@dataclass
class IncidentRow:
    incident_id: int
    title: str
    status: str
    status_label: str
    impact: str
    components: str
    started: str
    resolved: str
    updates: list[UpdateRow]


def component_rows(platform: status_service.PlatformStatus) -> list[ComponentRow]:
    return [
        ComponentRow(
            key=c.key,
            name=c.name,
            level=c.level,
            label=LEVEL_LABELS[c.level],
            reason=" ".join(c.reasons[:3]),
        )
        for c in platform.components
    ]


def incident_rows(session, incidents) -> list[IncidentRow]:
    updates = status_service.incident_updates(
        session=session, incident_ids=[i.id for i in incidents]
    )
    return [
        IncidentRow(
            incident_id=i.id,
            title=i.title,
            status=i.status,
            status_label=STATUS_LABELS.get(i.status, i.status),
            impact=i.impact,
            components=", ".join(status_service.COMPONENT_NAMES.get(k, k) for k in i.components),
            started=status_service.fmt_utc(i.created_at),
            resolved=status_service.fmt_utc(i.resolved_at),
            updates=[
                UpdateRow(
                    STATUS_LABELS.get(u.status, u.status),
                    u.body,
                    status_service.fmt_utc(u.created_at),
                )
                for u in updates.get(i.id, [])
            ],
        )
        for i in incidents
    ]


class StatusState(rx.State):
    headline: str = ""
    level: str = "operational"
    components: list[ComponentRow] = []
    open_incidents: list[IncidentRow] = []
    past_incidents: list[IncidentRow] = []
    checked_at: str = ""

    @rx.event
    def load(self):
        from core.clock import utcnow

        with db.session_scope() as session:
            platform = status_service.platform_status(session=session)
            public = [i for i in status_service.incidents_history(session=session) if not i.org_ids]
            rows = incident_rows(session, public)
        self.headline, self.level = platform.headline, platform.level
        self.components = component_rows(platform)
        self.open_incidents = [r for r in rows if r.status != "resolved"]
        self.past_incidents = [r for r in rows if r.status == "resolved"]
        self.checked_at = status_service.fmt_utc(utcnow())


class IncidentBannerState(rx.State):
    """The banner at the top of every org page while an incident reaches that organization."""

    banner_title: str = ""
    banner_text: str = ""

    @rx.event
    async def load(self):
        session_state = await self.get_state(SessionState)
        with db.session_scope() as session:
            try:
                _user, org, _actor = session_state._org_actor(session)
            except DomainError:
                self.banner_title = self.banner_text = ""
                return
            incidents = status_service.incidents_open(session=session, org_id=org.id)
        if not incidents:
            self.banner_title = self.banner_text = ""
            return
        first = incidents[0]
        more = f" (and {len(incidents) - 1} more)" if len(incidents) > 1 else ""
        self.banner_title = f"{first.title}{more}"
        names = ", ".join(status_service.COMPONENT_NAMES.get(k, k) for k in first.components)
        self.banner_text = (
            f"{STATUS_LABELS.get(first.status, first.status)}: affects {names}. "
            "Follow updates on the status page."
        )
