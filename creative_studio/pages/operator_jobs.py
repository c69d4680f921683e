"""/operator/jobs: recent background job runs, for platform operators."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx
from sqlmodel import Session

from core.db import get_engine
from core import routes
from creative_studio.layout import explanation_card, loading, page_header
from jobs.definitions import JOBS
from services import policy
from services.jobs_admin import job_runs_recent
from state.session import SessionState

STATUS_COLORS = {"succeeded": "green", "failed": "red", "running": "blue"}


@dataclass
class JobRow:
    job_id: str
    every: str
    description: str


@dataclass
class RunRow:
    id: int
    job_id: str
    status: str
    color: str
    started: str
    duration: str
    item_count: int
    error_count: int
    host: str
    detail: str


def _every(seconds: int) -> str:
    return f"every {seconds // 3600} h" if seconds % 3600 == 0 else f"every {seconds // 60} min"


class OperatorJobsState(rx.State):
    allowed: bool = False
    denied_message: str = ""
    jobs: list[JobRow] = []
    runs: list[RunRow] = []
    job_filter: str = "all"
    status_filter: str = "all"

    @rx.event
    async def load(self):
        session_state = await self.get_state(SessionState)
        with Session(get_engine(), expire_on_commit=False) as session:
            user = session_state._current_user(session)
            if user is None:
                return rx.redirect(routes.sign_in(routes.OPERATOR_JOBS))
            actor = policy.actor_for(session=session, user=user, org_id=None)
            decision = policy.can(actor, policy.Action.operator_access, policy.Target())
            self.allowed = decision.allowed
            self.denied_message = decision.message
            if not self.allowed:
                self.jobs, self.runs = [], []
                return
            known = {job.id for job in JOBS}
            job_id = self.job_filter if self.job_filter in known else None
            status = self.status_filter if self.status_filter in STATUS_COLORS else None
            rows = job_runs_recent(session=session, job_id=job_id, status=status, limit=100)
        self.jobs = [JobRow(job.id, _every(job.interval_seconds), job.description) for job in JOBS]
        self.runs = [
            RunRow(
                id=run.id,
                job_id=run.job_id,
                status=run.status,
                color=STATUS_COLORS.get(run.status, "gray"),
                started=run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                duration="—" if run.duration_seconds is None else f"{run.duration_seconds:.2f} s",
                item_count=run.items,
                error_count=run.errors,
                host=run.host,
                detail=run.error_detail[:300],
            )
            for run in rows
        ]

    @rx.event
    async def filter_job(self, value: str):
        self.job_filter = value
        return OperatorJobsState.load

    @rx.event
    async def filter_status(self, value: str):
        self.status_filter = value
        return OperatorJobsState.load


def _run_row(run: RunRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(run.job_id)),
        rx.table.cell(rx.badge(run.status, color_scheme=run.color)),
        rx.table.cell(run.started),
        rx.table.cell(run.duration),
        rx.table.cell(run.item_count),
        rx.table.cell(
            rx.cond(run.error_count > 0, rx.text(run.error_count, color=rx.color("red", 11)), rx.text("0"))
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
                    *[
                        rx.select.item(status.capitalize(), value=status)
                        for status in STATUS_COLORS
                    ],
                ),
                value=OperatorJobsState.status_filter,
                on_change=OperatorJobsState.filter_status,
            ),
            spacing="1",
        ),
        spacing="4",
        wrap="wrap",
    )


def _content() -> rx.Component:
    return rx.vstack(
        rx.card(
            rx.vstack(
                rx.heading("Scheduled jobs", size="4", as_="h2"),
                rx.foreach(
                    OperatorJobsState.jobs,
                    lambda job: rx.hstack(
                        rx.code(job.job_id),
                        rx.badge(job.every, variant="soft"),
                        rx.text(job.description, size="2"),
                        spacing="3",
                        align="center",
                        wrap="wrap",
                    ),
                ),
                spacing="2",
            ),
            width="100%",
        ),
        rx.card(
            rx.vstack(
                rx.heading("Recent runs", size="4", as_="h2"),
                _filters(),
                rx.cond(
                    OperatorJobsState.runs.length() > 0,
                    rx.box(
                        rx.table.root(
                            rx.table.header(
                                rx.table.row(
                                    *[
                                        rx.table.column_header_cell(h)
                                        for h in (
                                            "Job",
                                            "Status",
                                            "Started",
                                            "Took",
                                            "Items",
                                            "Errors",
                                            "Host",
                                            "Error",
                                        )
                                    ]
                                )
                            ),
                            rx.table.body(rx.foreach(OperatorJobsState.runs, _run_row)),
                            width="100%",
                        ),
                        overflow_x="auto",
                        width="100%",
                    ),
                    rx.text(
                        "No runs recorded yet. With SCHEDULER=inline the web process runs the jobs; "
                        "otherwise start `python -m jobs`.",
                        color=rx.color("gray", 11),
                    ),
                ),
                spacing="3",
                width="100%",
            ),
            width="100%",
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
            rx.link("← Back to my workspace", href=routes.INDEX, size="2"),
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
