"""Projects card: create, rename, archive and restore the organization's projects."""

from __future__ import annotations

import reflex as rx

from creative_studio.components.forms import field, label_for, submit_button, token_input
from creative_studio.components.page import card, muted, read_only_line, table
from creative_studio.pages.team.shared import messages
from state.team import ProjectRow, TeamState


def _project_row(row: ProjectRow) -> rx.Component:
    renaming = TeamState.renaming_project_id == row.project_id
    return rx.table.row(
        rx.table.row_header_cell(
            rx.cond(
                renaming,
                rx.form(
                    rx.hstack(
                        rx.box(
                            field(
                                "New name",
                                "name",
                                field_id="rename-project",
                                default_value=row.name,
                                required=True,
                            ),
                            min_width="12rem",
                        ),
                        rx.button("Save name", type="submit", size="2"),
                        rx.button(
                            "Cancel",
                            type="button",
                            size="2",
                            variant="soft",
                            color_scheme="gray",
                            on_click=TeamState.cancel_rename,
                        ),  # fmt: skip
                        align="end",
                        spacing="2",
                        wrap="wrap",
                    ),
                    on_submit=TeamState.save_rename,
                ),
                rx.text(row.name, size="2", weight="medium"),
            )
        ),
        rx.table.cell(
            rx.cond(
                row.archived,
                rx.badge("Archived", color_scheme="gray"),
                rx.badge("Active", color_scheme="green"),
            ),
            vertical_align="middle",
        ),
        rx.table.cell(rx.text(row.created, size="2"), vertical_align="middle"),
        rx.table.cell(
            rx.cond(
                TeamState.can_manage_projects & ~renaming,
                rx.hstack(
                    rx.button(
                        "Rename",
                        size="1",
                        variant="soft",
                        aria_label="Rename " + row.name,
                        on_click=TeamState.start_rename(row.project_id),
                    ),
                    rx.cond(
                        row.archived,
                        rx.button(
                            "Restore",
                            size="1",
                            variant="soft",
                            aria_label="Restore " + row.name,
                            on_click=TeamState.restore_project(row.project_id),
                        ),
                        rx.button(
                            "Archive",
                            size="1",
                            variant="soft",
                            color_scheme="gray",
                            aria_label="Archive " + row.name,
                            on_click=TeamState.archive_project(row.project_id),
                        ),
                    ),
                    spacing="2",
                ),
            ),
            vertical_align="middle",
        ),
        aria_label=row.name,
    )


def projects_card() -> rx.Component:
    return card(
        "Projects",
        rx.cond(
            ~TeamState.can_manage_projects,
            read_only_line(
                "Only owners and admins can create, rename or archive projects. Ask ",
                TeamState.managers,
                ".",
            ),
        ),
        messages("projects"),
        rx.cond(
            TeamState.can_manage_projects,
            rx.form(
                rx.flex(
                    rx.box(
                        field(
                            "New project name",
                            "name",
                            field_id="new-project-name",
                            required=True,
                            placeholder="Summer campaign",
                        ),
                        flex="1",
                        min_width="14rem",
                    ),
                    token_input(TeamState.form_token),
                    submit_button(
                        rx.icon("plus", size=16),
                        "Create project",
                        pending=TeamState.pending == "project",
                        size="3",
                    ),
                    spacing="3",
                    align="end",
                    wrap="wrap",
                    width="100%",
                ),
                on_submit=TeamState.create_project,
                reset_on_submit=False,
                width="100%",
            ),
        ),
        rx.hstack(
            rx.switch(
                id="show-archived",
                checked=TeamState.show_archived,
                on_change=TeamState.set_show_archived,
            ),
            label_for("Show archived projects", "show-archived", weight="regular"),
            align="center",
            spacing="2",
        ),
        rx.cond(
            TeamState.projects.length() > 0,
            table(
                ["Project", "Status", "Created", ""], rx.foreach(TeamState.projects, _project_row)
            ),
            muted(
                "No projects yet. Projects group your work and let you limit editors to "
                "some of it.",
                rx.cond(TeamState.can_manage_projects, " Create the first one above.", ""),
            ),
        ),
        aside=rx.badge(TeamState.projects_line, size="2", variant="surface"),
    )
