"""Database engine and sessions. One engine per process, created lazily from settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, create_engine

from core.settings import get_settings

T = TypeVar("T")
_engine: Engine | None = None


def normalize_database_url(url: str) -> str:
    """Accept the common `postgresql://` / `postgres://` forms and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs) -> Engine:
    url = normalize_database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            # Let SQLAlchemy issue BEGIN itself so BEGIN IMMEDIATE can serialize writers.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            # Writers take the lock at BEGIN, so read-modify-write sections cannot interleave.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = make_engine(get_settings().database_url)
    return _engine


def set_engine(engine: Engine | None) -> None:
    """Swap the process engine (tests point it at a temporary database)."""
    global _engine
    _engine = engine


def new_session() -> Session:
    """A session on the process engine whose objects stay readable after commit.

    For callers that decide themselves when to commit (the Reflex org-page skeleton, jobs that
    commit per item). Everything else uses `session_scope()`.
    """
    return Session(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work: commits on success and rolls back on error.

    The transaction rule of the project: the code that opens the unit of work commits it (a
    service that owns its effect, such as `billing.webhook_receive`, or the state skeleton
    `state/org_page.py`); helpers that receive a session never commit or roll back.
    """
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_postgres(session_or_engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if hasattr(session_or_engine, "get_bind")
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


def attach_loaded(session: Session, model: type, values: dict) -> Any:
    """The row of `model` with these column values, as a persistent object of `session`,
    without a query: the one already in the session, or one built as the ORM builds a loaded
    row (the mapped class's bare instance, then its column values; no validating constructor).
    Columns missing from `values` are expired, so reading one loads it from the database."""
    known = session.identity_map.get(identity_key(model, values["id"]))
    if known is not None:
        return known
    mapper = sa_inspect(model)
    row = mapper.class_manager.new_instance()
    row.__dict__.update(values)
    make_transient_to_detached(row)
    session.add(row)
    missing = [attr.key for attr in mapper.column_attrs if attr.key not in values]
    if missing:
        session.expire(row, missing)
    return row


def loaded_columns(*models: type) -> list[Any]:
    """Every column of `models`, labeled apart, for a prebuilt statement that reads rows as
    plain tuples (no ORM loading); `attach_row` turns such a row back into the objects."""
    return [
        column.label(f"{model.__tablename__}_{column.key}")
        for model in models
        for column in model.__table__.columns
    ]


def attach_row(session: Session, models: tuple[type, ...], row: Any) -> tuple[Any, ...]:
    """The objects of a row selected with `loaded_columns(*models)`, attached as loaded
    (`attach_loaded`); None for a model whose id is NULL (the missing side of an outer join)."""
    objects = []
    at = 0
    for model in models:
        keys = model.__table__.columns.keys()
        values = dict(zip(keys, row[at : at + len(keys)], strict=True))
        at += len(keys)
        objects.append(None if values["id"] is None else attach_loaded(session, model, values))
    return tuple(objects)


# --- reads repeated within one unit of work ------------------------------------------------------

_READS = "creative_studio.reads"


def read_once(session: Session, key: tuple, read: Callable[[], T]) -> T:
    """`read()` answered once per unit of work for `key`.

    For lookups that several checks of one event repeat (who is acting in an organization, its
    subscription, its plan). Any write through the session (a flush, a statement that is not
    a SELECT) and the end of the transaction forget what was read, so a unit of work that
    changes one of them reads it afresh.
    """
    reads = session.info.get(_READS)
    if reads is None:
        reads = session.info[_READS] = {}
    if key not in reads:
        reads[key] = read()
    return reads[key]


def remember_read(session: Session, key: tuple, value: Any) -> None:
    """Let `read_once(session, key, ...)` answer `value` in this unit of work: a fact resolved
    moments ago and handed over instead of read again. Forgotten like any read."""
    session.info.setdefault(_READS, {})[key] = value


def forget_reads(session: Any, *_args: Any) -> None:
    """Forget what `read_once` answered in this unit of work (after a write it cannot see)."""
    session.info.pop(_READS, None)


def _forget_reads_on_write(state: Any) -> None:
    if not state.is_select:
        forget_reads(state.session)


for _event in ("after_flush", "after_commit", "after_rollback", "after_soft_rollback"):
    event.listen(OrmSession, _event, forget_reads)
event.listen(OrmSession, "do_orm_execute", _forget_reads_on_write)
