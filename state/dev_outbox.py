"""/dev/outbox: mail the app would have sent, when no SMTP server is configured (development only).

The mail holds one-time links (password resets, invitations, verification), so even on a
development server the page opens only for a request from this machine (the browser's
connection comes from a loopback address and no proxy forwarded it) or for a signed-in
platform operator; anyone else is told why and what to do instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import reflex as rx

from core import db
from core.settings import get_settings
from services import policy
from services.mail import outbox_list
from state.session import SessionState

# A reverse proxy or tunnel on this machine makes every visitor look local; these headers say
# the request came through one, so it is not treated as local.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")

REFUSED_MESSAGE = (
    "The development outbox is closed to this request. It shows one-time links (password "
    "resets, invitations, email verification), so it opens only in a browser on the machine "
    "that runs the server (http://localhost) or for a signed-in platform operator. Open it "
    "on that machine, or sign in with an operator account and reload this page."
)


def request_is_local(client_ip: str, headers: Mapping[str, str]) -> bool:
    """True for a connection from a loopback address that no proxy forwarded."""
    if any(headers.get(name) for name in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address((client_ip or "").strip().strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


@dataclass
class OutboxRow:
    id: int
    to_address: str
    subject: str
    body_text: str
    created_at: str
    delivery: str


class OutboxState(rx.State):
    mails: list[OutboxRow] = []
    available: bool = False
    # Available here, but not to this request (not local, not an operator): says why.
    refused: bool = False
    refused_message: str = ""

    async def _allowed(self) -> bool:
        headers = {k.lower(): v for k, v in self.router.headers.raw_headers.items()}
        if request_is_local(self.router.session.client_ip, headers):
            return True
        session_state = await self.get_state(SessionState)
        with db.session_scope() as session:
            user = session_state._current_user(session)
            if user is None:
                return False
            actor = policy.actor_for(session=session, user=user, org_id=None)
            return policy.can(actor, policy.Action.operator_access, policy.Target()).allowed

    @rx.event
    async def load(self):
        settings = get_settings()
        # Only a development server that sends no mail shows it: the bodies hold one-time links.
        self.available = not settings.is_production and settings.mail_mode == "outbox"
        self.mails = []
        self.refused, self.refused_message = False, ""
        if not self.available:
            return
        if not await self._allowed():
            self.refused, self.refused_message = True, REFUSED_MESSAGE
            return
        with db.new_session() as session:
            self.mails = [
                OutboxRow(
                    id=row.id,
                    to_address=row.to_address,
                    subject=row.subject,
                    body_text=row.body_text,
                    created_at=row.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    delivery=row.delivery,
                )
                for row in outbox_list(session=session, limit=50)
            ]
