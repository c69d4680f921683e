"""/dev/outbox: mail the app would have sent, when no SMTP server is configured (development only).

State: state/dev_outbox.py.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.layout import page_header
from state.dev_outbox import OutboxRow, OutboxState


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
                    OutboxState.refused,
                    rx.callout(
                        OutboxState.refused_message,
                        icon="lock",
                        color_scheme="amber",
                        role="alert",
                    ),
                    rx.cond(
                        OutboxState.mails.length() > 0,
                        rx.vstack(rx.foreach(OutboxState.mails, _mail), spacing="3", width="100%"),
                        rx.text(
                            "No mail yet. Register an account or invite a teammate and the message appears here."
                        ),
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
