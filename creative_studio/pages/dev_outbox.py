"""/dev/outbox: mail the app would have sent, when no SMTP server is configured (development only)."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx
from sqlmodel import Session, select

from core.db import get_engine
from core.settings import get_settings
from core import routes
from creative_studio.layout import page_header
from models import OutboxMail


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
        with Session(get_engine()) as session:
            rows = session.exec(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(50)).all()
            self.mails = [
                OutboxRow(
                    id=row.id,
                    to_address=row.to_address,
                    subject=row.subject,
                    body_text=row.body_text,
                    created_at=row.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    delivery=row.delivery,
                )
                for row in rows
            ]


def _mail(mail: OutboxRow) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(mail.subject, weight="bold"),
                rx.spacer(),
                rx.badge(mail.delivery),
                width="100%",
            ),
            rx.text(
                "To: ",
                mail.to_address,
                " · ",
                mail.created_at,
                size="1",
                color=rx.color("gray", 10),
            ),
            rx.el.pre(
                mail.body_text,
                style={"white_space": "pre-wrap", "font_size": "0.85rem", "margin": 0},
            ),
            spacing="2",
            align="start",
        ),
        width="100%",
        aria_label=mail.subject,
    )


@rx.page(
    route=routes.DEV_OUTBOX, title="Development outbox · Creative Studio", on_load=OutboxState.load
)
def dev_outbox() -> rx.Component:
    return rx.box(
        rx.vstack(
            page_header(
                "Development outbox",
                "Mail is shown here because no SMTP server is configured (SMTP_HOST). Newest first.",
            ),
            rx.cond(
                OutboxState.available,
                rx.cond(
                    OutboxState.mails.length() > 0,
                    rx.vstack(rx.foreach(OutboxState.mails, _mail), spacing="3", width="100%"),
                    rx.text(
                        "No mail yet. Register an account or invite a teammate and the message appears here."
                    ),
                ),
                rx.callout(
                    "The outbox exists only on a development server without SMTP; this one sends real mail.",
                    icon="info",
                ),
            ),
            spacing="5",
            max_width="48rem",
            width="100%",
        ),
        padding="2rem",
    )
