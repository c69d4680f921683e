"""Form pieces with visible, associated labels and an error line per field."""

from __future__ import annotations

import reflex as rx
from reflex.vars.base import Var

from state.org_page import OrgPageState

# Longest text a field takes unless the caller says otherwise (one over the longest address
# and password the services accept, so an over-long paste is refused with their message;
# names and titles are far shorter). The services still check their own limits.
FIELD_MAX_LENGTH = {"email": 321, "password": 129}
TEXT_FIELD_MAX_LENGTH = 200


def field(
    label: str,
    name: str,
    type_: str = "text",
    autocomplete: str = "off",
    hint: str = "",
    field_id: str | None = None,
    **props,
) -> rx.Component:
    """A labelled input; `field_id` when the same name appears in several forms on a page."""
    field_id = field_id or name
    props.setdefault("max_length", FIELD_MAX_LENGTH.get(type_, TEXT_FIELD_MAX_LENGTH))
    return rx.vstack(
        label_for(label, field_id),
        rx.input(
            id=field_id,
            name=name,
            type=type_,
            auto_complete=autocomplete,
            width="100%",
            size="3",
            **props,
        ),
        rx.text(hint, size="1", color=rx.color("gray", 10)) if hint else rx.fragment(),
        spacing="1",
        width="100%",
    )


def label_for(text, field_id: str, size: str = "2", weight: str = "medium") -> rx.Component:
    """A real <label for=...> so the input is named by its label (screen readers, tests)."""
    return rx.el.label(rx.text(text, size=size, weight=weight), html_for=field_id)


def _org_page_state(message):
    """The org page State whose `error` this is (every org page shows its error through
    `error_callout(S.error)`), or None for other messages and pages."""
    if not isinstance(message, Var):
        return None
    data = message._get_all_var_data()
    if data is None or not data.state:
        return None
    try:
        state = rx.State.get_class_substate(data.state)
    except (ValueError, KeyError, AttributeError):
        return None
    return state if issubclass(state, OrgPageState) else None


def error_callout(message) -> rx.Component:
    """An error message. On an org page an error with a code also shows the code and a
    "Report this" link to Contact support filled in with the code and the UTC time."""
    state = _org_page_state(message)
    if state is None:
        return rx.cond(
            message != "",
            rx.callout(
                message, icon="triangle-alert", color_scheme="red", role="alert", width="100%"
            ),
        )
    return rx.cond(
        message != "",
        callout_box(
            rx.text(message, size="2"),
            rx.cond(
                state.report_href != "",
                rx.text(
                    "Error code ",
                    rx.code(state.error_code),
                    " · ",
                    rx.link(
                        "Report this",
                        href=state.report_href,
                        aria_label="Report this error to support",
                        weight="medium",
                    ),
                    size="2",
                    margin_top="0.25rem",
                ),
            ),
            icon="triangle-alert",
            color_scheme="red",
            role="alert",
            width="100%",
        ),
    )


def success_callout(message) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="circle-check", color_scheme="green", role="status", width="100%"),
    )


def token_input(token) -> rx.Component:
    """The form's one-time token (a state's `form_token`): a retried submit acts once."""
    return rx.el.input(type="hidden", name="form_token", value=token)


def submit_button(*children, pending, **props) -> rx.Component:
    """A submit button that shows a spinner and takes no second click while `pending`."""
    return rx.button(*children, type="submit", loading=pending, **props)


def callout_box(*children, icon: str = "info", **props) -> rx.Component:
    """A callout whose content holds its own text blocks. (`rx.callout(child)` wraps the child
    in one <p>, so a `rx.text` inside makes a <p> in a <p>: a hydration error.)"""
    return rx.callout.root(
        rx.callout.icon(rx.icon(icon)),
        rx.box(*children, grid_column="2"),
        **props,
    )
