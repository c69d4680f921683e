"""/operator/jobs: recent background job runs, for platform operators only.

Who may see it is the policy module's answer for `operator_access`; everyone else gets its
explanation instead of the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from core import db, routes
from jobs.definitions import JOBS
from services import policy
from services.jobs_admin import job_runs_recent
from state.org_page import bounded
from state.session import SessionState

# The statuses a run can have, in the order the filter offers them.
RUN_STATUSES: tuple[str, ...] = ("succeeded", "failed", "running")


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
    started: str
    duration: str
    item_count: int
    error_count: int
    host: str
    detail: str


def every(seconds: int) -> str:
    """ "every 1 h", "every 15 min" """
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
        with db.session_scope() as session:
            user = session_state._current_user(session)
            if user is None:
                return rx.redirect(routes.sign_in(routes.OPERATOR_JOBS))
            actor = policy.actor_for(session=session, user=user, org_id=None)
            decision = policy.can(actor, policy.Action.operator_access, policy.Target())
            self.allowed = decision.allowed
            self.denied_message = decision.message
            if not self.allowed:
                self.jobs, self.runs = [], []
                return None
            known = {job.id for job in JOBS}
            job_id = self.job_filter if self.job_filter in known else None
            status = self.status_filter if self.status_filter in RUN_STATUSES else None
            rows = job_runs_recent(session=session, job_id=job_id, status=status, limit=100)
        self.jobs = [JobRow(job.id, every(job.interval_seconds), job.description) for job in JOBS]
        self.runs = [
            RunRow(
                id=run.id,
                job_id=run.job_id,
                status=run.status,
                started=run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                duration="—" if run.duration_seconds is None else f"{run.duration_seconds:.2f} s",
                item_count=run.items,
                error_count=run.errors,
                host=run.host,
                detail=run.error_detail[:300],
            )
            for run in rows
        ]
        return None

    @rx.event
    async def filter_job(self, value: str):
        self.job_filter = bounded(value, 64)
        return OperatorJobsState.load

    @rx.event
    async def filter_status(self, value: str):
        self.status_filter = bounded(value, 32)
        return OperatorJobsState.load
