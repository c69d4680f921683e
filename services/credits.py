"""Credits: the only code that moves an organization's credits.

All amounts are integer millicredits (1 credit = 1000 millicredits).

Ledger design
-------------
* ``CreditLedgerEntry`` is append-only; every movement is one row with a unique
  ``idempotency_key``. ``CreditAccount.balance_millicredits`` is a cache of
  ``SUM(amount_millicredits)`` over the org's entries, updated in the same transaction,
  and is never negative.
* Pools earmark part of the balance for a project. Pooled credits are *inside* the
  balance: ``SUM(pool balances) <= balance`` always holds. An entry's
  ``pool_amount_millicredits`` is the part of its movement that went to/from its pool, so
  ``pool.balance == SUM(pool_amount_millicredits)`` over the entries of that pool.
* ``grant``/``purchase``/``refund`` add to the general (unpooled) part; ``adjustment``
  may add or remove (never below zero, never into pooled credits); ``expiry`` removes
  general credits (clamped to what is available).
* ``hold`` (negative) reserves credits before a run: first from the project's pool
  (recorded as ``pool_amount``), then from the general part.
* A hold is closed exactly once, by one entry that carries ``reference="hold:<id>"``
  and the hold's project/generation/pool:
    - ``settle``: ``amount = held - actual`` (the unused part comes back in the same
      entry, so ``hold + settle == -actual``). The charge is taken from the pool first,
      so the pool gets back ``pool_held - min(pool_held, actual)``.
    - ``release``: ``amount = held`` (everything comes back, the pool part to the pool).
  Settling after a release (or releasing after a settle) raises ``HoldAlreadyClosed``
  and moves nothing.
* ``pool_allocate``/``pool_return`` have ``amount = 0`` (the balance does not change) and
  move ``pool_amount`` between the general part and the pool.

Concurrency and transactions
----------------------------
Every movement locks the org's ``CreditAccount`` row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite the engine opens every transaction with ``BEGIN IMMEDIATE``, which
serializes writers), then checks, inserts the entry and updates the cached balances.
All pool and closure checks happen under that lock.

The ``credits_*``/``pool_*`` functions **flush but never commit**: the caller owns the
transaction (``credits_apply`` is a convenience that runs one movement in its own
transaction and commits). The entry insert runs inside a SAVEPOINT: if a concurrent
transaction committed the same idempotency key first, the unique violation is rolled
back to the savepoint and the existing entry is returned (or ``IdempotencyKeyReused``
raised if it describes a different movement). Replaying a key always returns the
original entry without a second movement.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import db
from core.clock import as_utc, utcnow
from models import CreditAccount, CreditLedgerEntry, CreditPool
from models.enums import LedgerEntryKind
from services.error_codes import Code
from services.errors import Conflict, InsufficientCredits, NotFound, ValidationFailed

MILLICREDITS_PER_CREDIT = 1000
# Far above any real balance, far below BIGINT: a typo cannot create absurd balances.
MAX_MOVEMENT_MILLICREDITS = 10**15

GRANT_KINDS = frozenset(
    {
        LedgerEntryKind.grant,
        LedgerEntryKind.purchase,
        LedgerEntryKind.adjustment,
        LedgerEntryKind.refund,
    }
)
_CLOSING_KINDS = (LedgerEntryKind.settle.value, LedgerEntryKind.release.value)


class IdempotencyKeyReused(Conflict):
    """The idempotency key already belongs to a different credit movement."""

    code = Code.idempotency_key_reused.value


class HoldAlreadyClosed(Conflict):
    """The hold was already settled or released; `closing_entry` is the entry that closed it."""

    code = Code.hold_already_closed.value

    def __init__(self, message: str, *, closing_entry: CreditLedgerEntry):
        super().__init__(message, closing_entry_id=closing_entry.id, closed_by=closing_entry.kind)
        self.closing_entry = closing_entry


class SettleExceedsHold(Conflict):
    """The actual cost is larger than the hold; a new check and hold are needed."""

    code = Code.settle_exceeds_hold.value


@dataclass(frozen=True)
class BalanceView:
    """An org's credits in millicredits: total balance, pooled part, and the general part."""

    balance: int
    pooled: int
    available_general: int


# --- formatting ---------------------------------------------------------------------------


def format_credits(millicredits: int) -> str:
    """Millicredits as credits for people: 1234500 -> "1,234.5", 4000 -> "4", 125 -> "0.125"."""
    value = int(millicredits)
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), MILLICREDITS_PER_CREDIT)
    text = f"{whole:,}"
    if fraction:
        text += "." + f"{fraction:03d}".rstrip("0")
    return sign + text


def _credits_phrase(millicredits: int) -> str:
    return f"{format_credits(millicredits)} credit" + ("" if millicredits == 1000 else "s")


# --- validation ---------------------------------------------------------------------------


def _require_amount(
    value: Any, *, field: str, allow_negative: bool = False, allow_zero: bool = False
) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{field} must be a whole number of millicredits.", field=field)
    if value == 0 and not allow_zero:
        raise ValidationFailed(f"{field} must not be zero.", field=field)
    if value < 0 and not allow_negative:
        raise ValidationFailed(f"{field} must be positive.", field=field)
    if abs(value) > MAX_MOVEMENT_MILLICREDITS:
        raise ValidationFailed(f"{field} is too large.", field=field)
    return value


def _require_key(idempotency_key: str) -> str:
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise ValidationFailed("An idempotency key is required.", field="idempotency_key")
    if len(idempotency_key) > 200:
        raise ValidationFailed(
            "The idempotency key must be at most 200 characters.", field="idempotency_key"
        )
    return idempotency_key


# --- locking and lookups ------------------------------------------------------------------


def _account_query(org_id: int):
    return (
        select(CreditAccount)
        .where(CreditAccount.org_id == org_id)
        .execution_options(populate_existing=True)
    )


def credit_account_get_or_create(*, session: Session, org_id: int) -> CreditAccount:
    """The org's credit account, created with a zero balance if missing (flushes, no commit).

    Safe under concurrency: a concurrent creation is caught at a SAVEPOINT and re-read.
    """
    account = session.exec(_account_query(org_id)).first()
    if account is not None:
        return account
    try:
        with session.begin_nested():
            account = CreditAccount(org_id=org_id, balance_millicredits=0)
            session.add(account)
            session.flush()
    except IntegrityError:
        account = session.exec(_account_query(org_id)).first()
        if account is None:  # the org itself does not exist
            raise NotFound("Organization not found.") from None
    return account


def _lock_account(session: Session, org_id: int) -> CreditAccount:
    """Lock the org's account row for the rest of the transaction (creating it if needed)."""
    account = session.exec(_account_query(org_id).with_for_update()).first()
    if account is None:
        credit_account_get_or_create(session=session, org_id=org_id)
        account = session.exec(_account_query(org_id).with_for_update()).one()
    return account


def _pooled_total(session: Session, org_id: int) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(CreditPool.balance_millicredits), 0)).where(
            CreditPool.org_id == org_id
        )
    ).one()
    return int(total)


def _pools_state(
    session: Session, org_id: int, project_id: int | None
) -> tuple[int, CreditPool | None]:
    """(pooled total, the project's pool) in one query; call under the account lock."""
    pools = pools_list(session=session, org_id=org_id)
    pool = next((p for p in pools if project_id is not None and p.project_id == project_id), None)
    return sum(p.balance_millicredits for p in pools), pool


def _pool_for_project(session: Session, org_id: int, project_id: int | None) -> CreditPool | None:
    if project_id is None:
        return None
    return session.exec(
        select(CreditPool)
        .where(CreditPool.org_id == org_id, CreditPool.project_id == project_id)
        .execution_options(populate_existing=True)
    ).first()


def _pool_by_id(session: Session, pool_id: int | None) -> CreditPool | None:
    if pool_id is None:
        return None
    return session.exec(
        select(CreditPool).where(CreditPool.id == pool_id).execution_options(populate_existing=True)
    ).first()


def _entry_by_key(session: Session, idempotency_key: str) -> CreditLedgerEntry | None:
    return session.exec(
        select(CreditLedgerEntry).where(CreditLedgerEntry.idempotency_key == idempotency_key)
    ).first()


def _replay(
    existing: CreditLedgerEntry | None, expected: dict[str, Any]
) -> CreditLedgerEntry | None:
    """The existing entry if it describes the same movement; raise if the key was reused."""
    if existing is None:
        return None
    for field, value in expected.items():
        if getattr(existing, field) != value:
            raise IdempotencyKeyReused(
                f"Idempotency key {existing.idempotency_key!r} was already used for a different "
                f"credit movement ({existing.kind} #{existing.id}). Use a new key.",
                entry_id=existing.id,
            )
    return existing


def _insert_entry(
    session: Session, entry: CreditLedgerEntry, expected: dict[str, Any]
) -> tuple[CreditLedgerEntry, bool]:
    """Insert under a SAVEPOINT. Returns (entry, created); a lost key race returns the winner."""
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:
        existing = _replay(_entry_by_key(session, entry.idempotency_key), expected)
        if existing is None:
            raise
        return existing, False
    return entry, True


def _apply(
    session: Session,
    *,
    account: CreditAccount,
    pool: CreditPool | None,
    entry: CreditLedgerEntry,
    expected: dict[str, Any],
) -> CreditLedgerEntry:
    """Insert the entry and move the cached balances by its amounts (all under the lock)."""
    now = utcnow()
    entry.balance_after_millicredits = account.balance_millicredits + entry.amount_millicredits
    entry.pool_id = pool.id if pool is not None else None
    entry.created_at = now
    inserted, created = _insert_entry(session, entry, expected)
    if not created:
        return inserted
    account.balance_millicredits = entry.balance_after_millicredits
    account.updated_at = now
    session.add(account)
    if pool is not None and entry.pool_amount_millicredits:
        pool.balance_millicredits += entry.pool_amount_millicredits
        pool.updated_at = now
        session.add(pool)
    session.flush()
    return inserted


def _insufficient(needed: int, available: int, *, project: bool) -> InsufficientCredits:
    who = "this project has" if project else "the organization has"
    return InsufficientCredits(
        f"This run needs {_credits_phrase(needed)}; {who} {format_credits(max(available, 0))}. "
        "Add credits in Billing.",
        needed_millicredits=needed,
        available_millicredits=max(available, 0),
    )


# --- movements ----------------------------------------------------------------------------


def credits_grant(
    *,
    session: Session,
    org_id: int,
    amount_millicredits: int,
    idempotency_key: str,
    actor_user_id: int | None = None,
    reference: str = "",
    memo: str = "",
    kind: LedgerEntryKind | str = LedgerEntryKind.grant,
) -> CreditLedgerEntry:
    """Add (or, for an adjustment, remove) general credits. Flushes; the caller commits.

    Args:
        kind: grant, purchase or refund (amount > 0), or adjustment (amount != 0).

    Raises:
        ValidationFailed: bad kind or amount.
        InsufficientCredits: a negative adjustment larger than the unpooled balance.
        IdempotencyKeyReused: the key belongs to a different movement.
    """
    try:
        kind = LedgerEntryKind(kind)
    except ValueError:
        raise ValidationFailed(f"Unknown credit kind {kind!r}.", field="kind") from None
    if kind not in GRANT_KINDS:
        raise ValidationFailed(
            f"{kind.value} entries are not created with credits_grant.", field="kind"
        )
    _require_amount(
        amount_millicredits,
        field="amount_millicredits",
        allow_negative=kind == LedgerEntryKind.adjustment,
    )
    _require_key(idempotency_key)
    expected = {
        "org_id": org_id,
        "kind": kind.value,
        "amount_millicredits": amount_millicredits,
        "reference": reference,
    }
    account = _lock_account(session, org_id)
    if (existing := _replay(_entry_by_key(session, idempotency_key), expected)) is not None:
        return existing
    if amount_millicredits < 0:
        pooled, _ = _pools_state(session, org_id, None)
        available = account.balance_millicredits - pooled
        if -amount_millicredits > available:
            raise InsufficientCredits(
                f"An adjustment of {format_credits(amount_millicredits)} would take the balance "
                f"below zero; {format_credits(max(available, 0))} unpooled credits are available. "
                "Return pooled credits first or adjust by less.",
                needed_millicredits=-amount_millicredits,
                available_millicredits=max(available, 0),
            )
    entry = CreditLedgerEntry(
        org_id=org_id,
        kind=kind.value,
        amount_millicredits=amount_millicredits,
        idempotency_key=idempotency_key,
        actor_user_id=actor_user_id,
        reference=reference,
        memo=memo,
    )
    return _apply(session, account=account, pool=None, entry=entry, expected=expected)


def credits_available(*, session: Session, org_id: int, project_id: int | None = None) -> int:
    """Millicredits a new run may hold: unpooled balance, plus the project's pool if any."""
    account = session.exec(_account_query(org_id)).first()
    if account is None:
        return 0
    general = account.balance_millicredits - _pooled_total(session, org_id)
    pool = _pool_for_project(session, org_id, project_id)
    return general + (pool.balance_millicredits if pool is not None else 0)


def credits_hold(
    *,
    session: Session,
    org_id: int,
    amount_millicredits: int,
    idempotency_key: str,
    project_id: int | None = None,
    generation_id: int | None = None,
    actor_user_id: int | None = None,
    memo: str = "",
) -> CreditLedgerEntry:
    """Reserve credits before a run (a negative `hold` entry). Flushes; the caller commits.

    Draws from the project's pool first (``pool_amount_millicredits``), then from the
    unpooled balance. A generation has at most one hold.

    Raises:
        InsufficientCredits: not enough credits (message written for the person acting).
        IdempotencyKeyReused: the key belongs to a different movement.
        Conflict: the generation already has a hold under another key.
    """
    _require_amount(amount_millicredits, field="amount_millicredits")
    _require_key(idempotency_key)
    expected = {
        "org_id": org_id,
        "kind": LedgerEntryKind.hold.value,
        "amount_millicredits": -amount_millicredits,
        "project_id": project_id,
        "generation_id": generation_id,
    }
    account = _lock_account(session, org_id)
    # One query for a replay of this key and for another hold of the same generation.
    same = CreditLedgerEntry.idempotency_key == idempotency_key
    if generation_id is not None:
        same = or_(
            same,
            and_(
                CreditLedgerEntry.generation_id == generation_id,
                CreditLedgerEntry.kind == LedgerEntryKind.hold.value,
            ),
        )
    found = list(session.exec(select(CreditLedgerEntry).where(same)))
    for existing in found:
        if existing.idempotency_key == idempotency_key:
            return _replay(existing, expected)
    if found:
        raise Conflict(
            f"Generation {generation_id} already holds credits (entry #{found[0].id}).",
            entry_id=found[0].id,
        )
    pooled, pool = _pools_state(session, org_id, project_id)
    pool_balance = pool.balance_millicredits if pool is not None else 0
    general = account.balance_millicredits - pooled
    available = general + pool_balance
    if amount_millicredits > available:
        raise _insufficient(amount_millicredits, available, project=pool is not None)
    from_pool = min(pool_balance, amount_millicredits)
    entry = CreditLedgerEntry(
        org_id=org_id,
        kind=LedgerEntryKind.hold.value,
        amount_millicredits=-amount_millicredits,
        pool_amount_millicredits=-from_pool,
        idempotency_key=idempotency_key,
        actor_user_id=actor_user_id,
        project_id=project_id,
        generation_id=generation_id,
        memo=memo,
    )
    return _apply(
        session, account=account, pool=pool if from_pool else None, entry=entry, expected=expected
    )


def _find_hold(
    session: Session, hold_entry_id: int | None, generation_id: int | None
) -> CreditLedgerEntry:
    if (hold_entry_id is None) == (generation_id is None):
        raise ValidationFailed("Pass exactly one of hold_entry_id or generation_id.")
    query = select(CreditLedgerEntry).where(CreditLedgerEntry.kind == LedgerEntryKind.hold.value)
    if hold_entry_id is not None:
        query = query.where(CreditLedgerEntry.id == hold_entry_id)
    else:
        query = query.where(CreditLedgerEntry.generation_id == generation_id)
    hold = session.exec(query.order_by(col(CreditLedgerEntry.id))).first()
    if hold is None:
        raise NotFound("No credit hold was found for this run.")
    return hold


def _hold_reference(hold: CreditLedgerEntry) -> str:
    return f"hold:{hold.id}"


def hold_closing_entry(*, session: Session, hold: CreditLedgerEntry) -> CreditLedgerEntry | None:
    """The settle or release entry that closed the hold, or None while it is open."""
    return session.exec(select(CreditLedgerEntry).where(_closing_condition(hold))).first()


def _closing_condition(hold: CreditLedgerEntry) -> Any:
    condition = and_(
        CreditLedgerEntry.org_id == hold.org_id,
        CreditLedgerEntry.reference == _hold_reference(hold),
        col(CreditLedgerEntry.kind).in_(_CLOSING_KINDS),
    )
    if hold.generation_id is not None:  # narrows the search to the generation index
        condition = and_(condition, CreditLedgerEntry.generation_id == hold.generation_id)
    return condition


def _close_hold(
    session: Session,
    *,
    hold: CreditLedgerEntry,
    kind: LedgerEntryKind,
    actual_millicredits: int,
    idempotency_key: str,
    memo: str,
) -> CreditLedgerEntry:
    held = -hold.amount_millicredits
    returned = held - actual_millicredits
    pool_held = -hold.pool_amount_millicredits
    pool_back = pool_held - min(pool_held, actual_millicredits)
    expected = {
        "org_id": hold.org_id,
        "kind": kind.value,
        "reference": _hold_reference(hold),
        "amount_millicredits": returned,
    }
    account = _lock_account(session, hold.org_id)
    # One query for a replay of this key and for an entry that already closed the hold.
    found = list(
        session.exec(
            select(CreditLedgerEntry).where(
                or_(
                    CreditLedgerEntry.idempotency_key == idempotency_key,
                    _closing_condition(hold),
                )
            )
        )
    )
    for existing in found:
        if existing.idempotency_key == idempotency_key:
            return _replay(existing, expected)
    closing = found[0] if found else None
    if closing is not None:
        raise HoldAlreadyClosed(
            f"This run's credits were already {'settled' if closing.kind == 'settle' else 'released'} "
            f"(entry #{closing.id}); nothing was moved.",
            closing_entry=closing,
        )
    # The pool row may have been deleted with its project; its share then goes to general.
    pool = _pool_by_id(session, hold.pool_id) if pool_back else None
    entry = CreditLedgerEntry(
        org_id=hold.org_id,
        kind=kind.value,
        amount_millicredits=returned,
        pool_amount_millicredits=pool_back if pool is not None else 0,
        idempotency_key=idempotency_key,
        project_id=hold.project_id,
        generation_id=hold.generation_id,
        actor_user_id=hold.actor_user_id,
        reference=_hold_reference(hold),
        memo=memo,
    )
    return _apply(session, account=account, pool=pool, entry=entry, expected=expected)


def credits_settle(
    *,
    session: Session,
    actual_millicredits: int,
    idempotency_key: str,
    hold_entry_id: int | None = None,
    generation_id: int | None = None,
    memo: str = "",
) -> CreditLedgerEntry:
    """Charge the actual cost of a run and give back the rest of its hold, in one entry.

    The `settle` entry's amount is ``held - actual`` (>= 0), so hold + settle = -actual.
    Identify the hold by ``hold_entry_id`` or ``generation_id``. Flushes; the caller commits.

    Raises:
        SettleExceedsHold: actual > held (a new check and hold are needed).
        HoldAlreadyClosed: the hold was already settled or released (nothing moves).
        NotFound: no such hold.
        IdempotencyKeyReused: the key belongs to a different movement.
    """
    _require_amount(actual_millicredits, field="actual_millicredits", allow_zero=True)
    _require_key(idempotency_key)
    hold = _find_hold(session, hold_entry_id, generation_id)
    held = -hold.amount_millicredits
    if actual_millicredits > held:
        raise SettleExceedsHold(
            f"This run cost {_credits_phrase(actual_millicredits)} but only "
            f"{format_credits(held)} were held; a new credit check is needed.",
            held_millicredits=held,
            actual_millicredits=actual_millicredits,
        )
    return _close_hold(
        session,
        hold=hold,
        kind=LedgerEntryKind.settle,
        actual_millicredits=actual_millicredits,
        idempotency_key=idempotency_key,
        memo=memo or f"charged {format_credits(actual_millicredits)}",
    )


def credits_release(
    *,
    session: Session,
    idempotency_key: str,
    hold_entry_id: int | None = None,
    generation_id: int | None = None,
    reason: str = "",
) -> CreditLedgerEntry:
    """Give back a whole hold (run failed or timed out). Flushes; the caller commits.

    Raises:
        HoldAlreadyClosed: the hold was already settled or released (nothing moves).
        NotFound: no such hold.
        IdempotencyKeyReused: the key belongs to a different movement.
    """
    _require_key(idempotency_key)
    hold = _find_hold(session, hold_entry_id, generation_id)
    return _close_hold(
        session,
        hold=hold,
        kind=LedgerEntryKind.release,
        actual_millicredits=0,
        idempotency_key=idempotency_key,
        memo=reason,
    )


def credits_expire(
    *,
    session: Session,
    org_id: int,
    amount_millicredits: int,
    idempotency_key: str,
    memo: str = "",
    actor_user_id: int | None = None,
) -> CreditLedgerEntry:
    """Expire up to `amount_millicredits` unpooled credits (an `expiry` entry, clamped to what
    is available, possibly 0). Held and pooled credits never expire here. Flushes only.

    A replayed key returns the original entry (compared on org and kind only, since the
    expired amount depends on the balance at the time).
    """
    _require_amount(amount_millicredits, field="amount_millicredits")
    _require_key(idempotency_key)
    expected = {"org_id": org_id, "kind": LedgerEntryKind.expiry.value}
    account = _lock_account(session, org_id)
    if (existing := _replay(_entry_by_key(session, idempotency_key), expected)) is not None:
        return existing
    general = account.balance_millicredits - _pooled_total(session, org_id)
    expired = max(0, min(amount_millicredits, general))
    entry = CreditLedgerEntry(
        org_id=org_id,
        kind=LedgerEntryKind.expiry.value,
        amount_millicredits=-expired,
        idempotency_key=idempotency_key,
        actor_user_id=actor_user_id,
        memo=memo or f"requested {format_credits(amount_millicredits)}",
    )
    return _apply(session, account=account, pool=None, entry=entry, expected=expected)


# --- pools --------------------------------------------------------------------------------


def pool_allocate(
    *,
    session: Session,
    org_id: int,
    project_id: int,
    amount_millicredits: int,
    idempotency_key: str,
    actor_user_id: int | None = None,
) -> CreditLedgerEntry:
    """Earmark unpooled credits for a project (creates its pool). Balance unchanged.

    Raises:
        InsufficientCredits: fewer unpooled credits than requested.
    """
    _require_amount(amount_millicredits, field="amount_millicredits")
    _require_key(idempotency_key)
    expected = {
        "org_id": org_id,
        "kind": LedgerEntryKind.pool_allocate.value,
        "project_id": project_id,
        "pool_amount_millicredits": amount_millicredits,
    }
    account = _lock_account(session, org_id)
    if (existing := _replay(_entry_by_key(session, idempotency_key), expected)) is not None:
        return existing
    general = account.balance_millicredits - _pooled_total(session, org_id)
    if amount_millicredits > general:
        raise InsufficientCredits(
            f"Cannot set aside {_credits_phrase(amount_millicredits)} for this project; "
            f"{format_credits(max(general, 0))} unpooled credits are available. "
            "Add credits in Billing or allocate less.",
            needed_millicredits=amount_millicredits,
            available_millicredits=max(general, 0),
        )
    pool = _pool_for_project(session, org_id, project_id)
    if pool is None:
        # New pools are created under the account lock, so no concurrent duplicate exists.
        pool = CreditPool(org_id=org_id, project_id=project_id, balance_millicredits=0)
        session.add(pool)
        session.flush()
    entry = CreditLedgerEntry(
        org_id=org_id,
        kind=LedgerEntryKind.pool_allocate.value,
        amount_millicredits=0,
        pool_amount_millicredits=amount_millicredits,
        idempotency_key=idempotency_key,
        actor_user_id=actor_user_id,
        project_id=project_id,
    )
    return _apply(session, account=account, pool=pool, entry=entry, expected=expected)


def pool_return(
    *,
    session: Session,
    org_id: int,
    project_id: int,
    idempotency_key: str,
    amount_millicredits: int | None = None,
    actor_user_id: int | None = None,
) -> CreditLedgerEntry:
    """Return pooled credits to the general balance (all of them when amount is None).

    Raises:
        NotFound: the project has no pool.
        InsufficientCredits: the pool holds less than requested.
    """
    if amount_millicredits is not None:
        _require_amount(amount_millicredits, field="amount_millicredits")
    _require_key(idempotency_key)
    expected: dict[str, Any] = {
        "org_id": org_id,
        "kind": LedgerEntryKind.pool_return.value,
        "project_id": project_id,
    }
    if amount_millicredits is not None:
        expected["pool_amount_millicredits"] = -amount_millicredits
    account = _lock_account(session, org_id)
    if (existing := _replay(_entry_by_key(session, idempotency_key), expected)) is not None:
        return existing
    pool = _pool_for_project(session, org_id, project_id)
    if pool is None:
        raise NotFound("This project has no credit pool.")
    amount = pool.balance_millicredits if amount_millicredits is None else amount_millicredits
    if amount > pool.balance_millicredits:
        raise InsufficientCredits(
            f"The project's pool holds {format_credits(pool.balance_millicredits)} credits; "
            f"cannot return {format_credits(amount)}.",
            needed_millicredits=amount,
            available_millicredits=pool.balance_millicredits,
        )
    entry = CreditLedgerEntry(
        org_id=org_id,
        kind=LedgerEntryKind.pool_return.value,
        amount_millicredits=0,
        pool_amount_millicredits=-amount,
        idempotency_key=idempotency_key,
        actor_user_id=actor_user_id,
        project_id=project_id,
    )
    return _apply(session, account=account, pool=pool, entry=entry, expected=expected)


def pools_list(*, session: Session, org_id: int) -> list[CreditPool]:
    """The org's pools, by project."""
    return list(
        session.exec(
            select(CreditPool)
            .where(CreditPool.org_id == org_id)
            .order_by(col(CreditPool.project_id))
            .execution_options(populate_existing=True)
        )
    )


# --- reading ------------------------------------------------------------------------------


def balance_get(*, session: Session, org_id: int) -> BalanceView:
    """Balance, pooled part and unpooled part, in millicredits (zeros if no account yet)."""
    account = session.exec(_account_query(org_id)).first()
    balance = account.balance_millicredits if account is not None else 0
    pooled = _pooled_total(session, org_id)
    return BalanceView(balance=balance, pooled=pooled, available_general=balance - pooled)


def ledger_sum(*, session: Session, org_id: int) -> int:
    """SUM(amount) over the org's ledger: always equal to the cached balance."""
    total = session.exec(
        select(func.coalesce(func.sum(CreditLedgerEntry.amount_millicredits), 0)).where(
            CreditLedgerEntry.org_id == org_id
        )
    ).one()
    return int(total)


def ledger_list(
    *,
    session: Session,
    org_id: int,
    kinds: Iterable[LedgerEntryKind | str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CreditLedgerEntry]:
    """The org's entries, newest first. `since` is inclusive, `until` exclusive."""
    if limit < 0 or offset < 0:
        raise ValidationFailed("limit and offset must not be negative.")
    query = select(CreditLedgerEntry).where(CreditLedgerEntry.org_id == org_id)
    if kinds is not None:
        query = query.where(
            col(CreditLedgerEntry.kind).in_([LedgerEntryKind(k).value for k in kinds])
        )
    if since is not None:
        query = query.where(CreditLedgerEntry.created_at >= as_utc(since))
    if until is not None:
        query = query.where(CreditLedgerEntry.created_at < as_utc(until))
    query = query.order_by(
        col(CreditLedgerEntry.created_at).desc(), col(CreditLedgerEntry.id).desc()
    )
    return list(session.exec(query.offset(offset).limit(limit)))


CSV_COLUMNS = (
    "entry_id",
    "created_at_utc",
    "kind",
    "amount_credits",
    "balance_after_credits",
    "pool_amount_credits",
    "project_id",
    "generation_id",
    "reference",
    "memo",
)


def _csv_safe(text: str) -> str:
    # Spreadsheets run cells starting with these as formulas.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def ledger_csv(
    *,
    session: Session,
    org_id: int,
    kinds: Iterable[LedgerEntryKind | str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100_000,
) -> str:
    """The ledger as CSV (credits with up to 3 decimals, UTC ISO times), newest first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in ledger_list(
        session=session, org_id=org_id, kinds=kinds, since=since, until=until, limit=limit
    ):
        created = as_utc(entry.created_at)
        writer.writerow(
            [
                entry.id,
                created.isoformat() if created else "",
                entry.kind,
                format_credits(entry.amount_millicredits).replace(",", ""),
                format_credits(entry.balance_after_millicredits).replace(",", ""),
                format_credits(entry.pool_amount_millicredits).replace(",", ""),
                entry.project_id if entry.project_id is not None else "",
                entry.generation_id if entry.generation_id is not None else "",
                _csv_safe(entry.reference),
                _csv_safe(entry.memo),
            ]
        )
    return buffer.getvalue()


# --- convenience --------------------------------------------------------------------------

T = TypeVar("T")


def credits_apply(operation: Callable[..., T], /, **kwargs: Any) -> T:
    """Run one credits operation in its own session and transaction, and commit.

    For jobs and scripts that do nothing else in the transaction, e.g.
    ``credits_apply(credits_release, generation_id=7, idempotency_key="gen:7:timeout")``.
    """
    with db.session_scope() as session:
        return operation(session=session, **kwargs)
