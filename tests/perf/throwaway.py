"""A throwaway PostgreSQL database for running a benchmark from the command line."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel

import models  # noqa: F401 - registers every table
from core import db
from services.catalog import catalog_sync


def throwaway_database(base_url: str) -> tuple[Engine, Callable[[], None]]:
    """A new database next to `base_url` with the schema and catalog, and the call that drops it."""
    admin_url = make_url(db.normalize_database_url(base_url))
    name = f"cs_bench_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(
        admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = db.make_engine(admin_url.set(database=name).render_as_string(hide_password=False))
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        catalog_sync(session=session)
        session.commit()

    def drop() -> None:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return engine, drop
