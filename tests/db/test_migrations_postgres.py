"""Alembic migrations build the whole schema from an empty PostgreSQL database."""

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from core.db import make_engine, normalize_database_url
from core.manage import migrate
from models.assistant import is_search_object
from tests.conftest import TEST_DATABASE_URL, requires_postgres


@requires_postgres
def test_upgrade_head_on_empty_postgres():
    admin_url = make_url(normalize_database_url(TEST_DATABASE_URL))
    name = f"cs_mig_{uuid.uuid4().hex[:8]}"
    admin = make_engine(
        admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        migrate(url)  # idempotent
        engine = make_engine(url)
        assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(text("select count(*) from plans")).scalar() == 4
            assert conn.execute(text("select count(*) from ai_models")).scalar() >= 5
            # The Assistant's GIN search indexes are created by SQL, not described by a model.
            context = MigrationContext.configure(
                conn, opts={"include_name": lambda name, kind, _parent: not is_search_object(name)}
            )
            assert compare_metadata(context, SQLModel.metadata) == []
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
