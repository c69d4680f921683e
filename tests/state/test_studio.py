"""Creative Studio handlers called as the browser calls them: what a person sees after each."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from core.clock import utcnow
from core.settings import reset_settings_cache
from models import Generation
from services import credits, orgs
from state.org_page import NOT_FOUND_RELOAD
from state.studio import (
    MAX_PROMPT_CHARS,
    MODEL_NOT_LISTED,
    OPTION_NOT_OFFERED,
    PROMPT_INPUT_CHARS,
    StudioState,
)
from tests.factories import add_member, make_org, make_user, signed_in_cookie

VIEWER_MESSAGE = (
    "Viewers can look at projects and assets but cannot run tools. "
    "Ask an owner or admin to make you an editor."
)


@pytest.fixture(autouse=True)
def _local_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path / "assets"))
    monkeypatch.delenv("STORAGE_BUCKET", raising=False)
    reset_settings_cache()


def _studio(session, page_state, call, *, role="editor", billing_profile=True, balance=100):
    """A Free org (billing profile and credits as asked) and Studio opened by a member."""
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    orgs.project_create(session=session, actor=owner, org_id=org.id, name="Spring launch")
    if billing_profile:
        org.billing_profile_added_at = utcnow()
        session.add(org)
    if balance:
        credits.credits_grant(
            session=session,
            org_id=org.id,
            amount_millicredits=balance * 1000,
            idempotency_key=f"test-grant-{org.id}",
        )
    member = owner if role == "owner" else add_member(session, org, f"{role}@example.com", role)
    cookie = signed_in_cookie(session, member)
    session.commit()
    studio = page_state(StudioState, cookie=cookie, path=f"/org/{org.slug}/studio")
    asyncio.run(call(studio, "load"))
    return studio, org


def _codes(studio: StudioState) -> list[str]:
    return [blocker.code for blocker in studio.blockers]


def test_an_editor_opens_studio_and_sees_models_and_projects(session, page_state, call):
    studio, _ = _studio(session, page_state, call)

    assert studio.error == ""
    assert "Studio Local Text" in [m.name for m in studio.text_models]
    assert studio.selected_key == "local-text"
    assert studio.selected_name == "Studio Local Text"
    assert studio.projects and studio.project_id == studio.projects[0].id
    assert studio._can_run is True
    assert studio.blockers == []
    motion = next(m for m in studio.video_models if m.key == "local-video")
    assert motion.state == "locked" and motion.state_label == "Needs Scale"
    assert studio.history == []


def test_a_run_starts_a_generation_that_history_shows_queued(session, page_state, call):
    studio, org = _studio(session, page_state, call)

    result = asyncio.run(call(studio, "run", {"prompt": "Launch post for our spring shoes"}))

    assert result == StudioState.execute_pending  # the run itself goes on in the background
    assert studio.error == ""
    assert studio.running is True and studio.live_status == "queued"
    assert studio.history[0].public_id == studio.live_id
    assert studio.history[0].status == "queued"
    assert studio.history[0].prompt == "Launch post for our spring shoes"
    assert "credits held" in studio.history[0].credits_label
    row = session.exec(select(Generation).where(Generation.org_id == org.id)).one()
    assert row.public_id == studio.live_id and row.model_key == "local-text"

    again = asyncio.run(call(studio, "run", {"prompt": "Another one"}))
    assert again is not None  # a toast: one run at a time from this page
    assert len(session.exec(select(Generation)).all()) == 1


def test_a_viewer_may_browse_but_a_run_is_refused(session, page_state, call):
    studio, _ = _studio(session, page_state, call, role="viewer")
    assert studio._can_run is False
    assert "role_forbidden" in _codes(studio)

    result = asyncio.run(call(studio, "run", {"prompt": "Launch post"}))

    assert result is None
    assert studio.error == VIEWER_MESSAGE
    assert studio.running is False and studio.live_id == ""
    assert session.exec(select(Generation)).all() == []


def test_free_org_without_billing_profile_names_the_billing_blocker(session, page_state, call):
    studio, _ = _studio(session, page_state, call, billing_profile=False)

    billing = next(b for b in studio.blockers if b.code == "billing_required")
    assert billing.message.startswith(
        "The Free plan needs a billing profile before models can be used"
    )
    assert "Ask your organization's owner to add one in Billing." in billing.message
    assert billing.link_href.endswith("/billing")

    asyncio.run(call(studio, "run", {"prompt": "Launch post"}))
    assert studio.error_code == "billing_required"
    assert studio.error == billing.message
    assert "billing_required" in _codes(studio)
    assert session.exec(select(Generation)).all() == []


def test_picking_an_unknown_model_says_so(session, page_state, call):
    studio, _ = _studio(session, page_state, call)

    asyncio.run(call(studio, "pick_model", "no-such-model"))
    assert studio.error == MODEL_NOT_LISTED
    assert studio.selected_key == "local-text"

    asyncio.run(call(studio, "pick_model", ["local-image"]))
    assert studio.error == MODEL_NOT_LISTED

    asyncio.run(call(studio, "pick_model", "local-image"))
    assert studio.error == ""
    assert (studio.selected_key, studio.modality) == ("local-image", "image")


def test_picking_a_locked_model_opens_the_upgrade_offer(session, page_state, call):
    studio, _ = _studio(session, page_state, call)

    asyncio.run(call(studio, "pick_model", "local-video"))

    assert studio.upgrade_open is True
    assert studio.offer.plan_name == "Scale"
    assert studio.offer.owner_names == "Olivia Owner"
    assert studio.offer.is_owner is False
    assert studio.selected_key == "local-text"


@pytest.mark.parametrize("public_id", ["", "abc def", "../gen_x", 42, None, "gen_unknown123"])
def test_retry_of_a_malformed_or_unknown_run_is_not_found(session, page_state, call, public_id):
    studio, _ = _studio(session, page_state, call)

    asyncio.run(call(studio, "retry", public_id))

    assert studio.error == NOT_FOUND_RELOAD
    assert studio.running is False


def test_a_run_that_did_not_fail_cannot_be_retried(session, page_state, call):
    studio, _ = _studio(session, page_state, call)
    asyncio.run(call(studio, "run", {"prompt": "Launch post"}))
    queued = studio.live_id
    studio.running = False  # as if the background run had been left to the sweep

    asyncio.run(call(studio, "retry", queued))

    assert studio.error == f"Only failed runs can be retried; {queued} is queued."


@pytest.mark.parametrize(
    ("name", "value"),
    [("__class__", "x"), ("tone", "shouty"), ("seconds", "600"), (["tone"], "bold")],
)
def test_an_option_that_is_not_offered_is_refused_without_change(
    session, page_state, call, name, value
):
    studio, _ = _studio(session, page_state, call)
    before = (studio.tone, studio.length, studio.aspect, studio.seconds, studio.estimate_label)

    asyncio.run(call(studio, "set_option", name, value))

    assert studio.error == OPTION_NOT_OFFERED
    assert (studio.tone, studio.length, studio.aspect, studio.seconds, studio.estimate_label) == (
        before
    )


def test_an_offered_option_changes_the_run(session, page_state, call):
    studio, _ = _studio(session, page_state, call)

    asyncio.run(call(studio, "set_option", "length", "long"))

    assert studio.error == ""
    assert studio.length == "long"


def test_a_malformed_project_id_gets_a_message(session, page_state, call):
    studio, _ = _studio(session, page_state, call)
    chosen = studio.project_id

    asyncio.run(call(studio, "set_project", "abc"))
    assert studio.error == NOT_FOUND_RELOAD
    assert studio.project_id == chosen

    asyncio.run(call(studio, "set_project", "999999"))
    assert studio.error.startswith("This project does not exist or you do not have access to it.")
    assert studio.project_id == chosen


def test_a_long_prompt_is_bounded_and_a_run_names_the_limit(session, page_state, call):
    studio, _ = _studio(session, page_state, call)

    asyncio.run(call(studio, "set_prompt", "x" * 100_000))
    assert len(studio.prompt) == PROMPT_INPUT_CHARS

    asyncio.run(call(studio, "run", {"prompt": "y" * 100_000}))
    assert len(studio.prompt) == PROMPT_INPUT_CHARS
    assert studio.error == (
        f"The prompt is {PROMPT_INPUT_CHARS:,} characters; the limit is "
        f"{MAX_PROMPT_CHARS:,}. Shorten it and try again."
    )
    assert studio.running is False


def test_a_prompt_of_only_invisible_characters_is_refused_like_an_empty_one(
    session, page_state, call
):
    studio, _ = _studio(session, page_state, call)
    asyncio.run(call(studio, "run", {"prompt": "\u200b\u200b \ufeff"}))
    assert studio.error.startswith("Write a prompt first")
    assert studio.running is False
    assert session.exec(select(Generation)).all() == []


def test_the_prompt_counter_names_the_limit_and_how_far_over(session, page_state, call):
    studio, _ = _studio(session, page_state, call)
    asyncio.run(call(studio, "set_prompt", "abc"))
    assert studio.prompt_count_label == f"3 / {MAX_PROMPT_CHARS:,} characters"
    assert not studio.prompt_over_limit
    asyncio.run(call(studio, "set_prompt", "x" * (MAX_PROMPT_CHARS + 5)))
    assert studio.prompt_over_limit
    assert "5 over the limit" in studio.prompt_count_label


def test_history_pages_through_every_run_and_filters(session, page_state, call):
    studio, org = _studio(session, page_state, call, role="owner")
    assert studio.balance_label == "150 credits"  # 50 with the Free plan, 100 granted
    # The owner's runs: 45 succeeded ones, then one failed one about a launch.
    generation_owner = session.exec(select(Generation)).first()
    assert generation_owner is None
    owner_id = studio.person_choices[0].value
    for i in range(45):
        session.add(
            Generation(
                public_id=f"gen_page{i:03d}",
                org_id=org.id,
                user_id=int(owner_id),
                model_key="local-text",
                modality="text",
                prompt=f"Post number {i}",
                status="succeeded",
                params={"tone": "friendly", "length": "short"},
            )
        )
    session.add(
        Generation(
            public_id="gen_launch01",
            org_id=org.id,
            user_id=int(owner_id),
            model_key="local-text",
            modality="text",
            prompt="Spring LAUNCH teaser",
            status="failed",
            params={"tone": "friendly", "length": "short"},
        )
    )
    session.commit()
    asyncio.run(call(studio, "load"))
    assert len(studio.history) == 20 and studio.history_has_more
    asyncio.run(call(studio, "history_older"))
    asyncio.run(call(studio, "history_older"))
    assert studio.history_page == 2 and len(studio.history) == 6
    assert not studio.history_has_more
    assert studio.history_page_label == "Runs 41-46"
    asyncio.run(call(studio, "history_older"))  # nothing older: stays
    assert studio.history_page == 2
    asyncio.run(call(studio, "history_newer"))
    assert studio.history_page == 1

    asyncio.run(call(studio, "filter_history", {"status": "failed", "text": "launch"}))
    assert [item.prompt for item in studio.history] == ["Spring LAUNCH teaser"]
    assert studio.history_page == 0
    asyncio.run(call(studio, "filter_history", {"person": owner_id, "model": "local-text"}))
    assert len(studio.history) == 20
    asyncio.run(call(studio, "filter_history", {"status": "hacked"}))
    assert studio.error.startswith("That filter value is not offered")
    asyncio.run(call(studio, "filter_history", {"text": "100%_"}))
    assert studio.history == []  # % and _ are matched as text, not as wildcards
    asyncio.run(call(studio, "clear_history_filters"))
    assert studio.filter_text == "" and len(studio.history) == 20


def test_any_finished_run_can_run_again(session, page_state, call):
    studio, org = _studio(session, page_state, call)
    asyncio.run(call(studio, "run", {"prompt": "Launch post"}))
    first = studio.live_id
    row = session.exec(select(Generation).where(Generation.public_id == first)).one()
    row.status = "succeeded"
    session.add(row)
    session.commit()
    studio.running = False
    asyncio.run(call(studio, "load"))
    item = next(i for i in studio.history if i.public_id == first)
    assert item.can_run_again and not item.can_retry
    asyncio.run(call(studio, "run_again", first))
    assert studio.error == "" and studio.live_id != first
    again = session.exec(select(Generation).where(Generation.public_id == studio.live_id)).one()
    assert again.prompt == "Launch post" and again.retry_of_id is None
    asyncio.run(call(studio, "run_again", "nope"))
