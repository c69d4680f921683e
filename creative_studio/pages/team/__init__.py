"""/org/<slug>/team: members and roles, invitations, projects, and the organization itself.

The page only assembles its sections; each card is a module of this package, and everything
they show or do lives in `state/team.py`.
"""

from __future__ import annotations

import reflex as rx

from core import routes
from creative_studio.layout import app_shell
from creative_studio.pages.team.invites import invite_card, invites_card
from creative_studio.pages.team.members import members_card
from creative_studio.pages.team.organization import organization_card
from creative_studio.pages.team.projects import projects_card
from state.team import TeamState


@rx.page(
    route=routes.org_page_route("team"),
    title="Team · Creative Studio",
    on_load=TeamState.load,
)
def team_page() -> rx.Component:
    return app_shell(
        "team",
        "Team",
        "Members, roles, project access and invitations.",
        members_card(),
        invite_card(),
        invites_card(),
        projects_card(),
        organization_card(),
    )
