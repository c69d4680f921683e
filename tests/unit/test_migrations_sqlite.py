"""Alembic migrations build the whole schema from an empty SQLite database."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from core.db import make_engine
from core.manage import alembic_config, migrate
from models.assistant import is_search_object


def test_upgrade_head_on_empty_sqlite_creates_every_table_and_loads_catalog(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate(url)
    engine = make_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from plans")).scalar() == 4
    migrate(url)  # a second run is a no-op
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from plans")).scalar() == 4
    engine.dispose()


def test_models_and_migrations_agree(tmp_path):
    """A model change without a migration fails here (run `alembic revision --autogenerate`)."""
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    with engine.connect() as conn:
        # The Assistant's FTS5 search tables are created by SQL, not described by a model.
        context = MigrationContext.configure(
            conn, opts={"include_name": lambda name, kind, _parent: not is_search_object(name)}
        )
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'down.db'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    engine = make_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    command.upgrade(config, "head")
