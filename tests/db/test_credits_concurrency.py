"""Credits under real concurrency on PostgreSQL: row locks, idempotency-key races, one closure per hold."""

from __future__ import annotations

import inspect
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models import CreditLedgerEntry, Organization, Project
from services.credits import (
    HoldAlreadyClosed,
    IdempotencyKeyReused,
    balance_get,
    credit_account_get_or_create,
    credits_expire,
    credits_grant,
    credits_hold,
    credits_release,
    credits_settle,
    ledger_list,
    ledger_sum,
    pool_allocate,
    pool_return,
    pools_list,
)
from services.errors import InsufficientCredits
from tests.conftest import requires_postgres
from tests.factories import make_org, make_projects
from tests.unit import test_credits_ledger as ledger_rules

pytestmark = [requires_postgres, pytest.mark.postgres]

C = 1000


def run_parallel(
    engine: Engine, calls: list[Callable[[Session], Any]], workers: int | None = None
) -> list[Any]:
    """Run each call in its own thread and session, started together; commit on success.

    Returns the value or the exception of each call, in order.
    """
    workers = workers or len(calls)
    barrier = threading.Barrier(workers)  # cyclic: batches of `workers` start together

    def worker(call):
        with Session(engine, expire_on_commit=False) as session:
            try:
                barrier.wait(timeout=30)
                result = call(session)
                session.commit()
                return result
            except Exception as error:  # noqa: BLE001 - reported to the test
                session.rollback()
                return error

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(worker, calls))


def check_invariants(engine: Engine, org_id: int) -> None:
    with Session(engine) as session:
        view = balance_get(session=session, org_id=org_id)
        assert view.balance == ledger_sum(session=session, org_id=org_id)
        assert view.balance >= 0 and 0 <= view.pooled <= view.balance
        assert all(p.balance_millicredits >= 0 for p in pools_list(session=session, org_id=org_id))


def test_fifty_parallel_holds_against_twenty_credits(pg_engine):
    org_id = make_org(pg_engine, slug="hot", credits=20 * C).id
    calls = [
        (
            lambda s, i=i: credits_hold(
                session=s,
                org_id=org_id,
                amount_millicredits=C,
                idempotency_key=f"h-{i}",
                generation_id=i,
            )
        )
        for i in range(50)
    ]
    results = run_parallel(pg_engine, calls)
    succeeded = [r for r in results if isinstance(r, CreditLedgerEntry)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert len(succeeded) == 20, [
        r for r in results if not isinstance(r, CreditLedgerEntry | InsufficientCredits)
    ]
    assert len(refused) == 30
    assert all(r.available_millicredits == 0 and r.needed_millicredits == C for r in refused)
    with Session(pg_engine) as session:
        assert balance_get(session=session, org_id=org_id).balance == 0
        assert ledger_sum(session=session, org_id=org_id) == 0
        balances_after = sorted(
            e.balance_after_millicredits
            for e in ledger_list(session=session, org_id=org_id, kinds=["hold"])
        )
        assert balances_after == [i * C for i in range(20)]  # each hold saw the previous one


def test_same_key_from_ten_threads_moves_once(pg_engine):
    org_id = make_org(pg_engine, slug="same-key", credits=10 * C).id
    calls = [
        lambda s: credits_hold(
            session=s,
            org_id=org_id,
            amount_millicredits=3 * C,
            idempotency_key="gen:42:hold",
            generation_id=42,
        )
    ] * 10
    results = run_parallel(pg_engine, calls)
    assert all(isinstance(r, CreditLedgerEntry) for r in results), results
    assert len({r.id for r in results}) == 1
    with Session(pg_engine) as session:
        holds = session.exec(
            select(CreditLedgerEntry).where(CreditLedgerEntry.idempotency_key == "gen:42:hold")
        ).all()
        assert len(holds) == 1
        assert balance_get(session=session, org_id=org_id).balance == 7 * C
    check_invariants(pg_engine, org_id)


def test_same_grant_key_from_ten_threads_moves_once(pg_engine):
    org_id = make_org(pg_engine, slug="grant-key").id
    calls = [
        lambda s: credits_grant(
            session=s,
            org_id=org_id,
            amount_millicredits=5 * C,
            idempotency_key="stripe:evt_9",
            kind="purchase",
        )
    ] * 10
    results = run_parallel(pg_engine, calls)
    assert all(isinstance(r, CreditLedgerEntry) for r in results), results
    assert len({r.id for r in results}) == 1
    check_invariants(pg_engine, org_id)
    with Session(pg_engine) as session:
        assert balance_get(session=session, org_id=org_id).balance == 5 * C


def test_concurrent_settle_and_release_of_one_hold_move_once(pg_engine):
    org_id = make_org(pg_engine, slug="close-race", credits=10 * C).id
    with Session(pg_engine) as session:
        hold = credits_hold(
            session=session,
            org_id=org_id,
            amount_millicredits=4 * C,
            idempotency_key="h",
            generation_id=77,
        )
        session.commit()
        hold_id = hold.id
    calls = []
    for i in range(10):
        if i % 2:
            calls.append(
                lambda s, i=i: credits_settle(
                    session=s,
                    hold_entry_id=hold_id,
                    actual_millicredits=3 * C,
                    idempotency_key=f"settle-{i}",
                )
            )
        else:
            calls.append(
                lambda s, i=i: credits_release(
                    session=s, generation_id=77, idempotency_key=f"release-{i}", reason="timeout"
                )
            )
    results = run_parallel(pg_engine, calls)
    closed = [r for r in results if isinstance(r, CreditLedgerEntry)]
    refused = [r for r in results if isinstance(r, HoldAlreadyClosed)]
    assert len(closed) == 1 and len(refused) == 9, results
    assert all(r.details["closing_entry_id"] == closed[0].id for r in refused)
    expected_balance = 10 * C - (3 * C if closed[0].kind == "settle" else 0)
    with Session(pg_engine) as session:
        assert balance_get(session=session, org_id=org_id).balance == expected_balance
        closings = session.exec(
            select(CreditLedgerEntry).where(CreditLedgerEntry.reference == f"hold:{hold_id}")
        ).all()
        assert len(closings) == 1
    check_invariants(pg_engine, org_id)


def test_same_key_settle_from_many_threads_returns_one_entry(pg_engine):
    org_id = make_org(pg_engine, slug="settle-key", credits=10 * C).id
    with Session(pg_engine) as session:
        hold_id = credits_hold(
            session=session, org_id=org_id, amount_millicredits=4 * C, idempotency_key="h2"
        ).id
        session.commit()
    calls = [
        lambda s: credits_settle(
            session=s, hold_entry_id=hold_id, actual_millicredits=C, idempotency_key="gen:1:settle"
        )
    ] * 8
    results = run_parallel(pg_engine, calls)
    assert all(isinstance(r, CreditLedgerEntry) for r in results), results
    assert len({r.id for r in results}) == 1
    with Session(pg_engine) as session:
        assert balance_get(session=session, org_id=org_id).balance == 9 * C


def test_key_race_across_orgs_moves_nothing_for_the_loser(pg_engine):
    """Two orgs (two different account locks) insert the same key: the loser waits at the
    unique index until the winner commits, then inserts and moves nothing (ON CONFLICT DO
    NOTHING) and reports the reuse, its transaction still usable."""
    org_a = make_org(pg_engine, slug="org-a").id
    org_b = make_org(pg_engine, slug="org-b").id
    outcome: dict[str, Any] = {}
    with Session(pg_engine) as first:
        credits_grant(session=first, org_id=org_a, amount_millicredits=C, idempotency_key="dup")

        def second_call():
            with Session(pg_engine) as second:
                try:
                    outcome["result"] = credits_grant(
                        session=second, org_id=org_b, amount_millicredits=C, idempotency_key="dup"
                    )
                    second.commit()
                except Exception as error:  # noqa: BLE001
                    outcome["result"] = error
                    # The refusal left the transaction usable: a movement under a new key.
                    credits_grant(
                        session=second, org_id=org_b, amount_millicredits=C, idempotency_key="new"
                    )
                    second.commit()

        thread = threading.Thread(target=second_call)
        thread.start()
        time.sleep(0.5)  # the second insert is now waiting on the first one's uncommitted key
        assert thread.is_alive()
        first.commit()
        thread.join(timeout=30)
    assert isinstance(outcome["result"], IdempotencyKeyReused)
    with Session(pg_engine) as session:
        assert balance_get(session=session, org_id=org_b).balance == C  # the "new" grant only
        assert balance_get(session=session, org_id=org_a).balance == C
    check_invariants(pg_engine, org_b)


def test_concurrent_account_creation_yields_one_account(pg_engine):
    org_id = make_org(pg_engine, slug="fresh").id
    results = run_parallel(
        pg_engine, [lambda s: credit_account_get_or_create(session=s, org_id=org_id).id] * 10
    )
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 1


def test_parallel_grants_first_use_of_account(pg_engine):
    org_id = make_org(pg_engine, slug="first-use").id
    calls = [
        (
            lambda s, i=i: credits_grant(
                session=s, org_id=org_id, amount_millicredits=C, idempotency_key=f"g-{i}"
            )
        )
        for i in range(12)
    ]
    results = run_parallel(pg_engine, calls)
    assert all(isinstance(r, CreditLedgerEntry) for r in results), results
    with Session(pg_engine) as session:
        assert balance_get(session=session, org_id=org_id).balance == 12 * C
    check_invariants(pg_engine, org_id)


def test_random_concurrent_mix_keeps_invariants(pg_engine):
    org = make_org(pg_engine, slug="mix", credits=30 * C)
    org_id = org.id
    projects = [project.id for project in make_projects(pg_engine, org, 2, name="P{index}")]
    rng = random.Random(7)
    calls = []
    for i in range(60):
        choice = rng.choice(
            ["hold", "hold", "project_hold", "allocate", "return", "grant", "close"]
        )
        project = rng.choice(projects)
        amount = rng.randint(1, 4) * 500
        if choice == "hold":
            calls.append(
                lambda s, i=i, a=amount: credits_hold(
                    session=s,
                    org_id=org_id,
                    amount_millicredits=a,
                    idempotency_key=f"mh-{i}",
                    generation_id=1000 + i,
                )
            )
        elif choice == "project_hold":
            calls.append(
                lambda s, i=i, a=amount, p=project: credits_hold(
                    session=s,
                    org_id=org_id,
                    amount_millicredits=a,
                    project_id=p,
                    idempotency_key=f"mp-{i}",
                    generation_id=1000 + i,
                )
            )
        elif choice == "allocate":
            calls.append(
                lambda s, i=i, a=amount, p=project: pool_allocate(
                    session=s,
                    org_id=org_id,
                    project_id=p,
                    amount_millicredits=a,
                    idempotency_key=f"ma-{i}",
                )
            )
        elif choice == "return":
            calls.append(
                lambda s, i=i, a=amount, p=project: pool_return(
                    session=s,
                    org_id=org_id,
                    project_id=p,
                    amount_millicredits=a,
                    idempotency_key=f"mr-{i}",
                )
            )
        elif choice == "grant":
            calls.append(
                lambda s, i=i, a=amount: credits_grant(
                    session=s, org_id=org_id, amount_millicredits=a, idempotency_key=f"mg-{i}"
                )
            )
        else:
            target = 1000 + rng.randrange(60)
            calls.append(
                lambda s, i=i, g=target: credits_release(
                    session=s, generation_id=g, idempotency_key=f"mc-{i}"
                )
            )
    results = run_parallel(pg_engine, calls, workers=20)
    kinds = Counter(type(r).__name__ for r in results)
    unexpected = [
        r
        for r in results
        if isinstance(r, Exception)
        and r.__class__.__name__ not in ("InsufficientCredits", "HoldAlreadyClosed", "NotFound")
    ]
    assert not unexpected, (unexpected, kinds)
    check_invariants(pg_engine, org_id)
    with Session(pg_engine) as session:
        for pool in pools_list(session=session, org_id=org_id):
            entries = session.exec(
                select(CreditLedgerEntry).where(CreditLedgerEntry.pool_id == pool.id)
            ).all()
            assert pool.balance_millicredits == sum(e.pool_amount_millicredits for e in entries)


def test_ledger_rules_in_a_rolled_back_postgres_transaction(pg_session):
    """The same rules as the SQLite unit tests, on PostgreSQL inside one transaction."""
    org = Organization(slug="pg-rules", name="PG")
    pg_session.add(org)
    pg_session.flush()
    project = Project(org_id=org.id, name="P")
    pg_session.add(project)
    pg_session.flush()
    credits_grant(
        session=pg_session, org_id=org.id, amount_millicredits=10 * C, idempotency_key="pg-g"
    )
    pool_allocate(
        session=pg_session,
        org_id=org.id,
        project_id=project.id,
        amount_millicredits=3 * C,
        idempotency_key="pg-pa",
    )
    hold = credits_hold(
        session=pg_session,
        org_id=org.id,
        amount_millicredits=4 * C,
        project_id=project.id,
        idempotency_key="pg-h",
        generation_id=5,
    )
    assert hold.pool_amount_millicredits == -3 * C
    settle = credits_settle(
        session=pg_session, generation_id=5, actual_millicredits=2500, idempotency_key="pg-s"
    )
    assert (settle.amount_millicredits, settle.pool_amount_millicredits) == (1500, 500)
    with pytest.raises(HoldAlreadyClosed):
        credits_release(session=pg_session, hold_entry_id=hold.id, idempotency_key="pg-r")
    with pytest.raises(IdempotencyKeyReused):
        credits_grant(
            session=pg_session, org_id=org.id, amount_millicredits=C, idempotency_key="pg-h"
        )
    with pytest.raises(InsufficientCredits):
        credits_hold(
            session=pg_session, org_id=org.id, amount_millicredits=8 * C, idempotency_key="pg-h2"
        )
    view = balance_get(session=pg_session, org_id=org.id)
    assert (view.balance, view.pooled) == (10 * C - 2500, 500)
    assert view.balance == ledger_sum(session=pg_session, org_id=org.id)


def _written_state(engine: Engine, org_id: int) -> tuple:
    """What a movement would change: the account row version, its balance, the ledger rows,
    the pool rows' versions, and the entry id sequence (an attempted insert advances it)."""
    with engine.connect() as conn:
        return (
            conn.execute(
                text(
                    "SELECT ctid::text, balance_millicredits FROM credit_accounts "
                    "WHERE org_id = :org_id"
                ),
                {"org_id": org_id},
            ).one(),
            conn.execute(text("SELECT count(*) FROM credit_ledger_entries")).scalar_one(),
            conn.execute(
                text("SELECT array_agg(ctid::text ORDER BY id) FROM credit_pools")
            ).scalar_one(),
            conn.execute(text("SELECT last_value FROM credit_ledger_entries_id_seq")).scalar_one(),
        )


def test_replayed_keys_return_the_first_entries_and_write_nothing(pg_engine):
    org = make_org(pg_engine, slug="replays", credits=20 * C)
    project_id = make_projects(pg_engine, org, 1)[0].id
    calls = [
        (credits_grant, dict(org_id=org.id, amount_millicredits=5 * C, kind="purchase")),
        (credits_grant, dict(org_id=org.id, amount_millicredits=-C, kind="adjustment")),
        (pool_allocate, dict(org_id=org.id, project_id=project_id, amount_millicredits=4 * C)),
        (
            credits_hold,
            dict(org_id=org.id, amount_millicredits=6 * C, project_id=project_id, generation_id=1),
        ),
        (credits_settle, dict(generation_id=1, actual_millicredits=5 * C)),
        (credits_hold, dict(org_id=org.id, amount_millicredits=2 * C, generation_id=2)),
        (credits_hold, dict(org_id=org.id, amount_millicredits=C, generation_id=3)),
        (credits_release, dict(generation_id=2)),
        (credits_expire, dict(org_id=org.id, amount_millicredits=3 * C)),
    ]
    first = []
    with Session(pg_engine, expire_on_commit=False) as session:
        for index, (function, kwargs) in enumerate(calls):
            first.append(function(session=session, idempotency_key=f"replay-{index}", **kwargs))
        hold_3 = first[6]
        settle_3 = credits_settle(
            session=session,
            hold_entry_id=hold_3.id,
            actual_millicredits=C,
            idempotency_key="replay-by-hold-id",
        )
        session.commit()
    before = _written_state(pg_engine, org.id)

    for index, (function, kwargs) in enumerate(calls):
        with Session(pg_engine) as session:
            again = function(session=session, idempotency_key=f"replay-{index}", **kwargs)
            assert (again.id, again.kind, again.amount_millicredits) == (
                first[index].id,
                first[index].kind,
                first[index].amount_millicredits,
            )
            session.commit()
        assert _written_state(pg_engine, org.id) == before, function.__name__
    with Session(pg_engine) as session:
        again = credits_settle(
            session=session,
            hold_entry_id=hold_3.id,
            actual_millicredits=C,
            idempotency_key="replay-by-hold-id",
        )
        assert again.id == settle_3.id
        # The same key with other parameters is refused, and writes nothing either.
        with pytest.raises(IdempotencyKeyReused):
            credits_settle(
                session=session,
                hold_entry_id=hold_3.id,
                actual_millicredits=C // 2,
                idempotency_key="replay-by-hold-id",
            )
        session.rollback()
    assert _written_state(pg_engine, org.id) == before
    check_invariants(pg_engine, org.id)


# --- the ledger's rules again, on PostgreSQL's one-round-trip path ---------------------------
# tests/unit/test_credits_ledger.py runs them on SQLite (the ORM path). Here the same tests run
# with a PostgreSQL session (a transaction rolled back after each test), and the property test
# with a PostgreSQL engine. Tests that open their own sessions on the SQLite engine stay there.


@pytest.fixture
def session(pg_session):
    return pg_session


@pytest.fixture
def property_engine(pg_engine):
    return pg_engine  # what the examples commit is truncated after the test


org = ledger_rules.org
for _name, _test in vars(ledger_rules).items():
    if _name.startswith("test_") and "engine" not in inspect.signature(_test).parameters:
        globals()[_name] = _test
