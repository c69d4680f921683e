"""The help center: articles load idempotently, search ranks the right runbook first, and
every catalogued error code links to an article with Checks / Fix steps / Escalation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from models import HelpArticle, HelpSearchMiss
from services.error_codes import CATALOGUE
from services.help_center import (
    HELP_DIR,
    RUNBOOK_SECTIONS,
    HelpArticleError,
    articles_read,
    help_articles_sync,
    help_search,
    help_search_miss_record,
    help_suggest,
    model_rates,
    tools_overview,
)

# The API's error codes (issue 11) and SSO problems have runbooks even before the codes land.
API_CODES = (
    "invalid_api_key key_expired scope_missing api_disabled billing_required email_not_verified "
    "model_not_available insufficient_credits spend_cap_reached daily_cap_reached rate_limited "
    "invalid_request provider_error"
).split()


@pytest.fixture
def loaded(session):
    help_articles_sync(session=session)
    session.commit()
    return session


def _articles() -> dict[str, dict]:
    return {article["slug"]: article for article in articles_read(HELP_DIR)}


def test_every_error_code_links_to_an_article_with_runbook_sections():
    articles = _articles()
    missing = {
        info.code.value: info.help_slug
        for info in CATALOGUE.values()
        if info.help_slug not in articles
    }
    assert missing == {}, f"error codes whose help_slug has no article in help/: {missing}"
    for info in CATALOGUE.values():
        body = articles[info.help_slug]["body"]
        for section in RUNBOOK_SECTIONS:
            assert f"## {section}" in body, f"{info.help_slug} lacks '## {section}'"


def test_api_codes_and_sso_have_runbooks():
    articles = _articles()
    covered = {code for a in articles.values() for code in a["error_codes"]}
    assert set(API_CODES) <= covered
    assert articles["security-and-sso"]["kind"] == "runbook"


def test_loading_is_idempotent_and_follows_the_files(session, tmp_path):
    first = help_articles_sync(session=session)
    assert first.added == len(_articles()) and not first.updated
    assert not help_articles_sync(session=session).changed
    # A changed and a removed file.
    for path in HELP_DIR.glob("*.md"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "faq.md").write_text((tmp_path / "faq.md").read_text().replace("UTC", "UTC!"))
    (tmp_path / "quickstart.md").unlink()
    result = help_articles_sync(session=session, help_dir=tmp_path)
    assert (result.updated, result.removed) == (1, 1)
    assert session.exec(select(HelpArticle).where(HelpArticle.slug == "quickstart")).first() is None


def test_a_runbook_without_its_sections_is_refused(tmp_path):
    (tmp_path / "bad.md").write_text(
        "---\nslug: bad\ntitle: Bad\nkind: runbook\n---\n\n## Checks\n\nnothing\n"
    )
    with pytest.raises(HelpArticleError, match="Fix steps, Escalation"):
        articles_read(Path(tmp_path))


def test_search_ranks_the_billing_required_runbook_first_with_highlights(loaded):
    hits = help_search(session=loaded, query="billing required")
    assert hits[0].slug == "billing-required"
    assert any(s.highlighted and s.text.lower().startswith("billing") for s in hits[0].snippet)
    assert help_search(session=loaded, query="cannot sign in")[0].slug == "cannot-sign-in"
    assert help_search(session=loaded, query="rate_limited")[0].slug == "api-integration"


def test_tag_filter_and_listing(loaded):
    every = help_search(session=loaded, query="")
    assert len(every) == len(_articles())
    assert every[0].slug == "quickstart"
    billing = help_search(session=loaded, query="", tag="billing")
    assert billing and all("billing" in hit.tags for hit in billing)
    assert {hit.slug for hit in billing} < {hit.slug for hit in every}


def test_searches_with_no_result_are_counted_for_operators(loaded):
    assert help_search(session=loaded, query="quantum teleport") == []
    help_search_miss_record(session=loaded, query="Quantum teleport")
    help_search_miss_record(session=loaded, query="quantum  TELEPORT!")
    loaded.commit()
    misses = list(loaded.exec(select(HelpSearchMiss)))
    assert [(m.query_key, m.count) for m in misses] == [("quantum teleport", 2)]


def test_suggestions_while_typing_a_subject(loaded):
    assert "run-reliability" in {
        h.slug for h in help_suggest(session=loaded, text_typed="my run failed with provider error")
    }


def test_rates_and_tools_come_from_the_catalog(loaded):
    rates = model_rates(session=loaded)
    assert set(rates) >= {"text", "image", "video"}
    assert all("credit" in row.rate for rows in rates.values() for row in rows)
    tools = tools_overview(session=loaded)
    assert tools and all(row.credits for row in tools)
