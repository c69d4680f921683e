"""The help center: Markdown articles in `help/` loaded into the database and searched.

Invariants:
- The files are the truth. `help_articles_sync` is idempotent: an unchanged file changes no
  row; a changed file updates its row; a removed file removes its row. It runs at
  `python -m core.manage migrate` and at web start-up, like the plan catalog.
- Search is full-text: SQLite FTS5 (table `help_articles_fts`, rebuilt by the sync when an
  article changed or the index is missing) or PostgreSQL `tsvector` computed in the query
  (a few dozen articles need no stored index). Titles and error codes weigh most, so the
  query "billing required" ranks the `billing_required` runbook first.
- Snippets come back as segments (text, highlighted) so a page renders them as plain text:
  no article or query text is ever rendered as HTML.
- A search that finds nothing is counted per normalized query for operators.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.clock import utcnow
from core.settings import PROJECT_ROOT
from models import AIModel, HelpArticle, HelpSearchMiss, Plan, Tool
from services import pricing
from services.credits import format_credits
from services.errors import NotFound
from services.models_registry import rate_label

HELP_DIR = PROJECT_ROOT / "help"
ARTICLE_KINDS = ("guide", "runbook", "faq", "policy", "reference")
RUNBOOK_SECTIONS = ("Checks", "Fix steps", "Escalation")
MAX_QUERY_CHARS = 200
_HL_START, _HL_END = "\u27e6", "\u27e7"  # never in articles; split into segments
_FTS_TABLE = "help_articles_fts"
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,118}$")


class HelpArticleError(ValueError):
    """An article file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Segment:
    text: str
    highlighted: bool


@dataclass(frozen=True)
class SearchHit:
    slug: str
    title: str
    kind: str
    summary: str
    tags: list[str]
    snippet: list[Segment] = field(default_factory=list)


@dataclass(frozen=True)
class SyncResult:
    added: int = 0
    updated: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


# --- loading ----------------------------------------------------------------------------------


def _front_matter(path: Path) -> tuple[dict, str]:
    raw = path.read_text(encoding="utf-8")
    if not raw.startswith("---\n"):
        raise HelpArticleError(f"{path.name}: the file must start with '---' front matter")
    try:
        head, body = raw[4:].split("\n---\n", 1)
    except ValueError:
        raise HelpArticleError(f"{path.name}: the front matter has no closing '---'") from None
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        raise HelpArticleError(f"{path.name}: the front matter is not valid YAML ({exc})") from None
    if not isinstance(meta, dict):
        raise HelpArticleError(f"{path.name}: the front matter must be a mapping")
    return meta, body.strip() + "\n"


def _str_list(meta: dict, key: str, path: Path) -> list[str]:
    value = meta.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise HelpArticleError(f"{path.name}: '{key}' must be a list of words")
    return [item.strip() for item in value if item.strip()]


def article_parse(path: Path) -> dict:
    """One article file as the values of its row. Raises HelpArticleError when malformed."""
    meta, body = _front_matter(path)
    slug = str(meta.get("slug") or "")
    if not _SLUG_RE.match(slug):
        raise HelpArticleError(f"{path.name}: 'slug' must be lower-case letters, digits, dashes")
    title = str(meta.get("title") or "").strip()
    if not title:
        raise HelpArticleError(f"{path.name}: 'title' is required")
    kind = str(meta.get("kind") or "guide")
    if kind not in ARTICLE_KINDS:
        raise HelpArticleError(f"{path.name}: 'kind' must be one of {', '.join(ARTICLE_KINDS)}")
    if kind == "runbook":
        missing = [name for name in RUNBOOK_SECTIONS if f"## {name}" not in body]
        if missing:
            raise HelpArticleError(f"{path.name}: a runbook needs sections {', '.join(missing)}")
    values = {
        "slug": slug,
        "title": title[:200],
        "kind": kind,
        "summary": str(meta.get("summary") or "").strip()[:500],
        "tags": _str_list(meta, "tags", path),
        "roles": _str_list(meta, "roles", path),
        "error_codes": _str_list(meta, "error_codes", path),
        "widget": str(meta.get("widget") or "")[:32],
        "body": body,
        "updated": str(meta.get("updated") or "")[:10],
        "sort_order": int(meta.get("order") or 100),
    }
    digest = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()
    values["content_hash"] = digest
    return values


def articles_read(help_dir: Path = HELP_DIR) -> list[dict]:
    articles = [article_parse(path) for path in sorted(help_dir.glob("*.md"))]
    seen: set[str] = set()
    for article in articles:
        if article["slug"] in seen:
            raise HelpArticleError(f"two articles use the slug {article['slug']!r}")
        seen.add(article["slug"])
    return articles


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _plain(markdown_text: str) -> str:
    """Markdown without its punctuation, for the index and snippets."""
    plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown_text)
    plain = re.sub(r"[#*`|>_]+", " ", plain)
    plain = re.sub(r"-{3,}", " ", plain)
    return re.sub(r"\s+", " ", plain).strip()


def _codes_text(codes: list[str]) -> str:
    return " ".join(f"{code} {code.replace('_', ' ')}" for code in codes)


def _fts_exists(session: Session) -> bool:
    row = session.execute(
        text("SELECT name FROM sqlite_master WHERE type='table' AND name=:name"),
        {"name": _FTS_TABLE},
    ).first()
    return row is not None


def _fts_rebuild(session: Session) -> None:
    session.execute(
        text(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {_FTS_TABLE} USING fts5("
            "slug UNINDEXED, title, codes, tags, summary, body, tokenize='porter unicode61')"
        )
    )
    session.execute(text(f"DELETE FROM {_FTS_TABLE}"))
    for article in session.exec(select(HelpArticle)):
        session.execute(
            text(
                f"INSERT INTO {_FTS_TABLE} (slug, title, codes, tags, summary, body) "
                "VALUES (:slug, :title, :codes, :tags, :summary, :body)"
            ),
            {
                "slug": article.slug,
                "title": article.title,
                "codes": _codes_text(list(article.error_codes)),
                "tags": " ".join(article.tags),
                "summary": article.summary,
                "body": _plain(article.body),
            },
        )


def help_articles_sync(*, session: Session, help_dir: Path = HELP_DIR) -> SyncResult:
    """Load the article files into `help_articles` (idempotent). Flushes; the caller commits.

    Raises:
        HelpArticleError: a file is malformed (nothing is changed then).
    """
    files = {article["slug"]: article for article in articles_read(help_dir)}
    rows = {row.slug: row for row in session.exec(select(HelpArticle))}
    added = updated = removed = 0
    for slug, values in files.items():
        row = rows.get(slug)
        if row is None:
            session.add(HelpArticle(**values, loaded_at=utcnow()))
            added += 1
        elif row.content_hash != values["content_hash"]:
            for key, value in values.items():
                setattr(row, key, value)
            row.loaded_at = utcnow()
            session.add(row)
            updated += 1
    for slug, row in rows.items():
        if slug not in files:
            session.delete(row)
            removed += 1
    session.flush()
    result = SyncResult(added, updated, removed)
    if not _is_postgres(session) and (result.changed or not _fts_exists(session)):
        _fts_rebuild(session)
    return result


# --- reading ----------------------------------------------------------------------------------


def help_article_get(*, session: Session, slug: str) -> HelpArticle:
    """Raises NotFound for an unknown slug."""
    slug = (slug or "")[:120]
    row = session.exec(select(HelpArticle).where(HelpArticle.slug == slug)).first()
    if row is None:
        raise NotFound(
            "There is no help article at this address. Search the help center for your question."
        )
    return row


def help_tags(*, session: Session) -> list[str]:
    tags: set[str] = set()
    for row in session.exec(select(HelpArticle)):
        tags.update(row.tags)
    return sorted(tags)


def help_article_slugs(*, session: Session) -> set[str]:
    return set(session.exec(select(HelpArticle.slug)))


def _segments(snippet: str) -> list[Segment]:
    segments: list[Segment] = []
    for index, part in enumerate(re.split(f"[{_HL_START}{_HL_END}]", snippet)):
        if part:
            segments.append(Segment(part, highlighted=index % 2 == 1))
    return segments


def _words(query: str) -> list[str]:
    return [word for word in re.findall(r"\w+", (query or "").lower()) if len(word) > 1][:12]


def _hit(row: HelpArticle, snippet: str) -> SearchHit:
    return SearchHit(
        slug=row.slug,
        title=row.title,
        kind=row.kind,
        summary=row.summary,
        tags=list(row.tags),
        snippet=_segments(snippet) if snippet else [Segment(row.summary, False)],
    )


def _sqlite_search(session: Session, words: list[str], any_word: bool) -> list[tuple[str, str]]:
    if not _fts_exists(session):
        _fts_rebuild(session)
    joiner = " OR " if any_word else " "
    match = joiner.join(f'"{word}"' for word in words)
    rows = session.execute(
        text(
            f"SELECT slug, snippet({_FTS_TABLE}, 5, :hs, :he, '…', 16) FROM {_FTS_TABLE} "
            f"WHERE {_FTS_TABLE} MATCH :match "
            f"ORDER BY bm25({_FTS_TABLE}, 0.0, 10.0, 8.0, 3.0, 3.0, 1.0) LIMIT 50"
        ),
        {"match": match, "hs": _HL_START, "he": _HL_END},
    )
    return [(slug, snippet) for slug, snippet in rows]


def _postgres_search(session: Session, words: list[str], any_word: bool) -> list[tuple[str, str]]:
    joiner = " | " if any_word else " & "
    query = joiner.join(f"{word}:*" for word in words if word.isalnum())
    if not query:
        return []
    document = (
        "setweight(to_tsvector('english', title), 'A') || "
        "setweight(to_tsvector('english', replace(array_to_string(ARRAY(SELECT "
        "json_array_elements_text(error_codes::json)), ' '), '_', ' ')), 'A') || "
        "setweight(to_tsvector('english', summary), 'B') || "
        "setweight(to_tsvector('english', body), 'D')"
    )
    rows = session.execute(
        text(
            f"SELECT slug, ts_headline('english', body, to_tsquery('english', :q), "
            f"'StartSel={_HL_START}, StopSel={_HL_END}, MaxWords=30, MinWords=12') "
            f"FROM help_articles WHERE ({document}) @@ to_tsquery('english', :q) "
            f"ORDER BY ts_rank({document}, to_tsquery('english', :q)) DESC, sort_order LIMIT 50"
        ),
        {"q": query},
    )
    return [(slug, _plain(snippet)) for slug, snippet in rows]


def help_search(*, session: Session, query: str, tag: str = "", limit: int = 50) -> list[SearchHit]:
    """Articles matching `query` (every word; any word when none match all), best first,
    optionally only those tagged `tag`. An empty query lists every article in reading order."""
    query = (query or "")[:MAX_QUERY_CHARS]
    rows = {row.slug: row for row in session.exec(select(HelpArticle))}
    words = _words(query)
    if not words:
        ordered = sorted(rows.values(), key=lambda row: (row.sort_order, row.title))
        hits = [_hit(row, "") for row in ordered]
    else:
        search = _postgres_search if _is_postgres(session) else _sqlite_search
        found = search(session, words, any_word=False) or search(session, words, any_word=True)
        hits = [_hit(rows[slug], snippet) for slug, snippet in found if slug in rows]
    if tag:
        hits = [hit for hit in hits if tag in hit.tags]
    return hits[:limit]


def help_suggest(*, session: Session, text_typed: str, limit: int = 3) -> list[SearchHit]:
    """Articles that may answer a support subject being typed (any of its words)."""
    words = _words(text_typed)
    if not words:
        return []
    search = _postgres_search if _is_postgres(session) else _sqlite_search
    rows = {row.slug: row for row in session.exec(select(HelpArticle))}
    return [_hit(rows[s], snip) for s, snip in search(session, words, True) if s in rows][:limit]


def help_search_miss_record(*, session: Session, query: str) -> None:
    """Count a search that found nothing (one row per normalized query). Flushes."""
    key = " ".join(_words(query))[:200]
    if not key:
        return
    now = utcnow()
    bump = (
        update(HelpSearchMiss)
        .where(col(HelpSearchMiss.query_key) == key)
        .values(count=HelpSearchMiss.count + 1, last_at=now)
    )
    if session.execute(bump).rowcount:
        return
    try:
        with session.begin_nested():
            session.add(
                HelpSearchMiss(query_key=key, query=query.strip()[:200], first_at=now, last_at=now)
            )
    except IntegrityError:  # another process recorded it first
        session.execute(bump)


def help_search_misses(*, session: Session, limit: int = 20) -> list[HelpSearchMiss]:
    query = (
        select(HelpSearchMiss)
        .order_by(col(HelpSearchMiss.count).desc(), col(HelpSearchMiss.last_at).desc())
        .limit(limit)
    )
    return list(session.exec(query))


# --- pages built from the catalog (no numbers copied into Markdown) ----------------------------


@dataclass(frozen=True)
class RateRow:
    model: str
    rate: str
    plan: str
    status: str


@dataclass(frozen=True)
class ToolRow:
    tool: str
    modality: str
    model: str
    credits: str
    description: str


def model_rates(*, session: Session) -> dict[str, list[RateRow]]:
    """Credit rates by modality (text, image, video), from the model registry."""
    plans = {plan.key: plan.name for plan in session.exec(select(Plan))}
    by_modality: dict[str, list[RateRow]] = {"text": [], "image": [], "video": []}
    models = session.exec(select(AIModel).order_by(col(AIModel.sort_order), col(AIModel.key)))
    for model in models:
        by_modality.setdefault(model.modality, []).append(
            RateRow(
                model=model.display_name,
                rate=rate_label(model),
                plan=plans.get(model.min_plan_key, model.min_plan_key) + "+",
                status=model.status,
            )
        )
    return by_modality


def tools_overview(*, session: Session) -> list[ToolRow]:
    """Each tool with its credits per standard run on its default model."""
    models = {model.key: model for model in session.exec(select(AIModel))}
    rows = []
    for tool in session.exec(select(Tool).order_by(col(Tool.sort_order), col(Tool.key))):
        model = models.get(tool.default_model_key)
        if model is None:
            continue
        credits = pricing.tool_standard_credits(tool, model)
        rows.append(
            ToolRow(
                tool=tool.name,
                modality=tool.modality,
                model=model.display_name,
                credits=format_credits(credits),
                description=tool.description,
            )
        )
    return rows


def help_articles_load_at_start() -> None:
    """The web process's start-up hook: load the articles; a missing schema is logged (the
    catalog loader says to run `python -m core.manage migrate`)."""
    import logging

    from sqlalchemy.exc import OperationalError, ProgrammingError

    from core.db import session_scope

    try:
        with session_scope() as session:
            help_articles_sync(session=session)
    except (OperationalError, ProgrammingError) as exc:
        logging.getLogger("creative_studio.startup").error(
            "Help articles not loaded (%s). Run: python -m core.manage migrate",
            exc.__class__.__name__,
        )
