"""/org/<slug>/settings/brand: brand kits (the organization's and each project's).

View only; everything it shows or does lives in `state/brand_kits.py`.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.forms import error_callout, label_for, success_callout
from creative_studio.components.page import card, muted, read_only_line, table
from creative_studio.layout import app_shell
from state.brand_kits import BrandKitsState, KitRow

LIST_HELP = (
    ("voice", "Voice", "Adjectives, one a line: confident, warm, plain-spoken."),
    ("dos", "Do's", "One a line."),
    ("donts", "Don'ts", "One a line."),
    ("preferred_terms", "Preferred terms", "Words to use, one a line."),
    ("avoided_terms", "Avoided terms", "Words to avoid: replies using them are flagged."),
    ("product_facts", "Product facts", "Facts replies may state, one a line."),
    ("example_phrases", "Example phrases", "Lines written in the brand's voice."),
)


def _list_field(name: str, label: str, hint: str) -> rx.Component:
    field_id = f"kit-{name}"
    return rx.vstack(
        label_for(label, field_id),
        rx.text_area(
            id=field_id,
            name=name,
            default_value=getattr(BrandKitsState, name),
            read_only=~BrandKitsState.can_edit,
            rows="3",
            width="100%",
        ),
        rx.text(hint, size="1", color=rx.color("gray", 10)),
        spacing="1",
        width="100%",
    )


def _kit_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            label_for("Kit name", "kit-name"),
            rx.input(
                id="kit-name",
                name="name",
                default_value=BrandKitsState.name,
                read_only=~BrandKitsState.can_edit,
                max_length=121,
                width="100%",
            ),
            label_for("Audience", "kit-audience"),
            rx.text_area(
                id="kit-audience",
                name="audience",
                default_value=BrandKitsState.audience,
                read_only=~BrandKitsState.can_edit,
                rows="2",
                width="100%",
            ),
            rx.grid(
                *[_list_field(*item) for item in LIST_HELP],
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="3",
                width="100%",
            ),
            rx.cond(
                BrandKitsState.can_edit,
                rx.hstack(
                    rx.button("Save brand kit", type="submit"),
                    rx.cond(
                        BrandKitsState.exists,
                        rx.button(
                            "Remove this kit",
                            type="button",
                            variant="soft",
                            color_scheme="red",
                            on_click=BrandKitsState.remove,
                        ),
                    ),
                    wrap="wrap",
                ),
                read_only_line(BrandKitsState.edit_reason),
            ),
            spacing="3",
            width="100%",
        ),
        key=BrandKitsState.form_key,
        on_submit=BrandKitsState.save,
        width="100%",
    )


def _kit_row(row: KitRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.where),
        rx.table.cell(row.name),
        rx.table.cell(row.updated),
        rx.table.cell(
            rx.button(
                "Open", size="1", variant="soft", on_click=BrandKitsState.pick_scope(row.scope)
            )
        ),
    )


@rx.page(
    route=routes.org_subpage_route("settings", "brand"),
    title="Brand kits · Creative Studio",
    on_load=BrandKitsState.load,
)
def brand_kits_page() -> rx.Component:
    return app_shell(
        "settings",
        "Brand kits",
        "The voice, audience and vocabulary of Assistant replies, Studio text runs and "
        "Competitor Intel. A project's own kit replaces the organization's for its work.",
        error_callout(BrandKitsState.error),
        success_callout(BrandKitsState.notice),
        card(
            "Kits",
            rx.cond(
                BrandKitsState.kits.length() > 0,
                table(["Scope", "Name", "Updated", ""], rx.foreach(BrandKitsState.kits, _kit_row)),
                muted(
                    "No brand kit yet. Write the organization's below: every text output uses it."
                ),
            ),
            icon="palette",
        ),
        card(
            "Edit a kit",
            label_for("Kit for", "kit-scope"),
            rx.el.select(
                rx.foreach(
                    BrandKitsState.scope_choices, lambda c: rx.el.option(c.label, value=c.value)
                ),
                id="kit-scope",
                value=BrandKitsState.scope,
                on_change=BrandKitsState.pick_scope,
                class_name="rt-reset rt-SelectTrigger rt-r-size-2 rt-variant-surface",
            ),
            muted(BrandKitsState.applies),
            _kit_form(),
            rx.link("Open the Marketing Assistant", href=BrandKitsState.assistant_href, size="2"),
            icon="pencil",
        ),
    )
