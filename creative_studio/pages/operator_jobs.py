"""/operator/jobs: recent background job runs, for platform operators.

State: state/operator_jobs.py.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.components.page import card, muted, status_badge, table
from creative_studio.layout import explanation_card, loading, page_header
from state.operator_jobs import RUN_STATUSES, OperatorJobsState, RunRow
from state.session import SessionState


def _run_row(run: RunRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(run.job_id)),
        rx.table.cell(status_badge(run.status, size="1")),
        rx.table.cell(run.started),
        rx.table.cell(run.duration),
        rx.table.cell(run.item_count),
        rx.table.cell(
            rx.cond(
                run.error_count > 0,
                rx.text(run.error_count, color=rx.color("red", 11)),
                rx.text("0"),
            )
        ),
        rx.table.cell(rx.text(run.host, size="1")),
        rx.table.cell(rx.text(run.detail, size="1", color=rx.color("red", 11))),
    )


def _filters() -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.el.label(rx.text("Job", size="2", weight="medium"), html_for="job-filter"),
            rx.select.root(
                rx.select.trigger(id="job-filter", aria_label="Job"),
                rx.select.content(
                    rx.select.item("All jobs", value="all"),
                    rx.foreach(
                        OperatorJobsState.jobs,
                        lambda job: rx.select.item(job.job_id, value=job.job_id),
                    ),
                ),
                value=OperatorJobsState.job_filter,
                on_change=OperatorJobsState.filter_job,
            ),
            spacing="1",
        ),
        rx.vstack(
            rx.el.label(rx.text("Status", size="2", weight="medium"), html_for="status-filter"),
            rx.select.root(
                rx.select.trigger(id="status-filter", aria_label="Status"),
                rx.select.content(
                    rx.select.item("Any status", value="all"),
                    *[rx.select.item(status.capitalize(), value=status) for status in RUN_STATUSES],
                ),
                value=OperatorJobsState.status_filter,
                on_change=OperatorJobsState.filter_status,
            ),
            spacing="1",
        ),
        spacing="4",
        wrap="wrap",
    )


def _job_line(job) -> rx.Component:
    return rx.hstack(
        rx.code(job.job_id),
        rx.badge(job.every, variant="soft"),
        rx.text(job.description, size="2"),
        rx.spacer(),
        rx.button(
            rx.cond(OperatorJobsState.running_job == job.job_id, rx.spinner(size="1")),
            "Run now",
            size="1",
            variant="soft",
            disabled=OperatorJobsState.running_job != "",
            on_click=OperatorJobsState.run_now(job.job_id),
            aria_label="Run " + job.job_id + " now",
        ),
        spacing="3",
        align="center",
        wrap="wrap",
        width="100%",
    )


def _content() -> rx.Component:
    return rx.vstack(
        rx.cond(
            OperatorJobsState.error != "",
            rx.callout(
                OperatorJobsState.error, icon="triangle-alert", color_scheme="red", role="alert"
            ),
        ),
        rx.cond(
            OperatorJobsState.notice != "",
            rx.callout(OperatorJobsState.notice, icon="check", color_scheme="green", role="status"),
        ),
        card(
            "Scheduled jobs",
            muted(
                "Run now runs a job once in this web process (audited); while it runs, the other "
                "buttons wait."
            ),
            rx.foreach(OperatorJobsState.jobs, _job_line),
            spacing="2",
        ),
        card(
            "Recent runs",
            _filters(),
            rx.cond(
                OperatorJobsState.runs.length() > 0,
                table(
                    ["Job", "Status", "Started", "Took", "Items", "Errors", "Host", "Error"],
                    rx.foreach(OperatorJobsState.runs, _run_row),
                ),
                muted(
                    "No runs recorded yet. With SCHEDULER=inline the web process runs the jobs; "
                    "otherwise start `python -m jobs`.",
                ),
            ),
            spacing="3",
        ),
        spacing="4",
        width="100%",
    )


@rx.page(
    route=routes.OPERATOR_JOBS,
    title="Job runs · Creative Studio",
    on_load=[SessionState.require_signed_in, OperatorJobsState.load],
)
def operator_jobs_page() -> rx.Component:
    return rx.box(
        rx.vstack(
            rx.link("← Operator home", href=routes.OPERATOR_HOME, size="2"),
            page_header(
                "Background jobs", "What ran, when, how long it took, and what failed (UTC)."
            ),
            rx.cond(
                SessionState.ready,
                rx.cond(
                    OperatorJobsState.allowed,
                    _content(),
                    explanation_card("For platform operators", OperatorJobsState.denied_message),
                ),
                loading(),
            ),
            spacing="4",
            max_width="72rem",
            width="100%",
        ),
        padding=["1rem", "1.5rem", "2rem"],
        role="main",
    )
