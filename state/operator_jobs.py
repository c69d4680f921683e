"""/operator/jobs: recent background job runs, for platform operators only.

Who may see it is the policy module's answer for `operator_access`; everyone else gets its
explanation instead of the page.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import reflex as rx

from core import db, routes
from jobs.definitions import JOB_IDS, JOBS, job_run_now
from services import policy
from services.audit import audit_record
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
    notice: str = ""
    error: str = ""
    running_job: str = ""  # the job "Run now" is running, to show progress on its button

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

    @rx.event(background=True)
    async def run_now(self, job_id: str):
        """Run one scheduled job now in this process (operators only); audited."""
        job_id = bounded(job_id, 64)
        async with self:
            session_state = await self.get_state(SessionState)
            self.notice = self.error = ""
            if self.running_job:
                self.error = f"{self.running_job} is still running; wait for it to finish."
                return
            with db.session_scope() as session:
                user = session_state._current_user(session)
                decision = (
                    policy.can(
                        policy.actor_for(session=session, user=user, org_id=None),
                        policy.Action.operator_support,
                        policy.Target(),
                    )
                    if user is not None
                    else None
                )
                if not decision:
                    self.error = (
                        decision.message if decision is not None else "Sign in again to run jobs."
                    )
                    return
                if job_id not in JOB_IDS:
                    self.error = "Unknown job. Pick one from the list of scheduled jobs."
                    return
                audit_record(
                    session=session,
                    action="job.run_now",
                    actor_user_id=user.id,
                    target_type="job",
                    target_id=job_id,
                )
            self.running_job = job_id
        try:
            outcome = await asyncio.to_thread(job_run_now, job_id)
            message, failed = (
                f"{job_id} ran now: {outcome.items} item(s), {outcome.errors} error(s).",
                outcome.errors > 0,
            )
        except Exception as error:  # noqa: BLE001  (a job's failure is shown, and recorded)
            message, failed = f"{job_id} failed: {str(error)[:300]}", True
        async with self:
            self.running_job = ""
            self.error, self.notice = (message, "") if failed else ("", message)
        yield OperatorJobsState.load

    @rx.event
    async def filter_job(self, value: str):
        self.job_filter = bounded(value, 64)
        return OperatorJobsState.load

    @rx.event
    async def filter_status(self, value: str):
        self.status_filter = bounded(value, 32)
        return OperatorJobsState.load
