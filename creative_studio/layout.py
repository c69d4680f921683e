"""The application shell: sidebar with the areas, org switcher, page header, banners."""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import callout_box
from creative_studio.components.page import card
from creative_studio.components.view_as_banner import view_as_banner
from state.session import SessionState
from state.status import IncidentBannerState

SIDEBAR_WIDTH = "15rem"


def _nav_item(area: routes.Area, active_key: str) -> rx.Component:
    is_active = area.key == active_key
    # Settings carries a red dot while a connection needs reconnecting (said in its name too).
    attention = area.key == "settings"
    return rx.link(
        rx.hstack(
            rx.icon(area.icon, size=18, aria_hidden="true"),
            rx.text(area.label, size="2", weight="medium" if is_active else "regular"),
            rx.cond(
                SessionState.has_expired_connection,
                rx.box(
                    width="0.5rem",
                    height="0.5rem",
                    border_radius="9999px",
                    background=rx.color("red", 9),
                    aria_hidden="true",
                    title="A connection needs reconnecting",
                ),
            )
            if attention
            else rx.fragment(),
            align="center",
            spacing="3",
            padding_x="0.75rem",
            padding_y="0.5rem",
            border_radius="var(--radius-3)",
            background=rx.color("accent", 4) if is_active else "transparent",
            color=rx.color("accent", 11) if is_active else rx.color("gray", 12),
            _hover={"background": rx.color("accent", 3)},
            width="100%",
        ),
        href=routes.org_area(SessionState.org_slug, area.key),
        underline="none",
        aria_current="page" if is_active else None,
        aria_label=rx.cond(
            SessionState.has_expired_connection,
            f"{area.label} (a connection needs reconnecting)",
            area.label,
        )
        if attention
        else None,
        width="100%",
    )


def org_switcher() -> rx.Component:
    return rx.vstack(
        rx.el.label(
            rx.text("Organization", size="1", color=rx.color("gray", 10)), html_for="org-switcher"
        ),
        rx.select.root(
            rx.select.trigger(id="org-switcher", width="100%", aria_label="Switch organization"),
            rx.select.content(
                rx.foreach(
                    SessionState.orgs,
                    lambda org: rx.select.item(org.name, value=org.slug),
                )
            ),
            value=SessionState.org_slug,
            on_change=SessionState.switch_org,
        ),
        rx.link(
            rx.hstack(rx.icon("plus", size=14), rx.text("New organization"), spacing="1"),
            href=routes.NEW_ORG,
            size="1",
            underline="hover",
        ),
        spacing="1",
        width="100%",
    )


def skip_link() -> rx.Component:
    """The first thing Tab reaches: jump past the navigation to the page's content."""
    return rx.el.a(
        "Skip to content",
        href="#main-content",
        class_name="cs-skip-link",
        style={
            "position": "absolute",
            "left": "-10000px",
            "top": "0.5rem",
            "z_index": "1000",
            "padding": "0.5rem 1rem",
            "border_radius": "var(--radius-3)",
            "background": rx.color("accent", 9),
            "color": "white",
            "font_weight": "500",
            "&:focus": {"left": "0.5rem"},
        },
    )


def _user_footer() -> rx.Component:
    return rx.vstack(
        rx.cond(
            SessionState.is_operator,
            rx.link(
                rx.hstack(
                    rx.icon("server-cog", size=16),
                    rx.text("Operator: background jobs", size="2"),
                    spacing="2",
                ),
                href=routes.OPERATOR_JOBS,
                underline="none",
            ),
        ),
        rx.divider(),
        rx.hstack(
            rx.avatar(fallback=SessionState.user_initials, size="2", radius="full"),
            rx.vstack(
                rx.text(SessionState.user_name, size="2", weight="medium", trim="both"),
                rx.text(SessionState.user_email, size="1", color=rx.color("gray", 10), trim="both"),
                spacing="1",
                min_width="0",
            ),
            align="center",
            spacing="2",
            width="100%",
        ),
        rx.hstack(
            rx.color_mode.button(size="2", variant="ghost", aria_label="Toggle dark mode"),
            rx.button(
                rx.icon("log-out", size=16),
                "Sign out",
                variant="soft",
                color_scheme="gray",
                size="2",
                on_click=SessionState.sign_out,
            ),
            justify="between",
            width="100%",
        ),
        spacing="3",
        width="100%",
    )


def _staff_links(active_key: str) -> rx.Component:
    """The audit log for those who may read it (owners, admins, operators); the console for
    operators."""
    return rx.vstack(
        rx.cond(
            SessionState.allowed_actions.contains("audit_view"),
            rx.link(
                rx.hstack(
                    rx.icon("scroll-text", size=16), rx.text("Audit log", size="2"), spacing="2"
                ),
                href="/org/" + SessionState.org_slug + "/audit",
                underline="none",
                color=rx.color("accent" if active_key == "audit" else "gray", 11),
                padding_x="0.75rem",
            ),
        ),
        rx.cond(
            SessionState.is_operator,
            rx.link(
                rx.hstack(
                    rx.icon("shield", size=16), rx.text("Operator console", size="2"), spacing="2"
                ),
                href="/operator",
                underline="none",
                color=rx.color("gray", 11),
                padding_x="0.75rem",
            ),
        ),
        spacing="2",
        width="100%",
    )


def sidebar_content(active_key: str) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("sparkles", size=22, color=rx.color("accent", 10)),
            rx.text("Creative Studio", size="4", weight="bold"),
            align="center",
            spacing="2",
        ),
        org_switcher(),
        rx.el.nav(
            rx.vstack(
                *[_nav_item(area, active_key) for area in routes.AREAS], spacing="1", width="100%"
            ),
            aria_label="Areas",
            style={"width": "100%"},
        ),
        _staff_links(active_key),
        rx.spacer(),
        _user_footer(),
        spacing="5",
        height="100%",
        width="100%",
        padding="1rem",
    )


def sidebar(active_key: str) -> rx.Component:
    # The outer box stretches with the page (background and border to the bottom); the inner
    # one stays in view while the content scrolls.
    return rx.box(
        rx.box(sidebar_content(active_key), height="100vh", position="sticky", top="0"),
        width=SIDEBAR_WIDTH,
        min_width=SIDEBAR_WIDTH,
        align_self="stretch",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2),
        display=["none", "none", "block"],
    )


def mobile_topbar(active_key: str) -> rx.Component:
    return rx.hstack(
        rx.drawer.root(
            rx.drawer.trigger(
                rx.icon_button(rx.icon("menu"), variant="ghost", aria_label="Open navigation")
            ),
            rx.drawer.overlay(),
            rx.drawer.portal(
                rx.drawer.content(
                    sidebar_content(active_key),
                    height="100%",
                    width="17rem",
                    background=rx.color("gray", 2),
                )
            ),
            direction="left",
        ),
        rx.text("Creative Studio", size="3", weight="bold"),
        rx.spacer(),
        rx.text(SessionState.org_name, size="2", color=rx.color("gray", 11)),
        align="center",
        padding="0.75rem 1rem",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        display=["flex", "flex", "none"],
        width="100%",
    )


def page_header(
    title: str, description: str = "", action: rx.Component | None = None
) -> rx.Component:
    return rx.flex(
        rx.vstack(
            rx.heading(title, size="7", as_="h1"),
            rx.cond(description != "", rx.text(description, color=rx.color("gray", 11), size="3")),
            spacing="1",
        ),
        rx.spacer(),
        action if action is not None else rx.fragment(),
        direction=rx.breakpoints(initial="column", sm="row"),
        spacing="3",
        align=rx.breakpoints(initial="start", sm="center"),
        width="100%",
    )


def not_found_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Organization not found", size="5", as_="h2"),
            rx.text(
                "There is no organization at this address that you belong to. "
                "Check the link, or pick one of your organizations in the switcher.",
                color=rx.color("gray", 11),
            ),
            rx.link("Go to my workspace", href=routes.INDEX),
            spacing="3",
        ),
        max_width="36rem",
    )


def explanation_card(title: str, *lines) -> rx.Component:
    """A page (or part) this role may not use: say why and what to do instead of erroring."""
    return card(
        title,
        *[rx.text(line, color=rx.color("gray", 11)) for line in lines],
        icon="lock",
        spacing="2",
        role="note",
    )


def analytics_not_for_role() -> rx.Component:
    return explanation_card(
        "Analytics is for owners and admins",
        rx.text.span(  # explanation_card puts each line in a paragraph of its own
            "Usage analytics cover the whole organization's spending, so they are shown to its owners and "
            "admins. You are signed in as ",
            rx.text.strong(SessionState.org_role_label),
            ".",
        ),
        "Ask an owner or admin of this organization if you need a usage report.",
    )


def verify_email_banner() -> rx.Component:
    return rx.cond(
        SessionState.signed_in & ~SessionState.email_verified,
        callout_box(
            rx.text(
                "Verify your email address to use models: open the link we sent to ",
                rx.text.strong(SessionState.user_email),
                ". ",
                rx.link("Send a new link", href=routes.VERIFY_EMAIL),
            ),
            icon="mail-warning",
            color_scheme="amber",
            width="100%",
            role="status",
        ),
    )


def incident_banner() -> rx.Component:
    """An open incident that reaches this organization (status page link)."""
    return rx.box(
        rx.cond(
            IncidentBannerState.banner_title != "",
            rx.callout(
                rx.text(
                    rx.text.strong(IncidentBannerState.banner_title),
                    " ",
                    IncidentBannerState.banner_text,
                    " ",
                    rx.link("Platform status", href=routes.STATUS),
                ),
                icon="triangle-alert",
                color_scheme="amber",
                width="100%",
                role="status",
            ),
        ),
        on_mount=IncidentBannerState.load,
        # Hidden while empty, so it adds no gap above the page header.
        display=rx.cond(IncidentBannerState.banner_title != "", "block", "none"),
        width="100%",
    )


def loading() -> rx.Component:
    return rx.center(
        rx.spinner(size="3"),
        rx.text("Loading…", margin_left="0.5rem"),
        padding="4rem",
        width="100%",
    )


def app_shell(
    active_key: str, title: str, description: str, *children: rx.Component, action=None
) -> rx.Component:
    """An org page: sidebar + header + content, shown once the session and org are resolved."""
    return rx.flex(
        skip_link(),
        sidebar(active_key),
        rx.box(
            mobile_topbar(active_key),
            rx.cond(
                SessionState.ready,
                rx.cond(
                    SessionState.org_not_found,
                    rx.box(not_found_card(), padding=["1rem", "1.5rem", "2rem"]),
                    rx.vstack(
                        verify_email_banner(),
                        view_as_banner(),
                        incident_banner(),
                        page_header(title, description, action),
                        *children,
                        spacing="5",
                        padding=["1rem", "1.5rem", "2rem"],
                        max_width="72rem",
                        width="100%",
                    ),
                ),
                loading(),
            ),
            flex="1",
            min_width="0",
            role="main",
            id="main-content",
            tab_index=-1,
        ),
        min_height="100vh",
        width="100%",
    )


def centered_card(*children: rx.Component, max_width: str = "26rem") -> rx.Component:
    """Signed-out pages (sign in, register, reset): one calm card in the middle."""
    return rx.center(
        rx.vstack(
            rx.hstack(
                rx.icon("sparkles", size=26, color=rx.color("accent", 10)),
                rx.text("Creative Studio", size="6", weight="bold"),
                align="center",
                spacing="2",
            ),
            rx.card(
                # Forms appear only once the page is live: before hydration a native submit
                # would send the fields (a password) as a GET query string.
                rx.cond(
                    rx.State.is_hydrated,
                    rx.vstack(*children, spacing="4", width="100%"),
                    rx.center(rx.spinner(size="3"), padding="2rem", width="100%"),
                ),
                width="100%",
                size="3",
            ),
            rx.color_mode.button(variant="ghost", size="1", aria_label="Toggle dark mode"),
            spacing="5",
            align="center",
            width="100%",
            max_width=max_width,
        ),
        min_height="100vh",
        padding="1rem",
        background=rx.color("gray", 2),
        role="main",
    )
