"""Run starts and completions on PostgreSQL: the concurrent-run caps hold when two starts race
for the last place, and a completion the database refuses is written again, never lost."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from core.settings import reset_settings_cache
from models import Generation, UsageEvent, User
from services import credits, generations
from services.providers.local import LocalProvider
from tests.conftest import requires_postgres
from tests.unit.test_generations import World, ledger

pytestmark = [requires_postgres, pytest.mark.postgres]

SAFETY_SECONDS = 60  # a bound so a regression fails instead of hanging; never asserted on


@pytest.fixture(autouse=True)
def _local_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path / "assets"))
    monkeypatch.delenv("STORAGE_BUCKET", raising=False)
    reset_settings_cache()


def _waiting_for_an_advisory_lock(engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar_one()
    return waiting > 0


@pytest.mark.parametrize("scope", ["user", "org"])
def test_two_starts_racing_for_the_last_place_cannot_both_pass(pg_engine, monkeypatch, scope):
    monkeypatch.setenv(
        "CONCURRENT_RUNS_PER_USER" if scope == "user" else "CONCURRENT_RUNS_PER_ORG", "1"
    )
    reset_settings_cache()
    with Session(pg_engine, expire_on_commit=False) as setup:
        world = World(setup)
        first_user, second_user = (
            world.editor.id,
            (world.editor.id if scope == "user" else world.owner.id),
        )
        org_id, project_id = world.org.id, world.spring.id
    first_started, first_may_commit = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def start(name: str, user_id: int, hold_open: bool) -> None:
        with Session(pg_engine, expire_on_commit=False) as session:
            try:
                generation = generations.generation_start(
                    session=session,
                    user=session.get(User, user_id),
                    org_id=org_id,
                    model_key="local-text",
                    prompt=f"{name} run",
                    project_id=project_id,
                )
                if hold_open:  # counted and inserted, not yet committed
                    first_started.set()
                    first_may_commit.wait(SAFETY_SECONDS)
                session.commit()
                outcomes[name] = generation.public_id
            except Exception as error:  # noqa: BLE001 - reported to the test
                session.rollback()
                outcomes[name] = error
            finally:
                first_started.set()

    first = threading.Thread(target=start, args=("first", first_user, True))
    first.start()
    assert first_started.wait(SAFETY_SECONDS)
    second = threading.Thread(target=start, args=("second", second_user, False))
    second.start()
    # The second start waits for the first one's run-start lock instead of counting a stale 0.
    give_up = time.monotonic() + SAFETY_SECONDS
    while not _waiting_for_an_advisory_lock(pg_engine):
        assert second.is_alive(), f"the second start did not wait: {outcomes.get('second')!r}"
        assert time.monotonic() < give_up, "the second start never waited for the lock"
        time.sleep(0.02)
    first_may_commit.set()
    first.join(SAFETY_SECONDS)
    second.join(SAFETY_SECONDS)

    assert isinstance(outcomes["first"], str)
    refusal = outcomes["second"]
    assert isinstance(refusal, generations.GenerationBlocked)
    assert refusal.code == "concurrent_run_limit"
    assert refusal.blockers[0].details["scope"] == scope
    with Session(pg_engine) as check:
        assert len(check.exec(select(Generation)).all()) == 1
        assert credits.balance_get(session=check, org_id=org_id).balance == credits.ledger_sum(
            session=check, org_id=org_id
        )


class WritesNul(LocalProvider):
    """A provider whose text holds a NUL character, which PostgreSQL text columns refuse."""

    def generate_text(self, **kwargs):
        made = super().generate_text(**kwargs)
        return replace(made, text=made.text + "\x00", units=10**9)


def test_a_completion_the_database_refuses_is_written_again_with_output_and_exact_charge(
    pg_engine,
):
    with Session(pg_engine, expire_on_commit=False) as session:
        world = World(session)
        generation = world.start()
        held = generation.held_millicredits

        done = generations.generation_run(
            session=session, generation_id=generation.id, provider=WritesNul()
        )

        assert done.status == "succeeded"
        assert "Spring sale" in done.output_text and "\x00" not in done.output_text
        assert done.charged_millicredits == held  # 10**9 tokens reported: capped at the hold
        assert [kind for kind, _, _ in ledger(session, generation.id)] == ["hold", "settle"]
        assert sum(amount for _, _, amount in ledger(session, generation.id)) == -held
        usage = session.exec(
            select(UsageEvent).where(UsageEvent.generation_id == generation.id)
        ).one()
        assert usage.millicredits == held
        assert world.balance() == 3000 * 1000 - held
        assert credits.ledger_sum(session=session, org_id=world.org.id) == world.balance()
