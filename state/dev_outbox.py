"""/dev/outbox: mail the app would have sent, when no SMTP server is configured (development only)."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from core import db
from core.settings import get_settings
from services.mail import outbox_list


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

    @rx.event
    def load(self):
        settings = get_settings()
        # Only a development server that sends no mail shows it: the bodies hold one-time links.
        self.available = not settings.is_production and settings.mail_mode == "outbox"
        if not self.available:
            self.mails = []
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
