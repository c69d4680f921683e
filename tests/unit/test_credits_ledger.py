"""Credit ledger rules: balances, holds, settles, releases, pools, idempotency, errors."""

from __future__ import annotations

import csv
import io
import itertools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event
from sqlmodel import Session, SQLModel, select

from core import clock, db
from models import CreditAccount, CreditLedgerEntry, CreditPool
from models.enums import LedgerEntryKind
from services import credits
from services.credits import (
    HoldAlreadyClosed,
    IdempotencyKeyReused,
    SettleExceedsHold,
    balance_get,
    credit_account_get_or_create,
    credits_apply,
    credits_available,
    credits_expire,
    credits_grant,
    credits_hold,
    credits_release,
    credits_settle,
    format_credits,
    hold_closing_entry,
    ledger_csv,
    ledger_list,
    ledger_sum,
    pool_allocate,
    pool_return,
    pools_list,
)
from services.errors import Conflict, InsufficientCredits, NotFound, ValidationFailed
from tests.factories import make_org, make_projects

C = 1000  # millicredits per credit
_keys = itertools.count()


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


def assert_invariants(session: Session, org_id: int) -> None:
    view = balance_get(session=session, org_id=org_id)
    assert view.balance == ledger_sum(session=session, org_id=org_id)
    assert view.balance >= 0
    assert 0 <= view.pooled <= view.balance
    assert view.available_general == view.balance - view.pooled
    for pool in pools_list(session=session, org_id=org_id):
        assert pool.balance_millicredits >= 0
        pool_sum = sum(
            e.pool_amount_millicredits
            for e in session.exec(
                select(CreditLedgerEntry).where(CreditLedgerEntry.pool_id == pool.id)
            )
        )
        assert pool.balance_millicredits == pool_sum
    entries = ledger_list(session=session, org_id=org_id, limit=100_000)
    if entries:  # newest first: the newest entry's balance_after is the balance
        assert entries[0].balance_after_millicredits == view.balance


@pytest.fixture
def org(session):
    acme = make_org(session, slug="acme")
    project_ids = [project.id for project in make_projects(session, acme, 2)]
    session.commit()
    return acme.id, project_ids


# --- formatting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("millicredits", "text"),
    [
        (0, "0"),
        (1, "0.001"),
        (125, "0.125"),
        (1500, "1.5"),
        (4000, "4"),
        (1_234_500, "1,234.5"),
        (1_000_000_000_010, "1,000,000,000.01"),
        (-1500, "-1.5"),
        (999_999_999, "999,999.999"),
    ],
)
def test_format_credits(millicredits, text):
    assert format_credits(millicredits) == text


# --- grants and balance -------------------------------------------------------------------


def test_account_created_on_demand_and_only_once(session, org):
    org_id, _ = org
    first = credit_account_get_or_create(session=session, org_id=org_id)
    second = credit_account_get_or_create(session=session, org_id=org_id)
    assert first.id == second.id and first.balance_millicredits == 0
    assert balance_get(session=session, org_id=org_id).balance == 0


def test_grant_kinds_add_to_balance(session, org):
    org_id, _ = org
    for kind in ("grant", "purchase", "refund"):
        entry = credits_grant(
            session=session,
            org_id=org_id,
            amount_millicredits=2 * C,
            idempotency_key=key(),
            kind=kind,
        )
        assert entry.kind == kind
    entry = credits_grant(
        session=session,
        org_id=org_id,
        amount_millicredits=-500,
        idempotency_key=key(),
        kind=LedgerEntryKind.adjustment,
        memo="goodwill correction",
    )
    assert entry.amount_millicredits == -500 and entry.balance_after_millicredits == 5500
    session.commit()
    assert balance_get(session=session, org_id=org_id).balance == 5500
    assert_invariants(session, org_id)


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        ("grant", 0),
        ("grant", -1),
        ("purchase", -5),
        ("hold", 5),
        ("settle", 5),
        ("bogus", 5),
        ("grant", 1.5),
        ("grant", True),
        ("adjustment", 0),
    ],
)
def test_grant_rejects_bad_kind_or_amount(session, org, kind, amount):
    with pytest.raises(ValidationFailed):
        credits_grant(
            session=session,
            org_id=org[0],
            amount_millicredits=amount,
            idempotency_key=key(),
            kind=kind,
        )


def test_negative_adjustment_never_below_zero_or_into_pools(session, org):
    org_id, (project_id, _) = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=3 * C, idempotency_key=key())
    pool_allocate(
        session=session,
        org_id=org_id,
        project_id=project_id,
        amount_millicredits=2 * C,
        idempotency_key=key(),
    )
    with pytest.raises(InsufficientCredits) as error:
        credits_grant(
            session=session,
            org_id=org_id,
            amount_millicredits=-2 * C,
            idempotency_key=key(),
            kind="adjustment",
        )
    assert error.value.available_millicredits == 1 * C
    credits_grant(
        session=session,
        org_id=org_id,
        amount_millicredits=-1 * C,
        idempotency_key=key(),
        kind="adjustment",
    )
    assert balance_get(session=session, org_id=org_id).available_general == 0
    assert_invariants(session, org_id)


def test_idempotency_key_is_required(session, org):
    with pytest.raises(ValidationFailed):
        credits_grant(session=session, org_id=org[0], amount_millicredits=C, idempotency_key="  ")
    with pytest.raises(ValidationFailed):
        credits_hold(
            session=session, org_id=org[0], amount_millicredits=C, idempotency_key="x" * 201
        )


# --- idempotency --------------------------------------------------------------------------


def test_same_key_returns_original_entry_without_second_movement(session, org):
    org_id, _ = org
    first = credits_grant(
        session=session,
        org_id=org_id,
        amount_millicredits=5 * C,
        idempotency_key="stripe:evt_1",
        reference="in_1",
    )
    session.commit()
    again = credits_grant(
        session=session,
        org_id=org_id,
        amount_millicredits=5 * C,
        idempotency_key="stripe:evt_1",
        reference="in_1",
        memo="retry",
    )
    assert again.id == first.id
    assert balance_get(session=session, org_id=org_id).balance == 5 * C
    assert len(ledger_list(session=session, org_id=org_id)) == 1


def test_same_key_with_different_parameters_conflicts(session, org):
    org_id, (project_id, _) = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=5 * C, idempotency_key="g1")
    with pytest.raises(IdempotencyKeyReused) as error:
        credits_grant(
            session=session, org_id=org_id, amount_millicredits=6 * C, idempotency_key="g1"
        )
    assert isinstance(error.value, Conflict) and error.value.code == "idempotency_key_reused"
    with pytest.raises(IdempotencyKeyReused):
        credits_hold(session=session, org_id=org_id, amount_millicredits=C, idempotency_key="g1")
    hold = credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=C,
        idempotency_key="h1",
        project_id=project_id,
    )
    assert (
        credits_hold(
            session=session,
            org_id=org_id,
            amount_millicredits=C,
            idempotency_key="h1",
            project_id=project_id,
        ).id
        == hold.id
    )
    with pytest.raises(IdempotencyKeyReused):
        credits_hold(
            session=session,
            org_id=org_id,
            amount_millicredits=2 * C,
            idempotency_key="h1",
            project_id=project_id,
        )
    with pytest.raises(IdempotencyKeyReused):
        credits_hold(session=session, org_id=org_id, amount_millicredits=C, idempotency_key="h1")
    assert_invariants(session, org_id)


def test_key_from_another_org_conflicts(session, org):
    other_id = make_org(session, slug="other").id
    credits_grant(session=session, org_id=org[0], amount_millicredits=C, idempotency_key="shared")
    with pytest.raises(IdempotencyKeyReused):
        credits_grant(
            session=session, org_id=other_id, amount_millicredits=C, idempotency_key="shared"
        )
    assert balance_get(session=session, org_id=other_id).balance == 0


# --- holds --------------------------------------------------------------------------------


def test_hold_reduces_balance_and_refuses_more_than_available(session, org):
    org_id, _ = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=1500, idempotency_key=key())
    with pytest.raises(InsufficientCredits) as error:
        credits_hold(
            session=session, org_id=org_id, amount_millicredits=4 * C, idempotency_key=key()
        )
    assert (
        str(error.value)
        == "This run needs 4 credits; the organization has 1.5. Add credits in Billing."
    )
    assert error.value.code == "insufficient_credits"
    assert (error.value.needed_millicredits, error.value.available_millicredits) == (4000, 1500)
    hold = credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=1500,
        idempotency_key=key(),
        generation_id=11,
    )
    assert hold.amount_millicredits == -1500 and hold.balance_after_millicredits == 0
    assert hold.kind == "hold" and hold.generation_id == 11
    with pytest.raises(InsufficientCredits, match="needs 0.001 credits"):
        credits_hold(session=session, org_id=org_id, amount_millicredits=1, idempotency_key=key())
    assert_invariants(session, org_id)


def test_hold_amount_must_be_positive(session, org):
    credits_grant(session=session, org_id=org[0], amount_millicredits=C, idempotency_key=key())
    for amount in (0, -5, 2.5):
        with pytest.raises(ValidationFailed):
            credits_hold(
                session=session, org_id=org[0], amount_millicredits=amount, idempotency_key=key()
            )


def test_one_hold_per_generation(session, org):
    org_id, _ = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=5 * C, idempotency_key=key())
    credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=C,
        idempotency_key="gen7",
        generation_id=7,
    )
    with pytest.raises(Conflict):
        credits_hold(
            session=session,
            org_id=org_id,
            amount_millicredits=C,
            idempotency_key="gen7-b",
            generation_id=7,
        )


def test_hold_on_org_without_account_is_insufficient(session, org):
    with pytest.raises(InsufficientCredits):
        credits_hold(session=session, org_id=org[0], amount_millicredits=C, idempotency_key=key())
    assert balance_get(session=session, org_id=org[0]).balance == 0


# --- settle and release -------------------------------------------------------------------


def test_settle_charges_actual_and_returns_the_rest(session, org):
    org_id, _ = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=10 * C, idempotency_key=key())
    hold = credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=4 * C,
        idempotency_key=key(),
        generation_id=1,
    )
    settle = credits_settle(
        session=session, generation_id=1, actual_millicredits=2750, idempotency_key="s1"
    )
    assert settle.kind == "settle" and settle.amount_millicredits == 1250
    assert settle.reference == f"hold:{hold.id}" and settle.generation_id == 1
    assert hold.amount_millicredits + settle.amount_millicredits == -2750
    assert balance_get(session=session, org_id=org_id).balance == 10 * C - 2750
    assert hold_closing_entry(session=session, hold=hold).id == settle.id
    # Replays return the same entry; a different actual under the same key conflicts.
    assert (
        credits_settle(
            session=session, hold_entry_id=hold.id, actual_millicredits=2750, idempotency_key="s1"
        ).id
        == settle.id
    )
    with pytest.raises(IdempotencyKeyReused):
        credits_settle(
            session=session, hold_entry_id=hold.id, actual_millicredits=3000, idempotency_key="s1"
        )
    # Another key cannot settle or release it again.
    with pytest.raises(HoldAlreadyClosed) as error:
        credits_settle(
            session=session, hold_entry_id=hold.id, actual_millicredits=2750, idempotency_key="s2"
        )
    assert error.value.closing_entry.id == settle.id
    with pytest.raises(HoldAlreadyClosed):
        credits_release(session=session, hold_entry_id=hold.id, idempotency_key="r1")
    assert balance_get(session=session, org_id=org_id).balance == 10 * C - 2750
    assert_invariants(session, org_id)


def test_settle_full_and_zero(session, org):
    org_id, _ = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=10 * C, idempotency_key=key())
    full = credits_hold(
        session=session, org_id=org_id, amount_millicredits=3 * C, idempotency_key=key()
    )
    assert (
        credits_settle(
            session=session, hold_entry_id=full.id, actual_millicredits=3 * C, idempotency_key=key()
        ).amount_millicredits
        == 0
    )
    zero = credits_hold(
        session=session, org_id=org_id, amount_millicredits=3 * C, idempotency_key=key()
    )
    assert (
        credits_settle(
            session=session, hold_entry_id=zero.id, actual_millicredits=0, idempotency_key=key()
        ).amount_millicredits
        == 3 * C
    )
    assert balance_get(session=session, org_id=org_id).balance == 7 * C
    assert_invariants(session, org_id)


def test_settle_more_than_held_is_refused(session, org):
    org_id, _ = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=10 * C, idempotency_key=key())
    hold = credits_hold(
        session=session, org_id=org_id, amount_millicredits=2 * C, idempotency_key=key()
    )
    with pytest.raises(SettleExceedsHold) as error:
        credits_settle(
            session=session, hold_entry_id=hold.id, actual_millicredits=2001, idempotency_key=key()
        )
    assert error.value.code == "settle_exceeds_hold"
    with pytest.raises(ValidationFailed):
        credits_settle(
            session=session, hold_entry_id=hold.id, actual_millicredits=-1, idempotency_key=key()
        )
    assert hold_closing_entry(session=session, hold=hold) is None


def test_release_returns_everything_once(session, org):
    org_id, _ = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=5 * C, idempotency_key=key())
    hold = credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=5 * C,
        idempotency_key=key(),
        generation_id=3,
    )
    release = credits_release(
        session=session,
        generation_id=3,
        idempotency_key="gen:3:timeout",
        reason="timed out after 15 minutes",
    )
    assert (
        release.kind == "release"
        and release.amount_millicredits == 5 * C
        and release.memo.startswith("timed out")
    )
    assert (
        credits_release(session=session, generation_id=3, idempotency_key="gen:3:timeout").id
        == release.id
    )
    with pytest.raises(HoldAlreadyClosed):
        credits_settle(
            session=session, generation_id=3, actual_millicredits=C, idempotency_key="gen:3:settle"
        )
    with pytest.raises(HoldAlreadyClosed):
        credits_release(session=session, hold_entry_id=hold.id, idempotency_key="gen:3:failed")
    assert balance_get(session=session, org_id=org_id).balance == 5 * C
    assert_invariants(session, org_id)


def test_settle_and_release_need_an_existing_hold(session, org):
    org_id, _ = org
    grant = credits_grant(
        session=session, org_id=org_id, amount_millicredits=5 * C, idempotency_key=key()
    )
    with pytest.raises(NotFound):
        credits_settle(
            session=session, generation_id=999, actual_millicredits=0, idempotency_key=key()
        )
    with pytest.raises(NotFound):  # a grant is not a hold
        credits_release(session=session, hold_entry_id=grant.id, idempotency_key=key())
    with pytest.raises(ValidationFailed):
        credits_release(session=session, idempotency_key=key())
    with pytest.raises(ValidationFailed):
        credits_release(
            session=session, hold_entry_id=grant.id, generation_id=1, idempotency_key=key()
        )


# --- pools --------------------------------------------------------------------------------


def test_pool_allocate_and_return_move_only_the_earmark(session, org):
    org_id, (project_id, _) = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=10 * C, idempotency_key=key())
    entry = pool_allocate(
        session=session,
        org_id=org_id,
        project_id=project_id,
        amount_millicredits=4 * C,
        idempotency_key="pa1",
        actor_user_id=None,
    )
    assert (
        entry.kind == "pool_allocate"
        and entry.amount_millicredits == 0
        and entry.pool_amount_millicredits == 4 * C
    )
    assert entry.balance_after_millicredits == 10 * C
    assert balance_get(session=session, org_id=org_id) == credits.BalanceView(
        balance=10 * C, pooled=4 * C, available_general=6 * C
    )
    assert (
        pool_allocate(
            session=session,
            org_id=org_id,
            project_id=project_id,
            amount_millicredits=4 * C,
            idempotency_key="pa1",
        ).id
        == entry.id
    )
    with pytest.raises(InsufficientCredits):
        pool_allocate(
            session=session,
            org_id=org_id,
            project_id=project_id,
            amount_millicredits=7 * C,
            idempotency_key=key(),
        )
    back = pool_return(
        session=session,
        org_id=org_id,
        project_id=project_id,
        amount_millicredits=C,
        idempotency_key=key(),
    )
    assert back.pool_amount_millicredits == -C and back.amount_millicredits == 0
    with pytest.raises(InsufficientCredits):
        pool_return(
            session=session,
            org_id=org_id,
            project_id=project_id,
            amount_millicredits=4 * C,
            idempotency_key=key(),
        )
    rest = pool_return(session=session, org_id=org_id, project_id=project_id, idempotency_key=key())
    assert rest.pool_amount_millicredits == -3 * C
    assert [p.balance_millicredits for p in pools_list(session=session, org_id=org_id)] == [0]
    with pytest.raises(NotFound):
        pool_return(session=session, org_id=org_id, project_id=org[1][1], idempotency_key=key())
    assert_invariants(session, org_id)


def test_project_hold_draws_from_pool_first_then_general(session, org):
    org_id, (project_a, project_b) = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=10 * C, idempotency_key=key())
    pool_allocate(
        session=session,
        org_id=org_id,
        project_id=project_a,
        amount_millicredits=3 * C,
        idempotency_key=key(),
    )
    pool_allocate(
        session=session,
        org_id=org_id,
        project_id=project_b,
        amount_millicredits=5 * C,
        idempotency_key=key(),
    )
    # Project A may use its pool (3) + general (2); the org outside projects only general (2).
    assert credits_available(session=session, org_id=org_id, project_id=project_a) == 5 * C
    assert credits_available(session=session, org_id=org_id) == 2 * C
    with pytest.raises(InsufficientCredits) as error:
        credits_hold(
            session=session, org_id=org_id, amount_millicredits=3 * C, idempotency_key=key()
        )
    assert error.value.available_millicredits == 2 * C
    with pytest.raises(InsufficientCredits, match="this project has 5"):
        credits_hold(
            session=session,
            org_id=org_id,
            amount_millicredits=6 * C,
            idempotency_key=key(),
            project_id=project_a,
        )

    hold = credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=4 * C,
        idempotency_key=key(),
        project_id=project_a,
        generation_id=21,
    )
    assert hold.pool_amount_millicredits == -3 * C and hold.pool_id is not None
    view = balance_get(session=session, org_id=org_id)
    assert (view.balance, view.pooled, view.available_general) == (6 * C, 5 * C, 1 * C)

    # Charge 2.5: taken from the pool part first, so the pool gets 0.5 back, general 1.
    settle = credits_settle(
        session=session, generation_id=21, actual_millicredits=2500, idempotency_key=key()
    )
    assert settle.amount_millicredits == 1500 and settle.pool_amount_millicredits == 500
    pools = {
        p.project_id: p.balance_millicredits for p in pools_list(session=session, org_id=org_id)
    }
    assert pools == {project_a: 500, project_b: 5 * C}
    assert balance_get(session=session, org_id=org_id).available_general == 2 * C
    assert_invariants(session, org_id)


def _held_account_and_pool(
    session: Session, org_id: int, project_id: int
) -> tuple[CreditAccount, CreditPool]:
    """10 credits, 3 of them in the project's pool; the account and the pool as objects the
    session holds."""
    credits_grant(session=session, org_id=org_id, amount_millicredits=10 * C, idempotency_key=key())
    pool_allocate(
        session=session,
        org_id=org_id,
        project_id=project_id,
        amount_millicredits=3 * C,
        idempotency_key=key(),
    )
    account = credit_account_get_or_create(session=session, org_id=org_id)
    (pool,) = pools_list(session=session, org_id=org_id)
    return account, pool


def test_a_hold_is_what_the_session_and_the_database_both_show(session, org):
    """The account and pool the session already holds show the hold at once, and the entry
    it returns is the row stored."""
    org_id, (project_a, _) = org
    account, pool = _held_account_and_pool(session, org_id, project_a)

    hold = credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=4 * C,
        idempotency_key="hold-31",
        project_id=project_a,
        generation_id=31,
        actor_user_id=None,
        memo="gen_31 on Studio Local Text",
    )

    assert (account.balance_millicredits, pool.balance_millicredits) == (6 * C, 0)
    shown = {
        name: getattr(hold, name)
        for name in ("id", "kind", "amount_millicredits", "balance_after_millicredits")
        + ("pool_id", "pool_amount_millicredits", "idempotency_key", "project_id")
        + ("generation_id", "reference", "memo")
    }
    session.expire_all()
    stored = session.get(CreditLedgerEntry, shown["id"])
    assert {name: getattr(stored, name) for name in shown} == shown
    assert shown["amount_millicredits"] == -4 * C and shown["pool_amount_millicredits"] == -3 * C
    assert shown["pool_id"] == pool.id and shown["memo"] == "gen_31 on Studio Local Text"
    assert clock.as_utc(stored.created_at) == clock.as_utc(hold.created_at)
    assert_invariants(session, org_id)


def test_a_movement_does_not_read_back_what_the_session_holds(session, org):
    """Objects of the account and pools the session holds are only marked stale by a movement:
    the next movement does not load them again (one round trip stays one)."""
    org_id, (project_a, _) = org
    account, pool = _held_account_and_pool(session, org_id, project_a)
    credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=C,
        idempotency_key=key(),
        project_id=project_a,
        generation_id=41,
    )
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(session.get_bind(), "before_cursor_execute", seen)
    try:
        credits_hold(
            session=session,
            org_id=org_id,
            amount_millicredits=C,
            idempotency_key=key(),
            project_id=project_a,
            generation_id=42,
        )
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", seen)

    reloads = ("SELECT credit_accounts.", "SELECT credit_pools.")
    assert [s for s in statements if s.lstrip().startswith(reloads)] == []
    assert (account.balance_millicredits, pool.balance_millicredits) == (8 * C, C)
    assert_invariants(session, org_id)


def test_release_of_pooled_hold_refills_the_pool(session, org):
    org_id, (project_a, _) = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=10 * C, idempotency_key=key())
    pool_allocate(
        session=session,
        org_id=org_id,
        project_id=project_a,
        amount_millicredits=3 * C,
        idempotency_key=key(),
    )
    hold = credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=2 * C,
        idempotency_key=key(),
        project_id=project_a,
    )
    assert hold.pool_amount_millicredits == -2 * C
    release = credits_release(session=session, hold_entry_id=hold.id, idempotency_key=key())
    assert release.pool_amount_millicredits == 2 * C
    assert pools_list(session=session, org_id=org_id)[0].balance_millicredits == 3 * C
    assert_invariants(session, org_id)


def test_project_without_pool_uses_general(session, org):
    org_id, (project_a, _) = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=2 * C, idempotency_key=key())
    hold = credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=2 * C,
        idempotency_key=key(),
        project_id=project_a,
    )
    assert hold.pool_amount_millicredits == 0 and hold.pool_id is None
    assert hold.project_id == project_a


def test_deleted_pool_returns_to_general(session, org):
    org_id, (project_a, _) = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=5 * C, idempotency_key=key())
    pool_allocate(
        session=session,
        org_id=org_id,
        project_id=project_a,
        amount_millicredits=2 * C,
        idempotency_key=key(),
    )
    hold = credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=2 * C,
        idempotency_key=key(),
        project_id=project_a,
    )
    session.commit()
    session.delete(session.get(CreditPool, hold.pool_id))
    session.commit()
    session.refresh(hold)
    release = credits_release(session=session, hold_entry_id=hold.id, idempotency_key=key())
    assert release.pool_amount_millicredits == 0 and release.pool_id is None
    assert balance_get(session=session, org_id=org_id) == credits.BalanceView(5 * C, 0, 5 * C)


# --- expiry -------------------------------------------------------------------------------


def test_expire_is_clamped_to_unpooled_credits(session, org):
    org_id, (project_a, _) = org
    credits_grant(session=session, org_id=org_id, amount_millicredits=5 * C, idempotency_key=key())
    pool_allocate(
        session=session,
        org_id=org_id,
        project_id=project_a,
        amount_millicredits=C,
        idempotency_key=key(),
    )
    credits_hold(session=session, org_id=org_id, amount_millicredits=C, idempotency_key=key())
    entry = credits_expire(
        session=session, org_id=org_id, amount_millicredits=10 * C, idempotency_key="exp-1"
    )
    assert entry.kind == "expiry" and entry.amount_millicredits == -3 * C
    assert (
        credits_expire(
            session=session, org_id=org_id, amount_millicredits=10 * C, idempotency_key="exp-1"
        ).id
        == entry.id
    )
    nothing = credits_expire(
        session=session, org_id=org_id, amount_millicredits=C, idempotency_key="exp-2"
    )
    assert nothing.amount_millicredits == 0
    assert balance_get(session=session, org_id=org_id) == credits.BalanceView(C, C, 0)
    assert_invariants(session, org_id)


# --- listing and export -------------------------------------------------------------------


def test_ledger_list_filters_and_pages(session, org):
    org_id, _ = org
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for day in range(5):
        clock.freeze(start + timedelta(days=day))
        credits_grant(session=session, org_id=org_id, amount_millicredits=C, idempotency_key=key())
        credits_hold(session=session, org_id=org_id, amount_millicredits=100, idempotency_key=key())
    session.commit()
    all_entries = ledger_list(session=session, org_id=org_id)
    assert len(all_entries) == 10 and all_entries[0].kind == "hold"
    assert [e.id for e in all_entries] == sorted((e.id for e in all_entries), reverse=True)
    assert len(ledger_list(session=session, org_id=org_id, kinds=["grant"])) == 5
    window = ledger_list(
        session=session,
        org_id=org_id,
        since=start + timedelta(days=1),
        until=start + timedelta(days=3),
    )
    assert len(window) == 4
    page = ledger_list(session=session, org_id=org_id, limit=3, offset=3)
    assert [e.id for e in page] == [e.id for e in all_entries[3:6]]
    with pytest.raises(ValueError):
        ledger_list(session=session, org_id=org_id, kinds=["nope"])


def test_ledger_csv(session, org):
    org_id, _ = org
    credits_grant(
        session=session,
        org_id=org_id,
        amount_millicredits=1_234_500,
        idempotency_key=key(),
        memo="=HYPERLINK(1)",
        reference="in_9",
    )
    credits_hold(
        session=session,
        org_id=org_id,
        amount_millicredits=250,
        idempotency_key=key(),
        generation_id=5,
    )
    rows = list(csv.DictReader(io.StringIO(ledger_csv(session=session, org_id=org_id))))
    assert [r["kind"] for r in rows] == ["hold", "grant"]
    assert rows[0]["amount_credits"] == "-0.25" and rows[0]["generation_id"] == "5"
    assert rows[1]["amount_credits"] == "1234.5" and rows[1]["balance_after_credits"] == "1234.5"
    assert rows[1]["memo"] == "'=HYPERLINK(1)" and rows[1]["reference"] == "in_9"
    assert rows[1]["created_at_utc"].endswith("+00:00")


def test_orgs_are_isolated(session, org):
    org_id, _ = org
    other_id = make_org(session, slug="other").id
    credits_grant(session=session, org_id=org_id, amount_millicredits=5 * C, idempotency_key=key())
    credits_grant(session=session, org_id=other_id, amount_millicredits=C, idempotency_key=key())
    assert ledger_sum(session=session, org_id=org_id) == 5 * C
    assert ledger_sum(session=session, org_id=other_id) == C
    assert len(ledger_list(session=session, org_id=other_id)) == 1


def test_functions_do_not_commit(session, org):
    org_id, _ = org
    credits_grant(
        session=session, org_id=org_id, amount_millicredits=5 * C, idempotency_key="uncommitted"
    )
    session.rollback()
    assert balance_get(session=session, org_id=org_id).balance == 0
    assert ledger_sum(session=session, org_id=org_id) == 0


def test_credits_apply_commits_in_its_own_transaction(engine, org):
    org_id, _ = org
    entry = credits_apply(
        credits_grant, org_id=org_id, amount_millicredits=2 * C, idempotency_key="applied"
    )
    assert entry.id is not None
    with Session(engine) as other:
        assert balance_get(session=other, org_id=org_id).balance == 2 * C


def test_lost_key_race_returns_the_winner(engine, org):
    """The SAVEPOINT path: the key is committed by another transaction after our pre-check."""
    org_id, _ = org
    with Session(engine) as winner:
        won = credits_grant(
            session=winner, org_id=org_id, amount_millicredits=C, idempotency_key="race"
        )
        winner.commit()
        won_id = won.id
    with Session(engine) as loser:
        account = credit_account_get_or_create(session=loser, org_id=org_id)
        entry = CreditLedgerEntry(
            org_id=org_id, kind="grant", amount_millicredits=C, idempotency_key="race"
        )
        result = credits._apply(
            loser,
            account=account,
            pool=None,
            entry=entry,
            expected={"org_id": org_id, "kind": "grant", "amount_millicredits": C, "reference": ""},
        )
        assert result.id == won_id
        loser.commit()
        assert (
            loser.exec(select(CreditAccount).where(CreditAccount.org_id == org_id))
            .one()
            .balance_millicredits
            == C
        )


# --- property: random sequences keep every invariant --------------------------------------

_operation = st.one_of(
    st.tuples(st.just("grant"), st.integers(1, 20_000)),
    st.tuples(st.just("purchase"), st.integers(1, 20_000)),
    st.tuples(st.just("refund"), st.integers(1, 5_000)),
    st.tuples(st.just("adjust"), st.integers(-10_000, 10_000).filter(bool)),
    st.tuples(st.just("hold"), st.integers(1, 15_000), st.sampled_from([None, 0, 1])),
    st.tuples(st.just("settle"), st.integers(0, 30), st.integers(0, 15_000)),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("allocate"), st.integers(0, 1), st.integers(1, 10_000)),
    st.tuples(st.just("return"), st.integers(0, 1), st.integers(1, 10_000)),
    st.tuples(st.just("expire"), st.integers(1, 10_000)),
    st.tuples(st.just("replay"), st.integers(0, 60)),
)


@pytest.fixture(scope="module")
def property_engine():
    directory = tempfile.mkdtemp(prefix="cs-credits-prop-")
    engine = db.make_engine(f"sqlite:///{Path(directory) / 'prop.db'}")
    SQLModel.metadata.create_all(engine)
    from services.catalog import catalog_sync

    with Session(engine) as session:
        catalog_sync(session=session)
        session.commit()
    yield engine
    engine.dispose()


_org_counter = itertools.count()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=st.lists(_operation, min_size=1, max_size=40))
def test_random_sequences_keep_invariants(property_engine, operations):
    with Session(property_engine, expire_on_commit=False) as session:
        org = make_org(session, slug=f"prop-{next(_org_counter)}")
        org_id, projects = org.id, [project.id for project in make_projects(session, org, 2)]
        holds: list[CreditLedgerEntry] = []
        used_keys: list[tuple] = []  # (function, kwargs) of successful calls, for replays
        for step, operation in enumerate(operations):
            name = operation[0]
            k = f"prop-{org_id}-{step}"
            call = None
            try:
                if name in ("grant", "purchase", "refund", "adjust"):
                    kind = "adjustment" if name == "adjust" else name
                    call = (
                        credits_grant,
                        dict(
                            org_id=org_id,
                            amount_millicredits=operation[1],
                            kind=kind,
                            idempotency_key=k,
                        ),
                    )
                elif name == "hold":
                    project = None if operation[2] is None else projects[operation[2]]
                    call = (
                        credits_hold,
                        dict(
                            org_id=org_id,
                            amount_millicredits=operation[1],
                            project_id=project,
                            idempotency_key=k,
                        ),
                    )
                elif name == "settle" and holds:
                    hold = holds[operation[1] % len(holds)]
                    actual = min(operation[2], -hold.amount_millicredits)
                    call = (
                        credits_settle,
                        dict(hold_entry_id=hold.id, actual_millicredits=actual, idempotency_key=k),
                    )
                elif name == "release" and holds:
                    hold = holds[operation[1] % len(holds)]
                    call = (credits_release, dict(hold_entry_id=hold.id, idempotency_key=k))
                elif name == "allocate":
                    call = (
                        pool_allocate,
                        dict(
                            org_id=org_id,
                            project_id=projects[operation[1]],
                            amount_millicredits=operation[2],
                            idempotency_key=k,
                        ),
                    )
                elif name == "return":
                    call = (
                        pool_return,
                        dict(
                            org_id=org_id,
                            project_id=projects[operation[1]],
                            amount_millicredits=operation[2],
                            idempotency_key=k,
                        ),
                    )
                elif name == "expire":
                    call = (
                        credits_expire,
                        dict(org_id=org_id, amount_millicredits=operation[1], idempotency_key=k),
                    )
                elif name == "replay" and used_keys:
                    function, kwargs, entry_id = used_keys[operation[1] % len(used_keys)]
                    before = balance_get(session=session, org_id=org_id)
                    assert function(session=session, **kwargs).id == entry_id
                    assert balance_get(session=session, org_id=org_id) == before
                if call is not None:
                    function, kwargs = call
                    entry = function(session=session, **kwargs)
                    used_keys.append((function, kwargs, entry.id))
                    if entry.kind == "hold":
                        holds.append(entry)
                session.commit()
            except (InsufficientCredits, HoldAlreadyClosed, NotFound):
                session.rollback()
            assert_invariants(session, org_id)
        # Every hold is closed at most once.
        for hold in holds:
            closings = session.exec(
                select(CreditLedgerEntry).where(
                    CreditLedgerEntry.reference == f"hold:{hold.id}",
                    CreditLedgerEntry.org_id == org_id,
                )
            ).all()
            assert len(closings) <= 1
