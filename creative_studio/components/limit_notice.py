"""A plan guardrail that fired (or is about to): name the limit, its value, and the way out."""

from __future__ import annotations

import reflex as rx


def limit_notice(notice, billing_href, *, role: str = "alert") -> rx.Component:
    """Render a LimitNotice (a state var or a plain value) with a link to Billing.

    Args:
        notice: a `LimitNotice` var; nothing is shown when its `limit` is "".
        billing_href: /org/<slug>/billing (a str or a Var).
        role: "alert" after an action was refused, "status" when shown ahead of time.
    """
    return rx.cond(
        notice.limit != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("gauge")),
            rx.vstack(
                rx.text(notice.label, " limit reached", weight="bold", size="2"),
                rx.text(
                    "Your ",
                    rx.text.strong(notice.plan_name),
                    " plan allows ",
                    rx.text.strong(notice.allowed),
                    " ",
                    notice.unit,
                    "; you are using ",
                    rx.text.strong(notice.used),
                    ".",
                    size="2",
                ),
                rx.cond(notice.message != "", rx.text(notice.message, size="2")),
                rx.link(
                    rx.hstack(
                        rx.icon("arrow-up-right", size=14),
                        rx.text("Upgrade in Billing"),
                        align="center",
                        spacing="1",
                    ),
                    href=billing_href,
                    size="2",
                    weight="medium",
                ),
                spacing="1",
                align="start",
            ),
            color_scheme="amber",
            role=role,
            width="100%",
        ),
    )
