"""Jobs: the run recorder, the scheduler's registrations, the inline guard, `python -m jobs`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import create_engine, text
from sqlmodel import select

from jobs import scheduler as scheduler_module
from jobs.definitions import JOB_IDS, JOBS, job_run_now
from jobs.runner import JobOutcome, job_run_recorded
from jobs.scheduler import inline_scheduler_wanted, scheduler_build
from models import JobRun
from services.jobs_admin import job_runs_recent

ROOT = Path(__file__).resolve().parents[2]


def test_job_ids_are_stable():
    assert JOB_IDS == (
        "generation_refund_sweep",
        "runs_recover",
        "connections_refresh",
        "invites_expire",
        "sessions_purge",
        "monthly_credit_grants",
        "analytics_rollup",
        "analytics_reconcile",
        "subscription_renewals",
        "request_logs_purge",
        "low_balance_alerts",
        "status_incidents",
        "assistant_replies_sweep",
        "domains_recheck",
    )
    intervals = {spec.id: spec.interval_seconds for spec in JOBS}
    assert intervals["generation_refund_sweep"] == 60
    assert intervals["connections_refresh"] == 3600


def test_recorder_records_success_with_items_and_errors(engine, session):
    class Result:
        items = 3
        errors = 1
        error_details = ["generation 7: boom"]

    outcome = job_run_recorded("demo", lambda: Result())

    assert outcome == JobOutcome(items=3, errors=1, error_detail="generation 7: boom")
    run = session.exec(select(JobRun)).one()
    assert (run.job_id, run.status, run.items, run.errors) == ("demo", "succeeded", 3, 1)
    assert run.error_detail == "generation 7: boom"
    assert run.finished_at is not None and run.host


def test_recorder_records_a_crash_without_raising(engine, session):
    def crash():
        raise RuntimeError("database went away")

    outcome = job_run_recorded("crashy", crash)

    assert outcome.errors == 1
    run = session.exec(select(JobRun)).one()
    assert run.status == "failed" and "RuntimeError: database went away" in run.error_detail
    assert run.finished_at is not None


def test_job_runs_recent_newest_first_and_filtered(engine, session):
    job_run_recorded("a", lambda: 1)
    job_run_recorded("b", lambda: 2)
    job_run_recorded("a", lambda: None)
    runs = job_runs_recent(session=session)
    assert [r.job_id for r in runs] == ["a", "b", "a"]
    assert [r.items for r in job_runs_recent(session=session, job_id="a")] == [0, 1]
    assert runs[0].duration_seconds is not None and runs[0].duration_seconds >= 0
    assert job_runs_recent(session=session, status="failed") == []


def test_every_registered_job_runs_on_an_empty_database(engine, session):
    for job_id in JOB_IDS:
        outcome = job_run_now(job_id)
        assert outcome.errors == 0, (job_id, outcome)
    runs = job_runs_recent(session=session)
    assert sorted(r.job_id for r in runs) == sorted(JOB_IDS)
    assert {r.status for r in runs} == {"succeeded"}


def test_scheduler_registers_every_job_with_coalesce_and_one_instance(monkeypatch):
    monkeypatch.delenv("JOBS_ONLY", raising=False)
    monkeypatch.delenv("JOBS_INTERVAL_SECONDS", raising=False)
    background = scheduler_build()
    assert isinstance(background, BackgroundScheduler)
    jobs = {job.id: job for job in background.get_jobs()}
    assert set(jobs) == set(JOB_IDS)
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
    assert jobs["generation_refund_sweep"].trigger.interval.total_seconds() == 60
    assert isinstance(scheduler_build(blocking=True), BlockingScheduler)

    monkeypatch.setenv("JOBS_ONLY", "analytics_rollup, invites_expire")
    monkeypatch.setenv("JOBS_INTERVAL_SECONDS", "2")
    limited = scheduler_build()
    assert sorted(job.id for job in limited.get_jobs()) == ["analytics_rollup", "invites_expire"]
    assert {job.trigger.interval.total_seconds() for job in limited.get_jobs()} == {2}
    monkeypatch.setenv("JOBS_ONLY", "nope")
    with pytest.raises(ValueError, match="unknown jobs: nope"):
        scheduler_build()


def test_inline_scheduler_not_under_pytest_unless_asked(monkeypatch, engine):
    monkeypatch.setenv("SCHEDULER", "inline")
    monkeypatch.delenv("JOBS_INLINE_UNDER_PYTEST", raising=False)
    assert inline_scheduler_wanted() == (False, "running under pytest")
    assert scheduler_module.inline_scheduler_start() is None

    monkeypatch.setenv("JOBS_INLINE_UNDER_PYTEST", "1")
    monkeypatch.setenv("JOBS_INTERVAL_SECONDS", "3600")
    try:
        first = scheduler_module.inline_scheduler_start()
        assert first is not None and first.running
        assert scheduler_module.inline_scheduler_start() is first  # once per process
    finally:
        scheduler_module.inline_scheduler_stop()

    from core.settings import reset_settings_cache

    monkeypatch.setenv("SCHEDULER", "off")
    reset_settings_cache()
    wanted, why = inline_scheduler_wanted()
    assert not wanted and "SCHEDULER=off" in why


def test_inline_scheduler_not_in_the_reflex_cli(monkeypatch):
    monkeypatch.setenv("JOBS_INLINE_UNDER_PYTEST", "1")
    monkeypatch.setattr(sys, "argv", ["/work/.venv/bin/reflex", "run"])
    assert inline_scheduler_wanted() == (False, "reflex CLI process (compile only)")


# --- `python -m jobs` as its own process ---------------------------------------------------------


@pytest.fixture
def migrated_database(tmp_path) -> dict:
    database_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CS_DATA_DIR": str(tmp_path),
        "APP_ENV": "development",
        "SECRET_KEY": "jobs-test-secret-" + "s" * 40,
        "SCHEDULER": "off",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("JOBS_ONLY", "JOBS_INTERVAL_SECONDS", "JOBS_RUN_ONCE", "PYTEST_CURRENT_TEST"):
        env.pop(name, None)
    subprocess.run(
        [sys.executable, "-m", "core.manage", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return env


def _job_runs(database_url: str) -> list[tuple[str, str]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text("SELECT job_id, status FROM job_runs"))]
    finally:
        engine.dispose()


def test_python_m_jobs_registers_and_runs_every_job_once(migrated_database):
    env = {**migrated_database, "JOBS_RUN_ONCE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "jobs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for job_id in JOB_IDS:
        assert f"registered job {job_id} every" in done.stderr
    assert "scheduler stopped" in done.stderr
    runs = _job_runs(env["DATABASE_URL"])
    assert sorted(job_id for job_id, _ in runs) == sorted(JOB_IDS)
    assert {status for _, status in runs} == {"succeeded"}


def test_python_m_jobs_runs_on_its_interval_and_stops_on_sigterm(migrated_database):
    env = {
        **migrated_database,
        "JOBS_ONLY": "generation_refund_sweep",
        "JOBS_INTERVAL_SECONDS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "jobs"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_job_runs(env["DATABASE_URL"])) < 2:  # ran at least twice, a second apart
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the job did not run on its interval"
            time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "registered job generation_refund_sweep every 1s" in output
    assert "scheduler stopping (SIGTERM)" in output and "scheduler stopped" in output
    assert {status for _, status in _job_runs(env["DATABASE_URL"])} == {"succeeded"}
