"""The API quickstart is a help article a person finds by searching, with every step in order,
and Settings > API links to it."""

from __future__ import annotations

from pathlib import Path

from core import routes
from services.help_center import help_article_get, help_articles_sync, help_search


def test_the_api_quickstart_is_found_and_walks_every_step_in_order(session):
    help_articles_sync(session=session)
    session.commit()
    hits = help_search(session=session, query="API quickstart first completion")
    assert hits and hits[0].slug == "api-quickstart"
    article = help_article_get(session=session, slug="api-quickstart")
    assert "api" in article.tags
    body = article.body
    steps = [
        "Register and verify your email",
        "add a billing profile",
        "Create an API key",
        "first completion with curl",
        "with the openai SDK",
    ]
    positions = [body.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "curl <app>/v1/chat/completions" in body and "Authorization: Bearer" in body
    assert 'OpenAI(base_url="<app>/v1"' in body and "stream=True" in body
    assert "billing_required" in body and "email_not_verified" in body


def test_settings_api_links_to_the_quickstart():
    page = Path(__file__).parents[2] / "creative_studio" / "pages" / "api_settings.py"
    assert 'routes.help_article("api-quickstart")' in page.read_text()
    assert routes.help_article("api-quickstart") == "/help/api-quickstart"
