"""/account/security: the account's security settings live in Settings > Security of any of
the person's organizations; this address (named in older links and messages) leads there."""

from __future__ import annotations

import reflex as rx

from core import db, routes
from services import orgs as org_service
from state.session import SessionState


class AccountSecurityState(rx.State):
    has_org: bool = True

    @rx.event
    async def open(self):
        session_state = await self.get_state(SessionState)
        with db.new_session() as session:
            user = session_state._current_user(session)
            if user is None:
                return rx.redirect(routes.sign_in(routes.ACCOUNT_SECURITY))
            orgs = org_service.orgs_for_user(session=session, user_id=user.id)
        if not orgs:
            self.has_org = False
            return None
        return rx.redirect(routes.org_settings(orgs[0][0].slug) + "#security")
