"""Plan: the current plan and its status, the billing-profile prompt, and the plans to compare."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import callout_box
from creative_studio.components.page import card, muted, status_badge
from state.billing import OWNER_ONLY_LINE, BillingState, PlanRow


def local_badge() -> rx.Component:
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


def read_only_note() -> rx.Component:
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


def billing_profile_card() -> rx.Component:
    return rx.cond(
        BillingState.billing_profile_required,
        callout_box(
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


def _manage_billing() -> rx.Component:
    return rx.cond(
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
    )


def plan_card() -> rx.Component:
    return card(
        "Plan",
        rx.hstack(
            rx.text(BillingState.plan_name, size="6", weight="bold"),
            status_badge(BillingState.status, BillingState.status_label, default_color="red"),
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
            muted("No renewal date: this plan has no paid subscription."),
        ),
        rx.cond(
            BillingState.scheduled_change != "",
            callout_box(
                rx.text(
                    rx.text.strong(BillingState.scheduled_change),
                    ". Until then everything stays as it is; choose ",
                    BillingState.plan_name,
                    " under Compare plans to undo it.",
                ),
                icon="calendar-clock",
                color_scheme="blue",
                width="100%",
                role="status",
            ),
        ),
        rx.cond(
            ~BillingState.executable,
            rx.callout(
                BillingState.locked_reason,
                icon="circle-alert",
                color_scheme="red",
                width="100%",
            ),
        ),
        _manage_billing(),
        rx.cond(
            BillingState.portal_note != "",
            rx.callout(BillingState.portal_note, icon="info", width="100%"),
        ),
        icon="badge-check",
        spacing="3",
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
            muted(plan.seats + " seats · " + plan.projects + " projects"),
            rx.el.ul(
                rx.foreach(plan.features, lambda f: rx.el.li(rx.text(f, size="2"))),
                style={"paddingLeft": "1.1rem", "margin": 0},
            ),
            rx.cond(plan.note != "", rx.badge(plan.note, color_scheme="blue")),
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


def plans_card() -> rx.Component:
    return card(
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
                "One subscription per organization: an upgrade charges only the difference for "
                "the rest of the period; a downgrade or cancel takes effect when the paid period "
                "ends. You see the charge and the dates before anything changes.",
                size="1",
                color=rx.color("gray", 10),
            ),
        ),
        plan_change_dialog(),
        icon="layers",
        spacing="3",
    )


_DIALOG_BUTTON_WIDTH = rx.breakpoints(initial="100%", sm="auto")


def plan_change_dialog() -> rx.Component:
    """The confirmation: what is charged now, what changes when, what happens to credits."""
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(BillingState.change_title),
            rx.alert_dialog.description(
                # The description is a <p>: its lines are block spans, not paragraphs (a <p> in
                # a <p> is invalid HTML and a hydration error).
                rx.foreach(
                    BillingState.change_lines,
                    lambda line: rx.el.span(
                        line, style={"display": "block", "margin_bottom": "0.5rem"}
                    ),
                ),
                size="2",
            ),
            rx.flex(
                rx.alert_dialog.cancel(
                    rx.button(
                        "Go back",
                        variant="soft",
                        color_scheme="gray",
                        on_click=BillingState.close_plan_change,
                        width=_DIALOG_BUTTON_WIDTH,
                    )
                ),
                rx.alert_dialog.action(
                    rx.button(
                        BillingState.change_confirm,
                        on_click=BillingState.confirm_plan_change,
                        width=_DIALOG_BUTTON_WIDTH,
                        # a long label ("Switch to Starter from December 26, 2026") wraps on a phone
                        style={"whiteSpace": "normal", "height": "auto", "minHeight": "2rem"},
                    )
                ),
                direction=rx.breakpoints(initial="column-reverse", sm="row"),
                spacing="3",
                justify="end",
                margin_top="1rem",
            ),
            max_width="32rem",
        ),
        open=BillingState.change_open,
    )
