"""Studio events do no database work they don't need, and a cached identity never outlives a
revoked session or a removed membership where it matters.

Queries are counted with a SQLAlchemy listener on the process engine (counts, not timing).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select

from core import db
from core.clock import freeze, utcnow
from core.settings import reset_settings_cache
from models import Generation, OrgSecurity, Project, Subscription, User, UserSession
from services import auth, credits, generations, orgs
from state.session import IDENTITY_REVALIDATE_SECONDS, SessionState
from state.studio import StudioState
from tests.factories import add_member, make_org, make_user, signed_in_cookie

# Measured: opening Studio (its load, which does the organization's load too, in one unit of
# work) issues 14 statements, BEGIN included: the facts who acts rests on, the session and its
# person, the person's organizations, 2FA, the subscription, the plans, then projects, models,
# credits in one statement, runs in progress in one, one joined page of history with its names,
# its assets in one batch, the team. Opened again with the same cookie within seconds, the
# facts replace the four statements of who acts. The bound leaves a little room; what matters
# is that it does not grow with history (the test after next).
PAGE_OPEN_MAX_QUERIES = 15
REOPEN_MAX_QUERIES = 10
LOAD_ORG_MAX_QUERIES = 7


@pytest.fixture(autouse=True)
def _local_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path / "assets"))
    monkeypatch.delenv("STORAGE_BUCKET", raising=False)
    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "1000")
    monkeypatch.setenv("CONCURRENT_RUNS_PER_ORG", "1000")
    reset_settings_cache()


@contextlib.contextmanager
def counted(engine):
    statements: list[str] = []

    def before(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _org_with_history(session, runs: int):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    project = orgs.project_create(session=session, actor=owner, org_id=org.id, name="Launch")
    org.billing_profile_added_at = utcnow()
    session.add(org)
    credits.credits_grant(
        session=session, org_id=org.id, amount_millicredits=10**9, idempotency_key="grant"
    )
    editor = add_member(session, org, "edward@example.com", "editor")
    session.commit()
    for index in range(runs):
        generations.generation_start(
            session=session,
            user=editor,
            org_id=org.id,
            model_key="local-image" if index % 2 else "local-text",
            prompt=f"History item {index}",
            project_id=project.id,
        )
        session.commit()
    cookie = signed_in_cookie(session, editor)
    session.commit()
    return org, owner, editor, cookie


def _more_runs(session, org, editor, count: int) -> None:
    project_id = session.exec(select(Generation.project_id)).first()
    session.commit()
    for index in range(count):
        generations.generation_start(
            session=session,
            user=editor,
            org_id=org.id,
            model_key="local-text",
            prompt=f"More {index}",
            project_id=project_id,
        )
        session.commit()


def _flat(statements: list[str]) -> list[str]:
    return [" ".join(statement.split()) for statement in statements]


def _session_reads(flat: list[str]) -> list[str]:
    """The full resolution's read of the cookie's session and person (`session_resolve`)."""
    return [s for s in flat if "FROM user_sessions JOIN users" in s and " AS session_id" not in s]


def _fact_reads(flat: list[str]) -> list[str]:
    """The one read of what who acts rests on (`auth.identity_facts`)."""
    return [s for s in flat if " AS session_id" in s]


def _session_reads_on_opening(page_state, call, engine, org, cookie) -> int:
    """Open Studio in a new tab; how often it read the cookie's session and person."""
    tab = page_state(StudioState, cookie=cookie, path=f"/org/{org.slug}/studio")
    with counted(engine) as statements:
        asyncio.run(call(tab, "load"))
    assert tab.error == ""
    return len(_session_reads(_flat(statements)))


def _open(page_state, call, engine, org, cookie):
    studio = page_state(StudioState, cookie=cookie, path=f"/org/{org.slug}/studio")
    with counted(engine) as statements:
        asyncio.run(call(studio, "load"))
    assert studio.error == ""
    return studio, len(statements)


@pytest.mark.parametrize("runs", [2, 30])
def test_opening_studio_issues_a_bounded_number_of_queries(session, engine, page_state, call, runs):
    org, _, _, cookie = _org_with_history(session, runs)

    studio, opened = _open(page_state, call, engine, org, cookie)

    assert len(studio.history) == min(runs, 20)
    assert opened <= PAGE_OPEN_MAX_QUERIES, opened


def test_opening_studio_resolves_who_acts_once(session, engine, page_state, call):
    """Studio's on_load is its load alone: the organization's load (SessionState.load_org's
    work) and the page's own reads run in one event and one unit of work, and who acts is
    resolved once."""
    org, _, _, cookie = _org_with_history(session, 3)

    studio = page_state(StudioState, cookie=cookie, path=f"/org/{org.slug}/studio")
    with counted(engine) as statements:
        asyncio.run(call(studio, "load"))

    tab = asyncio.run(studio.get_state(SessionState))
    assert tab.org_not_found is False and tab.org_name == org.name and studio.error == ""
    flat = _flat(statements)
    assert len(_session_reads(flat)) == 1 and len(_fact_reads(flat)) == 1
    # The membership comes with the person's organizations, not from a lookup of its own.
    assert [s for s in flat if "memberships.org_id = ? AND memberships.user_id = ?" in s] == []
    # One unit of work: one transaction, and what both parts ask (the plans) is read once.
    assert len([s for s in flat if s.startswith("BEGIN")]) == 1
    assert len([s for s in flat if "FROM plans" in s]) == 1


def test_a_tab_whose_session_ended_is_sent_to_sign_in_and_forgets_the_page(
    session, engine, page_state, call
):
    org, _, editor, cookie = _org_with_history(session, 2)
    studio, _ = _open(page_state, call, engine, org, cookie)
    assert len(studio.history) == 2 and studio.text_models
    _revoke(session, editor)
    session.commit()

    sent = asyncio.run(call(studio, "load"))

    assert "/sign-in" in str(sent)
    assert studio.history == [] and studio.text_models == [] and studio.balance_label == ""


def _settings_tab(page_state, org, cookie):
    """Settings: a page that keeps [SessionState.load_org, its loads] (it has two)."""
    from state.settings import SecurityState

    security = page_state(SecurityState, cookie=cookie, path=f"/org/{org.slug}/settings")
    return security, asyncio.run(security.get_state(SessionState))


def test_a_page_load_reads_who_acts_from_load_org_just_before(session, engine, page_state, call):
    """A page whose on_load is [SessionState.load_org, its load]: the load uses who acts as
    load_org resolved it a moment before."""
    org, _, _, cookie = _org_with_history(session, 0)
    security, tab = _settings_tab(page_state, org, cookie)
    with counted(engine) as org_statements:
        asyncio.run(call(tab, "load_org"))
    with counted(engine) as load_statements:
        asyncio.run(call(security, "load"))

    assert len(org_statements) <= LOAD_ORG_MAX_QUERIES, len(org_statements)
    identity = (
        "FROM user_sessions JOIN users",  # the cookie's session (the page lists sessions too)
        "FROM org_security",
        "memberships.org_id = ? AND memberships.user_id = ?",
    )
    flat = [" ".join(statement.split()) for statement in load_statements]
    assert [s for s in flat if any(part in s for part in identity)] == []
    assert security.error == "" and len(security.sessions) == 1


def test_a_page_load_past_the_window_resolves_who_acts_again(session, engine, page_state, call):
    """The hand-over is for the load that follows at once: one that comes later (a slow page,
    a tab left open) reads the session again, so a revoked session is refused."""
    org, _, editor, cookie = _org_with_history(session, 0)
    start = utcnow()
    freeze(start)
    security, tab = _settings_tab(page_state, org, cookie)
    asyncio.run(call(tab, "load_org"))
    _revoke(session, editor)
    session.commit()

    freeze(start + timedelta(seconds=IDENTITY_REVALIDATE_SECONDS + 0.5))
    asyncio.run(call(security, "load"))

    assert security.error == "Your session has ended. Sign in again."
    assert security.sessions == []


def test_an_org_page_opens_in_one_event_and_one_unit_of_work(session, engine, page_state, call):
    """Team's on_load is its load alone: the header, the organization and the page are read
    in one transaction, and who acts is resolved once; a signed-out tab is sent to sign-in."""
    from state.team import TeamState

    org, _, _, cookie = _org_with_history(session, 0)
    team = page_state(TeamState, cookie=cookie, path=f"/org/{org.slug}/team")
    with counted(engine) as statements:
        assert asyncio.run(call(team, "load")) is None

    tab = asyncio.run(team.get_state(SessionState))
    assert tab.org_name == org.name and team.error == "" and len(team.members) == 2
    flat = _flat(statements)
    assert len([s for s in flat if s.startswith("BEGIN")]) == 1
    assert len(_session_reads(flat)) == 1 and len(_fact_reads(flat)) == 1

    signed_out = page_state(TeamState, cookie="", path=f"/org/{org.slug}/team")
    assert "/sign-in" in str(asyncio.run(call(signed_out, "load")))
    assert signed_out.members == []


def test_page_open_costs_the_same_with_a_short_or_a_long_history(session, engine, page_state, call):
    org, owner, editor, cookie = _org_with_history(session, 3)
    start = utcnow()
    freeze(start)
    _, few = _open(page_state, call, engine, org, cookie)
    _, few_again = _open(page_state, call, engine, org, cookie)
    _more_runs(session, org, editor, 30)

    freeze(start + timedelta(seconds=IDENTITY_REVALIDATE_SECONDS + 0.5))
    _, many = _open(page_state, call, engine, org, cookie)
    _, many_again = _open(page_state, call, engine, org, cookie)

    assert (many, many_again) == (few, few_again)
    assert few_again <= REOPEN_MAX_QUERIES < few, (few, few_again)


def test_an_org_page_opened_again_within_seconds_reads_who_acts_in_one_statement(
    session, engine, page_state, call
):
    """Another tab, or another page of the organization, with the same cookie: who acts is
    one read of the facts it rests on, and the header shows what the first opening showed."""
    from state.team import TeamState

    org, _, _, cookie = _org_with_history(session, 2)
    first, full = _open(page_state, call, engine, org, cookie)
    shown = asyncio.run(first.get_state(SessionState))

    again, reopened = _open(page_state, call, engine, org, cookie)
    team = page_state(TeamState, cookie=cookie, path=f"/org/{org.slug}/team")
    with counted(engine) as team_statements:
        asyncio.run(call(team, "load"))

    tab = asyncio.run(again.get_state(SessionState))
    header = (
        "user_name",
        "user_email",
        "org_name",
        "org_slug",
        "_org_role",
        "allowed_actions",
        "orgs",
    )
    assert [getattr(tab, name) for name in header] == [getattr(shown, name) for name in header]
    assert "tool_run" in tab.allowed_actions and tab.org_not_found is False
    assert len(again.history) == 2 and again.text_models and again.error == ""
    assert reopened <= full - 3, (full, reopened)
    flat = _flat(team_statements)
    assert _session_reads(flat) == [] and len(_fact_reads(flat)) == 1
    assert team.error == "" and len(team.members) == 2


def _lower_to_viewer(session, org, owner, editor):
    orgs.member_change_role(
        session=session, actor=owner, org_id=org.id, user_id=editor.id, role="viewer"
    )


def _remove(session, org, owner, editor):
    orgs.member_remove(session=session, actor=owner, org_id=org.id, user_id=editor.id)


def _rename(session, org, owner, editor):
    orgs.org_rename(session=session, actor=owner, org_id=org.id, name="Renamed Marketing")


def _require_2fa(session, org, owner, editor):
    session.add(OrgSecurity(org_id=org.id, require_2fa=True))


def _lapse(session, org, owner, editor):
    subscription = session.exec(select(Subscription).where(Subscription.org_id == org.id)).one()
    subscription.status = "canceled"
    session.add(subscription)


def _sign_out_elsewhere(session, org, owner, editor):
    _revoke(session, editor)


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        (_sign_out_elsewhere, lambda tab, sent: "/sign-in" in str(sent)),
        (_remove, lambda tab, sent: tab.org_not_found and tab.allowed_actions == []),
        (_lower_to_viewer, lambda tab, sent: "tool_run" not in tab.allowed_actions),
        (_rename, lambda tab, sent: tab.org_name == "Renamed Marketing"),
        (_require_2fa, lambda tab, sent: "/settings" in str(sent)),
        (_lapse, lambda tab, sent: "tool_run" not in tab.allowed_actions),
    ],
    ids=["signed-out", "removed", "viewer", "renamed", "2fa-required", "lapsed"],
)
def test_an_org_page_opened_again_within_seconds_sees_at_once_what_changed(
    session, engine, page_state, call, change, seen
):
    org, owner, editor, cookie = _org_with_history(session, 0)
    start = utcnow()
    freeze(start)
    _open(page_state, call, engine, org, cookie)
    change(session, org, owner, editor)
    session.commit()

    freeze(start + timedelta(seconds=1))
    again = page_state(StudioState, cookie=cookie, path=f"/org/{org.slug}/studio")
    sent = asyncio.run(call(again, "load"))

    assert seen(asyncio.run(again.get_state(SessionState)), sent)


def test_an_org_page_opened_again_after_the_window_resolves_who_acts_anew(
    session, engine, page_state, call
):
    org, _, _, cookie = _org_with_history(session, 0)
    start = utcnow()
    freeze(start)
    _open(page_state, call, engine, org, cookie)

    freeze(start + timedelta(seconds=IDENTITY_REVALIDATE_SECONDS + 0.5))
    assert _session_reads_on_opening(page_state, call, engine, org, cookie) == 1


def test_a_scoped_editor_is_resolved_anew_on_every_opening(session, engine, page_state, call):
    """Their approved projects are not among the facts: their openings are never re-used."""
    org, owner, editor, cookie = _org_with_history(session, 0)
    project = session.exec(select(Project).where(Project.org_id == org.id)).one()
    orgs.member_change_role(
        session=session,
        actor=owner,
        org_id=org.id,
        user_id=editor.id,
        role="editor",
        project_ids=[project.id],
    )
    session.commit()
    _open(page_state, call, engine, org, cookie)

    assert _session_reads_on_opening(page_state, call, engine, org, cookie) == 1


def test_picking_a_model_or_an_option_touches_no_database(session, engine, page_state, call):
    org, _, _, cookie = _org_with_history(session, 3)
    studio, _ = _open(page_state, call, engine, org, cookie)

    with counted(engine) as statements:
        asyncio.run(call(studio, "pick_model", "local-image"))
        asyncio.run(call(studio, "set_option", "aspect", "16:9"))
        asyncio.run(call(studio, "pick_model", "local-text"))
        asyncio.run(call(studio, "set_option", "length", "long"))
        asyncio.run(call(studio, "check_blockers"))

    assert statements == []
    assert studio.selected_key == "local-text" and studio.length == "long"
    assert studio.blockers == [] and studio.error == ""
    assert studio.estimate_label.startswith("About ")


def test_a_pick_sends_only_what_it_changed(session, engine, page_state, call):
    """Reflex sends every var a handler assigns, equal or not: a pick assigns its selection and
    estimate, not the messages and blockers that were already clear; a message that was on
    the page still goes."""
    org, _, _, cookie = _org_with_history(session, 3)
    studio, _ = _open(page_state, call, engine, org, cookie)
    studio.dirty_vars.clear()

    asyncio.run(call(studio, "pick_model", "local-image"))

    assert studio.dirty_vars == {"selected_key", "selected_name", "modality", "estimate_label"}

    studio.error, studio.error_code = "Something went wrong.", "some_code"
    studio.dirty_vars.clear()
    asyncio.run(call(studio, "pick_model", "local-text"))

    assert studio.error == "" and studio.error_code == ""
    assert {"error", "error_code"} <= studio.dirty_vars
    assert not {"notice", "limit_notice", "blockers"} & studio.dirty_vars


def test_a_pick_shows_the_same_blockers_a_fresh_read_would(session, engine, page_state, call):
    """For every model in the picker, the blockers computed in memory are the service's own."""
    org, _, editor, cookie = _org_with_history(session, 0)
    org.monthly_spend_cap_credits = 1  # a cap every run passes: a blocker read at page open
    session.add(org)
    session.commit()
    studio, _ = _open(page_state, call, engine, org, cookie)

    for model in [*studio.text_models, *studio.image_models, *studio.video_models]:
        studio.selected_key, studio.modality = model.key, model.modality
        studio._show_blockers()
        expected = generations.generation_blockers(
            session=session,
            user=editor,
            org_id=org.id,
            model_key=model.key,
            project_id=int(studio.project_id),
            params=studio._params(),
        )
        session.commit()
        assert [(b.code, b.message) for b in studio.blockers] == [
            (b.code, b.message) for b in expected
        ], model.key
    assert "spend_cap_reached" in [b.code for b in studio.blockers]


def _revoke(session, user):
    row = session.exec(select(UserSession).where(UserSession.user_id == user.id)).first()
    auth.session_revoke(session=session, user_id=user.id, session_id=row.id)


def test_a_revoked_session_is_refused_at_run_at_once_and_at_reads_within_seconds(
    session, engine, page_state, call
):
    org, _, editor, cookie = _org_with_history(session, 0)
    start = utcnow()
    freeze(start)
    studio, _ = _open(page_state, call, engine, org, cookie)
    _revoke(session, editor)

    asyncio.run(call(studio, "run", {"prompt": "A poster for the launch"}))

    assert studio.error == "Your session has ended. Sign in again."
    assert studio.running is False
    assert session.exec(select(Generation)).all() == []
    session.commit()

    # A read within the window may still answer from memory; past it, it is refused too.
    freeze(start + timedelta(seconds=IDENTITY_REVALIDATE_SECONDS + 0.5))
    asyncio.run(call(studio, "pick_model", "local-image"))
    assert studio.error == "Your session has ended. Sign in again."
    assert studio.selected_key == "local-text"
    asyncio.run(call(studio, "history_newer"))
    assert studio.error == "Your session has ended. Sign in again."


def test_a_removed_member_is_refused_at_run_at_once_and_at_reads_within_seconds(
    session, engine, page_state, call
):
    org, owner, editor, cookie = _org_with_history(session, 1)
    start = utcnow()
    freeze(start)
    studio, _ = _open(page_state, call, engine, org, cookie)
    assert len(studio.history) == 1
    orgs.member_remove(session=session, actor=owner, org_id=org.id, user_id=editor.id)
    session.commit()

    asyncio.run(call(studio, "run", {"prompt": "A poster for the launch"}))

    assert "belong to" in studio.error
    assert len(session.exec(select(Generation)).all()) == 1
    session.commit()

    freeze(start + timedelta(seconds=IDENTITY_REVALIDATE_SECONDS + 0.5))
    asyncio.run(call(studio, "set_option", "length", "short"))
    assert "belong to" in studio.error
    assert studio.length == "medium"


def test_reads_within_the_window_resolve_identity_once(session, engine, page_state, call):
    org, _, _, cookie = _org_with_history(session, 2)
    start = utcnow()
    freeze(start)
    studio, _ = _open(page_state, call, engine, org, cookie)
    with counted(engine) as within:
        asyncio.run(call(studio, "history_newer"))
    freeze(start + timedelta(seconds=IDENTITY_REVALIDATE_SECONDS + 0.5))
    with counted(engine) as after:
        asyncio.run(call(studio, "history_newer"))

    assert not any("user_session" in statement for statement in within)
    assert any("user_session" in statement for statement in after)
    assert len(studio.history) == 2 and studio.error == ""


def test_a_run_refreshes_what_the_next_pick_shows(session, engine, page_state, call, monkeypatch):
    """One run per person: once the page has followed the run it started (the next follow
    step), a pick from memory names the run in progress."""
    org, _, _, cookie = _org_with_history(session, 0)
    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "1")
    reset_settings_cache()
    studio, _ = _open(page_state, call, engine, org, cookie)

    with counted(engine) as run_statements:
        asyncio.run(call(studio, "run", {"prompt": "A poster for the launch"}))
    assert studio.error == "" and studio.running is True
    assert run_statements  # Run is where everything is checked against the database
    asyncio.run(studio._show_current(everything=False))  # what a follow step does

    with counted(engine) as statements:
        asyncio.run(call(studio, "pick_model", "local-image"))
    assert statements == []
    assert "concurrent_run_limit" in [b.code for b in studio.blockers]


def test_what_the_page_keeps_between_events_survives_a_shared_state_manager(
    session, engine, page_state, call
):
    """With Redis, a state is serialized between events: the kept context and identity too."""
    org, _, editor, cookie = _org_with_history(session, 2)
    editor.password_hash = "not-kept"
    session.add(editor)
    session.commit()
    studio, _ = _open(page_state, call, engine, org, cookie)
    tab = asyncio.run(studio.get_state(SessionState))
    assert tab._resolved is not None and studio._blocker_context is not None

    restored = type(studio)._deserialize(studio._serialize())
    restored_tab = type(tab)._deserialize(tab._serialize())

    assert restored_tab._resolved == tab._resolved
    assert restored._blocker_context == studio._blocker_context
    assert "password_hash" not in tab._resolved.user  # no secret is kept between events


def test_a_cached_identity_reads_a_left_out_secret_column_from_the_database(
    session, engine, page_state, call
):
    org, _, editor, cookie = _org_with_history(session, 0)
    editor.password_hash = "stored-hash"
    session.add(editor)
    session.commit()
    studio, _ = _open(page_state, call, engine, org, cookie)

    async def acting_now():
        with db.new_session() as fresh:
            acting = await studio._acting(fresh, studio._view_action())
            return acting.user.password_hash, acting.user.email, type(acting.user)

    assert asyncio.run(acting_now()) == ("stored-hash", editor.email, User)


# Measured: Run issues 15 statements on SQLite, BEGIN included (identity re-checked from the
# database in 3, the run-start check read once in 6, the brand kit, the insert, the hold in 2:
# the checked insert of its entry and the balance's update, the balance). The history is not
# re-read: the new run goes on top of what the page shows.
RUN_MAX_QUERIES = 16


def _run(studio, call, engine, prompt: str) -> int:
    with counted(engine) as statements:
        asyncio.run(call(studio, "run", {"prompt": prompt}))
    assert studio.error == "" and studio.running is True
    return len(statements)


def _fresh_history(page_state, call, org, cookie) -> list:
    fresh = page_state(StudioState, cookie=cookie, path=f"/org/{org.slug}/studio")
    asyncio.run(call(fresh, "load"))
    return fresh


def test_run_issues_a_bounded_number_of_queries_whatever_the_history(
    session, engine, page_state, call
):
    org, _, editor, cookie = _org_with_history(session, 2)
    studio, _ = _open(page_state, call, engine, org, cookie)
    short = _run(studio, call, engine, "A poster for the launch")
    _more_runs(session, org, editor, 30)

    studio, _ = _open(page_state, call, engine, org, cookie)
    long = _run(studio, call, engine, "A second poster")

    assert short <= RUN_MAX_QUERIES, short
    assert long == short


def test_a_new_run_shows_on_top_as_a_fresh_read_of_history_shows_it(
    session, engine, page_state, call
):
    org, _, _, cookie = _org_with_history(session, 25)
    studio, _ = _open(page_state, call, engine, org, cookie)
    assert studio.history_has_more is True

    _run(studio, call, engine, "A poster for the launch")

    fresh = _fresh_history(page_state, call, org, cookie)
    assert studio.history == fresh.history  # the new run on top, the oldest one off the page
    assert studio.history[0].prompt == "A poster for the launch"
    assert studio.history[0].status == "queued" and studio.history[0].person == "Edward"
    assert studio.history_has_more is True
    assert studio.balance_label == fresh.balance_label


def test_a_new_run_the_filters_leave_out_is_not_added_to_history(session, engine, page_state, call):
    org, _, _, cookie = _org_with_history(session, 3)
    studio, _ = _open(page_state, call, engine, org, cookie)
    asyncio.run(call(studio, "filter_history", {"text": "History item 1"}))
    assert [item.prompt for item in studio.history] == ["History item 1"]
    before = studio.balance_label

    _run(studio, call, engine, "A poster for the launch")

    assert [item.prompt for item in studio.history] == ["History item 1"]
    assert studio.balance_label != before  # the hold is taken from the balance shown

    asyncio.run(call(studio, "clear_history_filters"))
    assert studio.history[0].prompt == "A poster for the launch"


def test_an_idle_tab_looks_with_one_statement_and_re_reads_only_when_something_moved(
    session, engine, page_state, call
):
    """With no run in progress on the page, a follow step asks one question (a new run? a
    balance movement?) and reads history again only when the answer changed."""
    org, _, editor, cookie = _org_with_history(session, 0)
    studio, _ = _open(page_state, call, engine, org, cookie)
    assert studio._runs_moved() is True  # the first look has nothing to compare with

    with counted(engine) as idle:
        assert studio._runs_moved() is False
    assert len([s for s in idle if not s.startswith("BEGIN")]) == 1

    generations.generation_start(  # a run started elsewhere (another tab, the API)
        session=session, user=editor, org_id=org.id, model_key="local-text", prompt="Elsewhere"
    )
    session.commit()
    assert studio._runs_moved() is True
    assert studio._runs_moved() is False

    credits.credits_grant(  # a top-up
        session=session, org_id=org.id, amount_millicredits=5000, idempotency_key="top-up"
    )
    session.commit()
    assert studio._runs_moved() is True
    assert studio._runs_moved() is False


def test_a_re_read_that_finds_nothing_new_sends_no_history(session, engine, page_state, call):
    """While a run is followed the page re-reads history every second: what did not change is
    not sent again (nor redrawn); a change is."""
    org, _, editor, cookie = _org_with_history(session, 4)
    studio, _ = _open(page_state, call, engine, org, cookie)
    shown = list(studio.history)
    studio._clean()

    asyncio.run(studio._show_current(everything=False))

    assert not {"history", "balance_label"} & studio.dirty_vars and studio.history == shown
    generations.generation_start(  # a run started elsewhere (another tab, the API)
        session=session, user=editor, org_id=org.id, model_key="local-text", prompt="Elsewhere"
    )
    session.commit()
    asyncio.run(studio._show_current(everything=False))
    assert "history" in studio.dirty_vars
    assert [item.prompt for item in studio.history][:2] == ["Elsewhere", shown[0].prompt]


def test_the_openings_kept_for_re_use_are_bounded(session, engine, page_state, call, monkeypatch):
    import state.session as session_module

    monkeypatch.setattr(session_module, "_OPENED_MAX", 2)
    monkeypatch.setattr(session_module, "_OPENED", {})
    org, _, editor, cookie = _org_with_history(session, 0)
    cookies = [cookie] + [signed_in_cookie(session, editor) for _ in range(3)]
    session.commit()

    for each in cookies:
        _open(page_state, call, engine, org, each)

    assert len(session_module._OPENED) <= 2
    assert _session_reads_on_opening(page_state, call, engine, org, cookies[-1]) == 0
