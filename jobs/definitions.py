"""The registered jobs: stable ids, schedules, and the service each one calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs.runner import JobOutcome, job_run_recorded
from jobs.subscription_renewals import subscription_renewals


def _generation_refund_sweep() -> Any:
    from services.generation_sweep import generations_sweep_stuck

    return generations_sweep_stuck()


def _runs_recover() -> Any:
    from services.run_engine import runs_recover

    return runs_recover()


def _connections_refresh() -> Any:
    from services.connections import connections_refresh_due

    return connections_refresh_due()


def _invites_expire() -> Any:
    from services.housekeeping import invites_expire_due

    return invites_expire_due()


def _sessions_purge() -> Any:
    from core import db
    from services.form_submissions import form_submissions_purge
    from services.housekeeping import sessions_purge_expired

    purged = sessions_purge_expired()
    # Form tokens only need to outlive a retried submit; older records go with the sessions.
    with db.session_scope() as session:
        purged += form_submissions_purge(session=session)
    return purged


def _monthly_credit_grants() -> Any:
    from services.housekeeping import monthly_credit_grants

    return monthly_credit_grants()


def _request_logs_purge() -> Any:
    from services.api_requests import request_logs_purge

    return request_logs_purge()


def _low_balance_alerts() -> Any:
    from services.notifications import low_balance_sweep

    return low_balance_sweep()


def _status_incidents() -> Any:
    from services.status import status_incidents_job

    return status_incidents_job()


def _analytics_rollup() -> Any:
    from services.analytics.rollup import analytics_rollup_recent

    return analytics_rollup_recent()


def _analytics_reconcile() -> Any:
    from services.analytics.reconciliation import analytics_reconcile_recent

    return analytics_reconcile_recent()


def _assistant_replies_sweep() -> Any:
    from services.assistant import replies_sweep_stale

    return replies_sweep_stale()


def _domains_recheck() -> Any:
    from services.domains import domains_recheck_due

    return domains_recheck_due()


@dataclass(frozen=True)
class JobSpec:
    id: str  # stable: the scheduler's job id and JobRun.job_id
    function: Callable[[], Any]
    interval_seconds: int
    description: str

    def run(self) -> JobOutcome:
        """Run once through the recorder (what the scheduler calls)."""
        return job_run_recorded(self.id, self.function)


JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "generation_refund_sweep",
        _generation_refund_sweep,
        60,
        "Fail and refund generations with no result within 15 minutes.",
    ),
    JobSpec(
        "runs_recover",
        _runs_recover,
        20,
        "Fail and refund runs whose worker died (lease passed); send queued runs again.",
    ),
    JobSpec(
        "connections_refresh",
        _connections_refresh,
        3600,
        "Refresh OAuth tokens that expire within the next hour.",
    ),
    JobSpec("invites_expire", _invites_expire, 900, "Mark pending invites past expiry as expired."),
    JobSpec(
        "sessions_purge",
        _sessions_purge,
        3600,
        "Delete sign-in sessions past absolute expiry, and form-submit records past 2 days.",
    ),
    JobSpec(
        "monthly_credit_grants",
        _monthly_credit_grants,
        3600,
        "Grant the monthly credits of plans not billed by Stripe (Free), once per month.",
    ),
    JobSpec(
        "analytics_rollup",
        _analytics_rollup,
        900,
        "Analytics: sum usage per day, source, project, member, key and model (and catch up).",
    ),
    JobSpec(
        "analytics_reconcile",
        _analytics_reconcile,
        3600,
        "Analytics: check each day's usage against the ledger, provider units and payments.",
    ),
    JobSpec(
        "subscription_renewals",
        subscription_renewals,
        300,
        "Local payment mode: renew subscriptions whose paid period ended (Stripe renews its own).",
    ),
    JobSpec(
        "request_logs_purge",
        _request_logs_purge,
        3600,
        "Delete API request-log rows older than 30 days (the retention stated on the Logs page).",
    ),
    JobSpec(
        "low_balance_alerts",
        _low_balance_alerts,
        60,
        "Mail owners once when the balance first drops below their low-balance alert.",
    ),
    JobSpec(
        "status_incidents",
        _status_incidents,
        60,
        "Open an incident for each swapped or disabled model; resolve it when it is back.",
    ),
    JobSpec(
        "assistant_replies_sweep",
        _assistant_replies_sweep,
        30,
        "Assistant: mark replies whose writer went away interrupted (no text yet: failed, "
        "message given back to the daily allowance).",
    ),
    JobSpec(
        "domains_recheck",
        _domains_recheck,
        900,
        "SSO: look again for the DNS TXT record of verified domains (each every 6 hours); "
        "unverify a domain after DOMAIN_RECHECK_FAILURES failed checks in a row.",
    ),
)
JOB_IDS = tuple(spec.id for spec in JOBS)


def job_get(job_id: str) -> JobSpec:
    for spec in JOBS:
        if spec.id == job_id:
            return spec
    raise KeyError(f"unknown job {job_id!r}; known: {', '.join(JOB_IDS)}")


def job_run_now(job_id: str) -> JobOutcome:
    """Run one job immediately in this process (operators, tests)."""
    return job_get(job_id).run()
