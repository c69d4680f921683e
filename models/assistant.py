"""Marketing Assistant conversations, and the full-text index over titles and messages.

Messages are `models.studio.AssistantMessage` rows; `conversation_id` holds the conversation's
`public_id`. Search runs in the database itself, no extra service: an FTS5 table per searched
column on SQLite (kept in step by triggers), a GIN index over `to_tsvector` on PostgreSQL.
`assistant_search_ensure` creates them; the migration calls it, and so does every
`metadata.create_all` (the test databases) through the listener at the end of this module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, event, inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from models.base import created_at_field, utc_datetime_field


class AssistantConversation(SQLModel, table=True):
    """A chat with the Marketing Assistant, in an organization and optionally a project."""

    __tablename__ = "assistant_conversations"
    __table_args__ = (Index("ix_assistant_conversations_org_updated", "org_id", "updated_at"),)

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=40, unique=True)  # "chat_..." in URLs
    org_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE")
    project_id: int | None = Field(
        default=None, foreign_key="projects.id", ondelete="CASCADE", index=True
    )
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    title: str = Field(default="New conversation", max_length=200)
    model_key: str = Field(max_length=64)
    brand_kit_id: int | None = Field(default=None, foreign_key="brand_kits.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    archived_at: datetime | None = utc_datetime_field()


# --- full-text search -------------------------------------------------------------------------

# (FTS table, indexed table, indexed column)
SEARCHED = (
    ("assistant_messages_fts", "assistant_messages", "content"),
    ("assistant_conversations_fts", "assistant_conversations", "title"),
)
PG_SEARCH_INDEXES = {
    "assistant_messages": "ix_assistant_messages_search",
    "assistant_conversations": "ix_assistant_conversations_search",
}
PG_SEARCH_CONFIG = "simple"  # language-neutral: no stemming or stop words to surprise anyone


def _sqlite_statements(fts: str, table: str, column: str) -> list[str]:
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5("
        f"{column}, tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column}); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE OF {column} ON {table} BEGIN "
        f"DELETE FROM {fts} WHERE rowid = old.id; "
        f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column}); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE ON {table} BEGIN "
        f"DELETE FROM {fts} WHERE rowid = old.id; END",
    ]


def assistant_search_ensure(connection: Connection) -> None:
    """Create the search index of conversations and messages if it is missing (idempotent).

    On SQLite a newly created FTS table is filled from the rows already there.
    """
    dialect = connection.dialect.name
    tables = set(inspect(connection).get_table_names())
    for fts, table, column in SEARCHED:
        if table not in tables:
            continue
        if dialect == "sqlite":
            existed = fts in tables
            for statement in _sqlite_statements(fts, table, column):
                connection.execute(text(statement))
            if not existed:
                connection.execute(
                    text(f"INSERT INTO {fts}(rowid, {column}) SELECT id, {column} FROM {table}")
                )
        elif dialect == "postgresql":
            connection.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {PG_SEARCH_INDEXES[table]} ON {table} "
                    f"USING gin (to_tsvector('{PG_SEARCH_CONFIG}', {column}))"
                )
            )


def assistant_search_drop(connection: Connection) -> None:
    """Remove the search index (the migration's downgrade)."""
    dialect = connection.dialect.name
    for fts, table, _column in SEARCHED:
        if dialect == "sqlite":
            for suffix in ("insert", "update", "delete"):
                connection.execute(text(f"DROP TRIGGER IF EXISTS {fts}_{suffix}"))
            connection.execute(text(f"DROP TABLE IF EXISTS {fts}"))
        elif dialect == "postgresql":
            connection.execute(text(f"DROP INDEX IF EXISTS {PG_SEARCH_INDEXES[table]}"))


def is_search_object(name: str | None) -> bool:
    """True for the FTS5 tables (with their shadow tables) and the GIN indexes: SQL made them
    and no model describes them, so a schema comparison leaves them out."""
    name = name or ""
    return name in PG_SEARCH_INDEXES.values() or any(
        name == fts or name.startswith(fts + "_") for fts, _table, _column in SEARCHED
    )


@event.listens_for(SQLModel.metadata, "after_create")
def _search_after_create_all(_metadata, connection: Connection, **_kw) -> None:
    assistant_search_ensure(connection)
