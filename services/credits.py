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

On PostgreSQL, grants, holds, settles, releases and expiries are one round trip each: the
lock and one statement that checks, inserts the entry (``ON CONFLICT (idempotency_key) DO
NOTHING``) and moves the balances by what it inserted, sent together (see "PostgreSQL: one
round trip per movement" below). Settle and release find the hold by id or generation in
that statement; nothing is read beforehand. Pool allocation and return, which are rare,
take the ORM path below on every database; SQLite takes it for everything but a new hold,
which is one checked INSERT and the balance's UPDATE (see "SQLite: a new hold" below).

The ``credits_*``/``pool_*`` functions **flush but never commit**: the caller owns the
transaction (``credits_apply`` is a convenience that runs one movement in its own
transaction and commits). If a concurrent transaction (of another organization, so under
another lock) commits the same idempotency key first, the movement does nothing and the
existing entry is returned (or ``IdempotencyKeyReused`` raised if it describes a different
movement): on PostgreSQL through ``ON CONFLICT DO NOTHING``, on the ORM path by a SAVEPOINT
around the insert. Replaying a key always returns the original entry without a second
movement.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, func, or_, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError, IntegrityError
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


# --- PostgreSQL: one round trip per movement -----------------------------------------------
#
# A movement is two statements sent together in one pipeline (one network round trip):
#   1. ``SELECT ... FOR UPDATE`` on the org's credit account; when a row was locked it sets a
#      transaction-local marker to this call's token;
#   2. one statement of common table expressions that reads what must be checked (balance,
#      pools, an entry with the same key, an entry that already closed the hold), inserts the
#      entry with ``ON CONFLICT (idempotency_key) DO NOTHING`` and moves the cached balances by
#      what was inserted, and returns what happened.
# Statement 2 writes only if the marker carries this call's token, i.e. under the lock. In
# READ COMMITTED each statement reads from a new snapshot, so statement 2 sees every movement
# committed before the lock was granted and no other can commit before ours: the same checks
# under the same lock as the ORM path. (A single statement would read from a snapshot taken
# before it waited for the lock; PostgreSQL re-checks only the locked row, so pool balances,
# replays and closures read in it could be stale.)

_ENTRY_COLUMNS = (
    "id",
    "org_id",
    "kind",
    "amount_millicredits",
    "balance_after_millicredits",
    "pool_id",
    "pool_amount_millicredits",
    "idempotency_key",
    "actor_user_id",
    "project_id",
    "generation_id",
    "reference",
    "memo",
    "created_at",
)
_COLUMNS = ", ".join(_ENTRY_COLUMNS)
_E_COLUMNS = ", ".join(f"e.{column}" for column in _ENTRY_COLUMNS)
_INSERT_COLUMNS = ", ".join(_ENTRY_COLUMNS[1:])
_NO_ENTRY = ", ".join("NULL" for _ in _ENTRY_COLUMNS)
# The insufficient-credits row carries the project's pool id (or NULL) in the pool_id column.
_POOL_ONLY = ", ".join(
    "plan.pool_id" if column == "pool_id" else "NULL" for column in _ENTRY_COLUMNS
)
# Where each entry column sits in a returned row (after the outcome and the figure).
_AT = {column: index + 2 for index, column in enumerate(_ENTRY_COLUMNS)}
_lock_tokens = itertools.count(1)


def _compact(sql: str) -> str:
    # Short enough for the driver to cache its parsing (psycopg: up to 4096 characters).
    return " ".join(sql.split())


_LOCK = (
    "SELECT set_config('credits.locked', %(token)s::text, true) FROM "
    "(SELECT 1 FROM credit_accounts WHERE org_id = {org} FOR UPDATE) AS locked"
)
_LOCK_ORG = _LOCK.format(org="%(org_id)s::bigint")
_HOLD_BY_ID = "id = %(hold_id)s::bigint AND kind = 'hold'"
_HOLD_BY_GENERATION = "generation_id = %(generation_id)s::bigint AND kind = 'hold'"
_LOCK_HOLD_ORG = {
    where: _LOCK.format(
        org=f"(SELECT org_id FROM credit_ledger_entries WHERE {where} ORDER BY id LIMIT 1)"
    )
    for where in (_HOLD_BY_ID, _HOLD_BY_GENERATION)
}
_GATE = (
    "gate AS (SELECT coalesce(current_setting('credits.locked', true), '') = %(token)s::text"
    " AS locked)"
)
_MOVE_BALANCES = """account_update AS (
    UPDATE credit_accounts
    SET balance_millicredits = credit_accounts.balance_millicredits + entry.amount_millicredits,
        updated_at = entry.created_at
    FROM entry WHERE credit_accounts.org_id = entry.org_id
), pool_update AS (
    UPDATE credit_pools
    SET balance_millicredits = credit_pools.balance_millicredits + entry.pool_amount_millicredits,
        updated_at = entry.created_at
    FROM entry WHERE credit_pools.id = entry.pool_id
)"""

_HOLD_SQL = _compact(f"""
WITH {_GATE}, account AS (
    SELECT balance_millicredits AS balance FROM credit_accounts WHERE org_id = %(org_id)s::bigint
), pools AS (
    SELECT coalesce(sum(balance_millicredits), 0) AS pooled,
           max(id) FILTER (WHERE project_id = %(project_id)s::bigint) AS pool_id,
           coalesce(sum(balance_millicredits) FILTER (WHERE project_id = %(project_id)s::bigint), 0)
               AS pool_balance
    FROM credit_pools WHERE org_id = %(org_id)s::bigint
), prior AS (
    SELECT {_COLUMNS} FROM credit_ledger_entries
    WHERE idempotency_key = %(key)s::text
       OR (generation_id = %(generation_id)s::bigint AND kind = 'hold')
    ORDER BY idempotency_key = %(key)s::text DESC, id
    LIMIT 1
), plan AS (
    SELECT account.balance, pools.pool_id,
           account.balance - pools.pooled + pools.pool_balance AS available,
           least(pools.pool_balance, %(amount)s::bigint) AS from_pool
    FROM gate, account, pools
    WHERE gate.locked AND NOT EXISTS (SELECT FROM prior)
), entry AS (
    INSERT INTO credit_ledger_entries ({_INSERT_COLUMNS})
    SELECT %(org_id)s::bigint, 'hold', -%(amount)s::bigint, balance - %(amount)s::bigint,
           CASE WHEN from_pool > 0 THEN pool_id END, -from_pool, %(key)s::text,
           %(actor_user_id)s::bigint, %(project_id)s::bigint, %(generation_id)s::bigint, '',
           %(memo)s::text, %(now)s::timestamptz
    FROM plan WHERE available >= %(amount)s::bigint
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING {_COLUMNS}
), {_MOVE_BALANCES}
SELECT 'created', NULL::bigint, entry.* FROM entry
UNION ALL SELECT CASE WHEN idempotency_key = %(key)s::text THEN 'existing' ELSE 'other_hold' END,
                 NULL, prior.*
    FROM prior
UNION ALL SELECT 'insufficient', available, {_POOL_ONLY} FROM plan
    WHERE available < %(amount)s::bigint
UNION ALL SELECT 'unlocked', NULL, {_NO_ENTRY} FROM gate
    WHERE NOT locked AND NOT EXISTS (SELECT FROM prior)
""")


def _org_movement_sql(*, amount: str, allowed: str) -> str:
    """A grant-like movement of the unpooled balance: `amount` (SQL over `plan`) if `allowed`."""
    return _compact(f"""
WITH {_GATE}, prior AS (
    SELECT {_COLUMNS} FROM credit_ledger_entries WHERE idempotency_key = %(key)s::text
), plan AS (
    SELECT balance_millicredits AS balance,
           balance_millicredits - (
               SELECT coalesce(sum(balance_millicredits), 0) FROM credit_pools
               WHERE org_id = %(org_id)s::bigint
           ) AS available
    FROM gate, credit_accounts
    WHERE gate.locked AND org_id = %(org_id)s::bigint AND NOT EXISTS (SELECT FROM prior)
), movement AS (
    SELECT balance, available, {amount} AS amount FROM plan
), entry AS (
    INSERT INTO credit_ledger_entries ({_INSERT_COLUMNS})
    SELECT %(org_id)s::bigint, %(kind)s::text, amount, balance + amount, NULL::integer, 0,
           %(key)s::text, %(actor_user_id)s::bigint, NULL::integer, NULL::integer,
           %(reference)s::text, %(memo)s::text, %(now)s::timestamptz
    FROM movement WHERE {allowed}
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING {_COLUMNS}
), {_MOVE_BALANCES}
SELECT 'created', NULL::bigint, entry.* FROM entry
UNION ALL SELECT 'existing', NULL, prior.* FROM prior
UNION ALL SELECT 'insufficient', available, {_NO_ENTRY} FROM movement WHERE NOT ({allowed})
UNION ALL SELECT 'unlocked', NULL, {_NO_ENTRY} FROM gate
    WHERE NOT locked AND NOT EXISTS (SELECT FROM prior)
""")


_GRANT_SQL = _org_movement_sql(
    amount="%(amount)s::bigint", allowed="amount >= 0 OR available >= -amount"
)
_EXPIRE_SQL = _org_movement_sql(
    amount="-greatest(0, least(%(amount)s::bigint, available))", allowed="true"
)


def _close_sql(hold_where: str) -> str:
    """Settle or release the hold found by `hold_where`: `actual` is charged, the rest returns."""
    return _compact(f"""
WITH {_GATE}, hold AS (
    SELECT {_COLUMNS} FROM credit_ledger_entries WHERE {hold_where} ORDER BY id LIMIT 1
), prior AS (
    SELECT {_COLUMNS} FROM credit_ledger_entries WHERE idempotency_key = %(key)s::text
), closing AS (
    SELECT {_E_COLUMNS}
    FROM hold h JOIN credit_ledger_entries e ON e.generation_id = h.generation_id
    WHERE e.org_id = h.org_id AND e.reference = 'hold:' || h.id
      AND e.kind IN ('settle', 'release')
    UNION ALL
    SELECT {_E_COLUMNS}
    FROM hold h JOIN credit_ledger_entries e ON e.org_id = h.org_id
    WHERE h.generation_id IS NULL AND e.reference = 'hold:' || h.id
      AND e.kind IN ('settle', 'release')
    ORDER BY id LIMIT 1
), plan AS (
    SELECT h.id, h.org_id, h.project_id, h.generation_id, h.actor_user_id, h.pool_id,
           -h.amount_millicredits - %(actual)s::bigint AS returned,
           -h.pool_amount_millicredits - least(-h.pool_amount_millicredits, %(actual)s::bigint)
               AS pool_back,
           a.balance_millicredits AS balance
    FROM gate, hold h JOIN credit_accounts a ON a.org_id = h.org_id
    WHERE gate.locked AND %(actual)s::bigint <= -h.amount_millicredits
      AND NOT EXISTS (SELECT FROM prior) AND NOT EXISTS (SELECT FROM closing)
), pool AS (
    SELECT credit_pools.id FROM credit_pools JOIN plan ON credit_pools.id = plan.pool_id
    WHERE plan.pool_back > 0
), entry AS (
    INSERT INTO credit_ledger_entries ({_INSERT_COLUMNS})
    SELECT plan.org_id, %(kind)s::text, plan.returned, plan.balance + plan.returned, pool.id,
           CASE WHEN pool.id IS NULL THEN 0 ELSE plan.pool_back END, %(key)s::text,
           plan.actor_user_id, plan.project_id, plan.generation_id, 'hold:' || plan.id,
           %(memo)s::text, %(now)s::timestamptz
    FROM plan LEFT JOIN pool ON true
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING {_COLUMNS}
), {_MOVE_BALANCES}
SELECT 'created', NULL::bigint, entry.* FROM entry
UNION ALL SELECT 'hold', NULL, hold.* FROM hold
UNION ALL SELECT 'existing', NULL, prior.* FROM prior
UNION ALL SELECT 'closed', NULL, closing.* FROM closing
UNION ALL SELECT 'unlocked', NULL, {_NO_ENTRY} FROM gate WHERE NOT locked
""")


_CLOSE_SQL = {where: _close_sql(where) for where in (_HOLD_BY_ID, _HOLD_BY_GENERATION)}


# --- SQLite: a new hold in two statements ------------------------------------------------
#
# SQLite has one writer at a time (every transaction opens with BEGIN IMMEDIATE), so what a
# statement reads cannot change before the transaction ends. The common case of a hold (an
# unused key, no earlier hold of the generation, enough credits) is one INSERT ... SELECT that
# checks all of that and inserts the entry, then one UPDATE of the cached balance (and one of
# the pool it drew on). When the INSERT inserts nothing, the ORM path below reads what is there
# and says why (a replay, another hold, not enough credits, no account yet): it sees the same
# rows, under the same lock.
_SQLITE_NEW_HOLD = text(
    _compact(f"""
WITH pools AS (
    SELECT coalesce(sum(balance_millicredits), 0) AS pooled,
           max(CASE WHEN project_id = :project_id THEN id END) AS pool_id,
           coalesce(sum(CASE WHEN project_id = :project_id THEN balance_millicredits END), 0)
               AS pool_balance
    FROM credit_pools WHERE org_id = :org_id
), plan AS (
    SELECT credit_accounts.balance_millicredits AS balance, pools.pool_id,
           min(pools.pool_balance, :amount) AS from_pool
    FROM credit_accounts, pools
    WHERE credit_accounts.org_id = :org_id
      AND credit_accounts.balance_millicredits - pools.pooled + pools.pool_balance >= :amount
      AND NOT EXISTS (SELECT 1 FROM credit_ledger_entries WHERE idempotency_key = :key)
      AND NOT EXISTS (
          SELECT 1 FROM credit_ledger_entries
          WHERE generation_id = :generation_id AND kind = 'hold'
      )
)
INSERT INTO credit_ledger_entries ({_INSERT_COLUMNS})
SELECT :org_id, 'hold', -:amount, balance - :amount,
       CASE WHEN from_pool <> 0 THEN pool_id END, -from_pool, :key, :actor_user_id,
       :project_id, :generation_id, '', :memo, :now
FROM plan WHERE true
RETURNING id, balance_after_millicredits, pool_id, pool_amount_millicredits
""")
).bindparams(bindparam("now", type_=CreditLedgerEntry.__table__.c.created_at.type))
_SQLITE_MOVE_ACCOUNT = text(
    "UPDATE credit_accounts SET balance_millicredits = :balance, updated_at = :now "
    "WHERE org_id = :org_id"
).bindparams(bindparam("now", type_=CreditAccount.__table__.c.updated_at.type))
_SQLITE_MOVE_POOL = text(
    "UPDATE credit_pools SET balance_millicredits = balance_millicredits + :amount, "
    "updated_at = :now WHERE id = :pool_id"
).bindparams(bindparam("now", type_=CreditPool.__table__.c.updated_at.type))


def _sqlite_new_hold(session: Session, values: dict[str, Any]) -> CreditLedgerEntry | None:
    """The hold of `values` (CreditLedgerEntry columns) when every check passes, else None."""
    session.flush()  # what the caller added goes first, as with any ORM query
    connection = session.connection()
    row = connection.execute(
        _SQLITE_NEW_HOLD,
        {
            "org_id": values["org_id"],
            "amount": -values["amount_millicredits"],
            "key": values["idempotency_key"],
            "actor_user_id": values["actor_user_id"],
            "project_id": values["project_id"],
            "generation_id": values["generation_id"],
            "memo": values["memo"],
            "now": values["created_at"],
        },
    ).first()
    if row is None:
        return None
    entry_id, balance_after, pool_id, pool_amount = row
    now = values["created_at"]
    connection.execute(
        _SQLITE_MOVE_ACCOUNT, {"balance": balance_after, "now": now, "org_id": values["org_id"]}
    )
    if pool_amount:
        connection.execute(
            _SQLITE_MOVE_POOL, {"amount": pool_amount, "now": now, "pool_id": pool_id}
        )
    _balances_moved(session, values["org_id"])
    return db.attach_loaded(
        session,
        CreditLedgerEntry,
        {
            **values,
            "id": entry_id,
            "balance_after_millicredits": balance_after,
            "pool_id": pool_id,
            "pool_amount_millicredits": pool_amount,
            "reference": "",
        },
    )


def _balances_moved(session: Session, org_id: int | None = None) -> None:
    """Balances changed by a statement the session did not see (of `org_id`, or of any org):
    what it holds of them is read again when next used."""
    db.forget_reads(session)
    for held in list(session.identity_map.values()):
        if not isinstance(held, CreditAccount | CreditPool):
            continue
        # Read without loading: an object already expired (or deleted meanwhile) stays as is.
        held_org = sa_inspect(held).dict.get("org_id")
        if held_org is not None and org_id in (None, held_org):
            session.expire(held)


def _on_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _pg_round_trip(
    session: Session, lock_sql: str, sql: str, params: dict[str, Any], *, carry: Any = None
) -> dict[str, tuple]:
    """Lock, then run the movement statement, in one pipeline; rows by outcome.

    `carry`: a new row whose id is already set; it is inserted in the same round trip.
    """
    import psycopg  # the PostgreSQL driver; only imported where PostgreSQL is in use

    session.flush()  # what the caller added goes first, as with any ORM query
    params = {**params, "token": str(next(_lock_tokens))}
    raw = session.connection().connection.driver_connection
    try:
        with raw.pipeline():
            if carry is not None:  # its insert returns nothing: no answer is waited for
                session.add(carry)
                session.flush()
            raw.execute(lock_sql, params)
            cursor = raw.execute(sql, params)
        rows = cursor.fetchall()
        _balances_moved(session)
    except psycopg.Error as error:
        raise DBAPIError.instance(sql, params, error, psycopg.Error) from error
    return {row[0]: row for row in rows}


def _pg_org_round_trip(
    session: Session, sql: str, params: dict[str, Any], *, carry: Any = None
) -> dict[str, tuple]:
    """A movement under the org's account lock; creates the account on first use."""
    found = _pg_round_trip(session, _LOCK_ORG, sql, params, carry=carry)
    if "unlocked" in found:  # no account yet (or created meanwhile): create it, try once more
        credit_account_get_or_create(session=session, org_id=params["org_id"])
        found = _pg_round_trip(session, _LOCK_ORG, sql, params)
        if "unlocked" in found:
            raise _busy()
    return found


def _busy() -> Conflict:
    return Conflict(
        "The organization's credits changed while this was being recorded; nothing was moved. "
        "Try again."
    )


def _entry_from_row(session: Session, row: tuple) -> CreditLedgerEntry:
    """The entry of a returned row, as a persistent object of `session` (no extra query)."""
    # Entries never change: one already in the session is the same row.
    return db.attach_loaded(
        session, CreditLedgerEntry, dict(zip(_ENTRY_COLUMNS, row[2:], strict=True))
    )


def _pg_replay_or_lost_race(
    session: Session, found: dict[str, tuple], expected: dict[str, Any], idempotency_key: str
) -> CreditLedgerEntry:
    """The entry a movement returned: created, or the same key's entry (replay or reuse).

    Nothing created and no earlier entry seen: a transaction of another organization (another
    account lock) committed the same key while this one waited at the unique index; the
    statement did nothing, and the winner decides between replay and reuse.
    """
    if (row := found.get("existing")) is not None:
        return _replay(_entry_from_row(session, row), expected)
    if (row := found.get("created")) is not None:
        return _entry_from_row(session, row)
    existing = _replay(_entry_by_key(session, idempotency_key), expected)
    if existing is None:
        raise _busy()
    return existing


# --- movements ----------------------------------------------------------------------------


def _adjustment_refused(amount_millicredits: int, available: int) -> InsufficientCredits:
    return InsufficientCredits(
        f"An adjustment of {format_credits(amount_millicredits)} would take the balance "
        f"below zero; {format_credits(max(available, 0))} unpooled credits are available. "
        "Return pooled credits first or adjust by less.",
        needed_millicredits=-amount_millicredits,
        available_millicredits=max(available, 0),
    )


def _other_hold(generation_id: int | None, entry_id: int) -> Conflict:
    return Conflict(
        f"Generation {generation_id} already holds credits (entry #{entry_id}).",
        entry_id=entry_id,
    )


def _settle_exceeds(actual_millicredits: int, held: int) -> SettleExceedsHold:
    return SettleExceedsHold(
        f"This run cost {_credits_phrase(actual_millicredits)} but only "
        f"{format_credits(held)} were held; a new credit check is needed.",
        held_millicredits=held,
        actual_millicredits=actual_millicredits,
    )


def _already_closed(closing: CreditLedgerEntry) -> HoldAlreadyClosed:
    return HoldAlreadyClosed(
        f"This run's credits were already {'settled' if closing.kind == 'settle' else 'released'} "
        f"(entry #{closing.id}); nothing was moved.",
        closing_entry=closing,
    )


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
    if _on_postgres(session):
        found = _pg_org_round_trip(
            session,
            _GRANT_SQL,
            {
                "org_id": org_id,
                "kind": kind.value,
                "amount": amount_millicredits,
                "key": idempotency_key,
                "actor_user_id": actor_user_id,
                "reference": reference,
                "memo": memo,
                "now": utcnow(),
            },
        )
        if (row := found.get("insufficient")) is not None:
            raise _adjustment_refused(amount_millicredits, row[1])
        return _pg_replay_or_lost_race(session, found, expected, idempotency_key)
    account = _lock_account(session, org_id)
    if (existing := _replay(_entry_by_key(session, idempotency_key), expected)) is not None:
        return existing
    if amount_millicredits < 0:
        pooled, _ = _pools_state(session, org_id, None)
        available = account.balance_millicredits - pooled
        if -amount_millicredits > available:
            raise _adjustment_refused(amount_millicredits, available)
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


def _balances_statement(*, with_pool: bool) -> Any:
    account = select(CreditAccount.balance_millicredits).where(
        CreditAccount.org_id == bindparam("org_id")
    )
    pooled = select(func.coalesce(func.sum(CreditPool.balance_millicredits), 0)).where(
        CreditPool.org_id == bindparam("org_id")
    )
    pool = select(CreditPool.balance_millicredits).where(
        CreditPool.org_id == bindparam("org_id"), CreditPool.project_id == bindparam("project_id")
    )
    return select(
        account.scalar_subquery(),
        pooled.scalar_subquery(),
        pool.scalar_subquery() if with_pool else None,
    )


# Built once (their cache keys are then computed once): without and with a project's pool.
_BALANCES = {False: _balances_statement(with_pool=False), True: _balances_statement(with_pool=True)}


def _balances(
    session: Session, org_id: int, project_id: int | None = None
) -> tuple[int | None, int, int]:
    """(account balance or None without an account, pooled total, the project's pool balance)
    in one statement: what the balance and the credits a run may hold are read from. Read once
    per unit of work (a page shows the balance and what a run may hold; any write forgets it).
    """
    seen: dict = db.read_once(session, ("credits", org_id), dict)  # project id -> figures
    if project_id in seen:
        return seen[project_id]
    if project_id is None and seen:  # the balance and the pooled total hold for any project
        balance, pooled_total, _pool = next(iter(seen.values()))
        return balance, pooled_total, 0
    balance, pooled_total, pool_balance = session.execute(
        _BALANCES[project_id is not None], {"org_id": org_id, "project_id": project_id}
    ).one()
    seen[project_id] = (balance, int(pooled_total or 0), int(pool_balance or 0))
    return seen[project_id]


def credits_available(*, session: Session, org_id: int, project_id: int | None = None) -> int:
    """Millicredits a new run may hold: unpooled balance, plus the project's pool if any."""
    balance, pooled, pool_balance = _balances(session, org_id, project_id)
    if balance is None:
        return 0
    return balance - pooled + pool_balance


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
    insert_with: Any = None,
) -> CreditLedgerEntry:
    """Reserve credits before a run (a negative `hold` entry). Flushes; the caller commits.

    Draws from the project's pool first (``pool_amount_millicredits``), then from the
    unpooled balance. A generation has at most one hold.

    Args:
        insert_with: a new row to insert first, its id already set (the run's generation):
            on PostgreSQL it travels with the hold, one round trip for both.

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
    if _on_postgres(session):
        found = _pg_org_round_trip(
            session,
            _HOLD_SQL,
            {
                "org_id": org_id,
                "amount": amount_millicredits,
                "key": idempotency_key,
                "project_id": project_id,
                "generation_id": generation_id,
                "actor_user_id": actor_user_id,
                "memo": memo,
                "now": utcnow(),
            },
            carry=insert_with,
        )
        if (row := found.get("other_hold")) is not None:
            raise _other_hold(generation_id, row[_AT["id"]])
        if (row := found.get("insufficient")) is not None:
            pool_id = row[_AT["pool_id"]]
            raise _insufficient(amount_millicredits, row[1], project=pool_id is not None)
        return _pg_replay_or_lost_race(session, found, expected, idempotency_key)
    if insert_with is not None:
        session.add(insert_with)
        session.flush()
    created = _sqlite_new_hold(
        session,
        {
            "org_id": org_id,
            "kind": LedgerEntryKind.hold.value,
            "amount_millicredits": -amount_millicredits,
            "idempotency_key": idempotency_key,
            "actor_user_id": actor_user_id,
            "project_id": project_id,
            "generation_id": generation_id,
            "memo": memo,
            "created_at": utcnow(),
        },
    )
    if created is not None:
        return created
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
        raise _other_hold(generation_id, found[0].id)
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


def _require_one_hold_reference(hold_entry_id: int | None, generation_id: int | None) -> None:
    if (hold_entry_id is None) == (generation_id is None):
        raise ValidationFailed("Pass exactly one of hold_entry_id or generation_id.")


def _pg_close_hold(
    session: Session,
    *,
    hold_entry_id: int | None,
    generation_id: int | None,
    kind: LedgerEntryKind,
    actual_millicredits: int,
    idempotency_key: str,
    memo: str,
) -> CreditLedgerEntry:
    """Settle or release a hold in one round trip (PostgreSQL); same rules as `_close_hold`."""
    where = _HOLD_BY_ID if hold_entry_id is not None else _HOLD_BY_GENERATION
    params = {
        "hold_id": hold_entry_id,
        "generation_id": generation_id,
        "kind": kind.value,
        "actual": actual_millicredits,
        "key": idempotency_key,
        "memo": memo,
        "now": utcnow(),
    }
    for _attempt in range(2):
        found = _pg_round_trip(session, _LOCK_HOLD_ORG[where], _CLOSE_SQL[where], params)
        hold = found.get("hold")
        if hold is None:
            raise NotFound("No credit hold was found for this run.")
        held = -hold[_AT["amount_millicredits"]]
        if actual_millicredits > held:
            raise _settle_exceeds(actual_millicredits, held)
        # Unlocked: the hold was committed between the two statements; its org is known now.
        if "unlocked" not in found or "existing" in found or "closed" in found:
            break
    else:
        raise _busy()
    expected = {
        "org_id": hold[_AT["org_id"]],
        "kind": kind.value,
        "reference": f"hold:{hold[_AT['id']]}",
        "amount_millicredits": held - actual_millicredits,
    }
    if "existing" not in found and (row := found.get("closed")) is not None:
        raise _already_closed(_entry_from_row(session, row))
    return _pg_replay_or_lost_race(session, found, expected, idempotency_key)


def _find_hold(
    session: Session, hold_entry_id: int | None, generation_id: int | None
) -> CreditLedgerEntry:
    _require_one_hold_reference(hold_entry_id, generation_id)
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
    if found:
        raise _already_closed(found[0])
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
    memo = memo or f"charged {format_credits(actual_millicredits)}"
    if _on_postgres(session):
        _require_one_hold_reference(hold_entry_id, generation_id)
        return _pg_close_hold(
            session,
            hold_entry_id=hold_entry_id,
            generation_id=generation_id,
            kind=LedgerEntryKind.settle,
            actual_millicredits=actual_millicredits,
            idempotency_key=idempotency_key,
            memo=memo,
        )
    hold = _find_hold(session, hold_entry_id, generation_id)
    held = -hold.amount_millicredits
    if actual_millicredits > held:
        raise _settle_exceeds(actual_millicredits, held)
    return _close_hold(
        session,
        hold=hold,
        kind=LedgerEntryKind.settle,
        actual_millicredits=actual_millicredits,
        idempotency_key=idempotency_key,
        memo=memo,
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
    if _on_postgres(session):
        _require_one_hold_reference(hold_entry_id, generation_id)
        return _pg_close_hold(
            session,
            hold_entry_id=hold_entry_id,
            generation_id=generation_id,
            kind=LedgerEntryKind.release,
            actual_millicredits=0,
            idempotency_key=idempotency_key,
            memo=reason,
        )
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
    memo = memo or f"requested {format_credits(amount_millicredits)}"
    if _on_postgres(session):
        found = _pg_org_round_trip(
            session,
            _EXPIRE_SQL,
            {
                "org_id": org_id,
                "kind": LedgerEntryKind.expiry.value,
                "amount": amount_millicredits,
                "key": idempotency_key,
                "actor_user_id": actor_user_id,
                "reference": "",
                "memo": memo,
                "now": utcnow(),
            },
        )
        return _pg_replay_or_lost_race(session, found, expected, idempotency_key)
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
        memo=memo,
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
    balance, pooled, _ = _balances(session, org_id)
    balance = balance or 0
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
    "project_name",
    "generation_id",
    "run_id",
    "reference",
    "memo",
)


def ledger_names(
    *, session: Session, entries: Iterable[CreditLedgerEntry]
) -> tuple[dict[int, str], dict[int, str]]:
    """Project names and run ids (gen_...) of the entries, so a person can read them."""
    from models import Generation, Project

    entries = list(entries)
    project_ids = {e.project_id for e in entries if e.project_id is not None}
    generation_ids = {e.generation_id for e in entries if e.generation_id is not None}
    projects = (
        dict(
            session.exec(
                select(Project.id, Project.name).where(col(Project.id).in_(project_ids))
            ).all()
        )
        if project_ids
        else {}
    )
    runs = (
        dict(
            session.exec(
                select(Generation.id, Generation.public_id).where(
                    col(Generation.id).in_(generation_ids)
                )
            ).all()
        )
        if generation_ids
        else {}
    )
    return projects, runs


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
    entries = ledger_list(
        session=session, org_id=org_id, kinds=kinds, since=since, until=until, limit=limit
    )
    projects, runs = ledger_names(session=session, entries=entries)
    for entry in entries:
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
                _csv_safe(projects.get(entry.project_id, "")),
                entry.generation_id if entry.generation_id is not None else "",
                runs.get(entry.generation_id, ""),
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
