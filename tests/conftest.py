"""Shared fixtures: a fresh SQLite database per test, and PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

# Settings are read from the environment on first use: pin them before any app import.
_TEST_DATA_DIR = tempfile.mkdtemp(prefix="cs-test-")
os.environ.setdefault("CS_DATA_DIR", _TEST_DATA_DIR)
os.environ["APP_ENV"] = "development"
os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 40)
for _var in (
    "STRIPE_SECRET_KEY",
    "SMTP_HOST",
    "GOOGLE_CLIENT_ID",
    "OPENAI_BASE_URL",
    "DATABASE_URL",
):
    os.environ.pop(_var, None)

import pytest  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

import models  # noqa: E402,F401  (registers every table)
from core import clock, db  # noqa: E402
from core.settings import reset_settings_cache  # noqa: E402
from services.catalog import catalog_sync  # noqa: E402
from tests.live_app import app_server, browser, context, page  # noqa: E402,F401  (one live app)


def _prepare(engine: Engine) -> Engine:
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        catalog_sync(session=session)
        session.commit()
    return engine


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:
    """A fresh SQLite file database with the schema and catalog; also the process engine."""
    engine = _prepare(db.make_engine(f"sqlite:///{tmp_path / 'test.db'}"))
    db.set_engine(engine)
    yield engine
    db.set_engine(None)
    engine.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(autouse=True)
def _reset_clock_and_settings():
    yield
    clock.freeze(None)
    reset_settings_cache()


# --- PostgreSQL -------------------------------------------------------------------------------

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
requires_postgres = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL to run PostgreSQL tests"
)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test run (dropped at the end)."""
    if not TEST_DATABASE_URL:
        pytest.skip("set TEST_DATABASE_URL to run PostgreSQL tests")
    admin_url = make_url(db.normalize_database_url(TEST_DATABASE_URL))
    name = f"cs_test_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(
        admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def _pg_engine_schema(pg_database_url) -> Iterator[Engine]:
    engine = _prepare(db.make_engine(pg_database_url))
    yield engine
    engine.dispose()


def _truncate_all(engine: Engine) -> None:
    """Empty every table, then load the catalog again: a test that pointed a model at its own
    endpoint, swapped or disabled it must not leave that for the next test."""
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    with Session(engine) as session:
        catalog_sync(session=session)
        session.commit()


@pytest.fixture
def pg_engine(_pg_engine_schema) -> Iterator[Engine]:
    """PostgreSQL engine for tests that commit from several connections (concurrency).

    Data is truncated after each test and the catalog loaded afresh.
    """
    db.set_engine(_pg_engine_schema)
    try:
        yield _pg_engine_schema
    finally:
        db.set_engine(None)
        _truncate_all(_pg_engine_schema)


@pytest.fixture
def pg_session(_pg_engine_schema) -> Iterator[Session]:
    """A PostgreSQL session inside a transaction that is rolled back after the test."""
    connection = _pg_engine_schema.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


# --- order ----------------------------------------------------------------------------------

_LIVE_APP_FIXTURES = {"app_server", "browser", "context", "page"}


def pytest_collection_modifyitems(config, items):
    """Fast tests first; tests that drive the running app and Chromium last.

    Besides giving quick feedback, this keeps Playwright's session-wide event loop (its sync API
    runs one in the main thread until the session ends) away from tests that call
    `asyncio.run`, such as the State handler tests.
    """

    def uses_live_app(item) -> bool:
        return bool(
            item.get_closest_marker("browser")
            or _LIVE_APP_FIXTURES & set(getattr(item, "fixturenames", ()))
        )

    items.sort(key=uses_live_app)  # stable: the order within each group is kept
