"""/help and /help/<slug>: the public help center (no sign-in needed), also inside the app.

Everything shown is public documentation; no ids or anything per-person is in this state.
Search text from the browser is bounded; an article body goes to `rx.markdown` with raw HTML
off, and snippets are plain-text segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from core import db, routes
from services import help_center
from services.errors import DomainError
from state.org_page import bounded

MAX_QUERY_INPUT = help_center.MAX_QUERY_CHARS + 1
MAX_TAG_INPUT = 40
KIND_LABELS = {
    "guide": "Guide",
    "runbook": "Runbook",
    "faq": "FAQ",
    "policy": "Policy",
    "reference": "Reference",
}


@dataclass
class SnippetPart:
    text: str
    highlighted: bool


@dataclass
class HitRow:
    slug: str
    href: str
    title: str
    kind: str
    snippet: list[SnippetPart]
    tags: list[str]


@dataclass
class RateLine:
    model: str
    rate: str
    plan: str
    status: str


@dataclass
class ToolLine:
    tool: str
    modality: str
    model: str
    credits: str
    description: str


def hit_rows(hits: list[help_center.SearchHit]) -> list[HitRow]:
    return [
        HitRow(
            slug=hit.slug,
            href=routes.help_article(hit.slug),
            title=hit.title,
            kind=KIND_LABELS.get(hit.kind, hit.kind),
            snippet=[SnippetPart(s.text, s.highlighted) for s in hit.snippet],
            tags=list(hit.tags),
        )
        for hit in hits
    ]


def found_line(count: int) -> str:
    return f"{count} resource{'s' if count != 1 else ''} found"


class HelpState(rx.State):
    query: str = ""
    tag: str = ""
    tags: list[str] = []
    hits: list[HitRow] = []
    found: str = ""
    searched: str = ""  # the query the results are for ("" = browsing)

    # --- search --------------------------------------------------------------------------

    def _run_search(self) -> None:
        with db.session_scope() as session:
            self.tags = help_center.help_tags(session=session)
            if self.tag not in self.tags:
                self.tag = ""
            hits = help_center.help_search(session=session, query=self.query, tag=self.tag)
            if self.query.strip() and not hits:
                help_center.help_search_miss_record(session=session, query=self.query)
        self.hits = hit_rows(hits)
        self.found = found_line(len(hits))
        self.searched = self.query.strip()

    @rx.event
    def load_index(self):
        params = self.router.url.query_parameters
        self.query = bounded(params.get("q", ""), MAX_QUERY_INPUT)[: help_center.MAX_QUERY_CHARS]
        self.tag = bounded(params.get("tag", ""), MAX_TAG_INPUT)
        self._run_search()

    @rx.event
    def set_query(self, value: str):
        self.query = bounded(value, MAX_QUERY_INPUT)[: help_center.MAX_QUERY_CHARS]

    @rx.event
    def search(self, form: dict | None = None):
        if isinstance(form, dict) and "q" in form:
            self.query = bounded(form.get("q"), MAX_QUERY_INPUT)[: help_center.MAX_QUERY_CHARS]
        self._run_search()

    @rx.event
    def choose_tag(self, tag: str):
        tag = bounded(tag, MAX_TAG_INPUT)
        self.tag = "" if tag == self.tag else tag
        self._run_search()

    @rx.event
    def clear(self):
        self.query, self.tag = "", ""
        self._run_search()


class HelpArticleState(rx.State):
    not_found: bool = False
    slug: str = ""
    title: str = ""
    kind: str = ""
    summary: str = ""
    body: str = ""
    updated: str = ""
    tags: list[str] = []
    error_codes: list[str] = []
    widget: str = ""
    text_rates: list[RateLine] = []
    image_rates: list[RateLine] = []
    video_rates: list[RateLine] = []
    tools: list[ToolLine] = []

    @rx.var
    def support_hint(self) -> str:
        return "Still stuck? Sign in and open Help > Contact support in your organization."

    @rx.event
    def load(self):
        parts = [part for part in (self.router.url.path or "").split("/") if part]
        slug = bounded(parts[1] if len(parts) >= 2 and parts[0] == "help" else "", 120)
        with db.session_scope() as session:
            try:
                article = help_center.help_article_get(session=session, slug=slug)
            except DomainError:
                self.reset()
                self.not_found = True
                return
            self.not_found = False
            self.slug, self.title, self.summary = article.slug, article.title, article.summary
            self.kind = KIND_LABELS.get(article.kind, article.kind)
            self.body, self.updated = article.body, article.updated
            self.tags, self.error_codes = list(article.tags), list(article.error_codes)
            self.widget = article.widget
            self.text_rates = self.image_rates = self.video_rates = []
            self.tools = []
            if article.widget == "model_rates":
                rates = help_center.model_rates(session=session)
                convert = lambda rows: [RateLine(r.model, r.rate, r.plan, r.status) for r in rows]  # noqa: E731
                self.text_rates = convert(rates.get("text", []))
                self.image_rates = convert(rates.get("image", []))
                self.video_rates = convert(rates.get("video", []))
            elif article.widget == "tools_overview":
                self.tools = [
                    ToolLine(t.tool, t.modality, t.model, t.credits, t.description)
                    for t in help_center.tools_overview(session=session)
                ]
