"""The org-page skeleton itself (state/org_page.py), through a small page State of its own.

`_ProbeState` is a page like any other: it shows the organization's name, refreshes it after
every action, and offers handlers that succeed, hit a plan limit, need a role, take an id from
the browser, or change the database and are then refused.
"""

from __future__ import annotations

import asyncio

import reflex as rx
from sqlmodel import Session

from models import Organization
from services import policy
from services.errors import PlanLimitReached, ValidationFailed
from state.org_page import NOT_FOUND_RELOAD, Acting, OrgPageState, bounded, browser_id
from tests.factories import add_member, make_org, make_user, signed_in_cookie

SESSION_ENDED = "Your session has ended. Sign in again."
NOT_A_MEMBER = "There is no organization at this address that you belong to."
TEAM_MANAGE_REFUSED = (
    "Only owners and admins can invite, remove or change members. "
    "Ask one of them to make the change."
)


class _ProbeState(OrgPageState, rx.State):
    org_name: str = ""
    refreshes: int = 0
    last_id: int = 0

    def _refresh(self, acting: Acting) -> None:
        self.org_name = acting.org.name
        self.refreshes += 1

    @rx.event
    async def load(self):
        await self._load()

    @rx.event
    async def rename(self, name: str):
        def work(acting: Acting) -> str:
            acting.org.name = bounded(name, 80)
            acting.session.add(acting.org)
            return acting.org.name

        await self._act(policy.Action.team_manage, work, success=lambda new: f"Renamed to {new}.")

    @rx.event
    async def rename_then_refuse(self, name: str):
        def work(acting: Acting) -> None:
            acting.org.name = name
            acting.session.add(acting.org)
            acting.session.flush()
            raise ValidationFailed("That name cannot be used. Choose another.", field="name")

        await self._act(policy.Action.team_manage, work, success="Renamed.")

    @rx.event
    async def hit_limit(self):
        def work(acting: Acting) -> None:
            raise PlanLimitReached(
                "Seat limit reached (5 of 5 on Free). Upgrade in Billing to invite more.",
                limit="seats",
                used=5,
                allowed=5,
                plan="free",
            )

        await self._act(policy.Action.org_view, work)

    @rx.event
    async def pick(self, item_id: str):
        def work(acting: Acting) -> int:
            self.last_id = browser_id(item_id)
            return self.last_id

        await self._act(policy.Action.org_view, work, success="Picked.")


def _org_name(engine, org_id: int) -> str:
    with Session(engine) as fresh:
        return fresh.get(Organization, org_id).name


def _setup(session):
    owner = make_user(session, "olivia@example.com", "Olivia Owner")
    org = make_org(session, owner)
    viewer = add_member(session, org, "victor@example.com", "viewer")
    session.commit()
    return owner, org, viewer


def _probe(session, page_state, user, org, path_org_slug: str | None = None):
    cookie = signed_in_cookie(session, user) if user is not None else ""
    session.commit()
    return page_state(_ProbeState, cookie=cookie, path=f"/org/{path_org_slug or org.slug}/probe")


def test_signed_out_caller_sees_nothing_but_the_session_ended(session, page_state, call):
    _owner, org, _viewer = _setup(session)
    probe = _probe(session, page_state, None, org)

    asyncio.run(call(probe, "load"))
    assert probe.error == SESSION_ENDED
    assert probe.org_name == "" and probe.refreshes == 0

    asyncio.run(call(probe, "rename", "Hijacked"))
    assert probe.error == SESSION_ENDED
    assert probe.notice == ""
    assert probe.org_name == ""


def test_non_member_is_told_there_is_no_such_organization(session, page_state, call, engine):
    _owner, org, _viewer = _setup(session)
    stranger = make_user(session, "sam@example.com", "Sam Stranger")
    probe = _probe(session, page_state, stranger, org)

    asyncio.run(call(probe, "load"))
    assert probe.error == NOT_A_MEMBER
    assert probe.error_code == "not_found"
    assert probe.org_name == ""

    asyncio.run(call(probe, "rename", "Hijacked"))
    assert probe.error == NOT_A_MEMBER
    assert _org_name(engine, org.id) == "Acme Marketing"


def test_unknown_address_is_not_found(session, page_state, call):
    owner, org, _viewer = _setup(session)
    probe = _probe(session, page_state, owner, org, path_org_slug="no-such-org")
    asyncio.run(call(probe, "load"))
    assert probe.error != ""
    assert probe.org_name == ""


def test_load_shows_the_page_and_clears_old_messages(session, page_state, call):
    _owner, org, viewer = _setup(session)
    probe = _probe(session, page_state, viewer, org)
    probe.error = "an old message"
    asyncio.run(call(probe, "load"))
    assert probe.error == ""
    assert probe.org_name == "Acme Marketing"
    assert probe.refreshes == 1


def test_policy_refusal_shows_the_policy_message_and_refreshes(session, page_state, call, engine):
    _owner, org, viewer = _setup(session)
    probe = _probe(session, page_state, viewer, org)
    asyncio.run(call(probe, "load"))

    asyncio.run(call(probe, "rename", "Viewer's choice"))
    assert probe.error == TEAM_MANAGE_REFUSED
    assert probe.error_code == "role_forbidden"
    assert probe.notice == ""
    assert probe.refreshes == 2  # the page shows the current truth after a refusal
    assert _org_name(engine, org.id) == "Acme Marketing"


def test_success_commits_says_so_and_refreshes(session, page_state, call, engine):
    owner, org, _viewer = _setup(session)
    probe = _probe(session, page_state, owner, org)
    asyncio.run(call(probe, "load"))

    asyncio.run(call(probe, "rename", "Acme Growth"))
    assert probe.error == ""
    assert probe.notice == "Renamed to Acme Growth."
    assert probe.org_name == "Acme Growth"
    assert _org_name(engine, org.id) == "Acme Growth"


def test_refused_work_is_rolled_back(session, page_state, call, engine):
    owner, org, _viewer = _setup(session)
    probe = _probe(session, page_state, owner, org)
    asyncio.run(call(probe, "load"))

    asyncio.run(call(probe, "rename_then_refuse", "Half done"))
    assert probe.error == "That name cannot be used. Choose another."
    assert probe.error_code == "validation_failed"
    assert probe.notice == ""
    assert _org_name(engine, org.id) == "Acme Marketing"
    assert probe.org_name == "Acme Marketing"


def test_plan_limit_becomes_a_limit_notice_not_an_error(session, page_state, call):
    owner, org, _viewer = _setup(session)
    probe = _probe(session, page_state, owner, org)
    asyncio.run(call(probe, "load"))

    asyncio.run(call(probe, "hit_limit"))
    assert probe.error == ""
    assert probe.error_code == "plan_limit_reached"
    notice = probe.limit_notice
    assert (notice.limit, notice.label, notice.used, notice.allowed) == ("seats", "Seat", 5, 5)
    assert notice.plan_name == "Free"
    assert notice.message.startswith("Seat limit reached (5 of 5 on Free)")

    # The next action starts from a clean slate.
    asyncio.run(call(probe, "pick", "7"))
    assert probe.limit_notice.limit == ""
    assert probe.error_code == ""


def test_malformed_id_from_the_browser_is_not_found(session, page_state, call):
    _owner, org, viewer = _setup(session)
    probe = _probe(session, page_state, viewer, org)
    asyncio.run(call(probe, "load"))

    for malformed in ("abc", "", "-3", "0", "1.5", None, True, "1; drop table"):
        asyncio.run(call(probe, "pick", malformed))
        assert probe.error == NOT_FOUND_RELOAD, malformed
        assert probe.notice == ""

    asyncio.run(call(probe, "pick", " 42 "))
    assert probe.error == ""
    assert probe.notice == "Picked."
    assert probe.last_id == 42


def test_bounded_keeps_setter_text_short_and_a_string():
    assert bounded("x" * 500, 80) == "x" * 80
    assert bounded(None, 10) == ""
    assert bounded(12345, 3) == "123"
