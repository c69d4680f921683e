"""Local payment mode's checkout page: the owner reviews and confirms; no real money moves.

The page lives at /org/<slug>/billing/local-checkout?session=<signed token>. Confirming
produces the same signed event JSON as Stripe and sends it through the same verification and
fulfilment code (`services.billing.local_checkout_confirm`, which owns its unit of work, so it
runs after the owner check and outside the skeleton's transaction).
"""

from __future__ import annotations

import reflex as rx

from core import db, routes
from services import billing
from services.errors import DomainError
from services.policy import Action
from state.org_page import Acting, OrgPageState, bounded, form_fields

# A signed checkout token is a few hundred characters; anything longer is not one of ours.
MAX_TOKEN_CHARS = 4096
MAX_BILLING_NAME_CHARS = 500  # the service says when a name is too long (120)


class LocalCheckoutState(OrgPageState, rx.State):
    _token: str = ""
    ready: bool = False
    title: str = ""
    lines: list[str] = []
    amount: str = ""
    purpose: str = ""
    cancel_path: str = ""
    billing_path: str = ""
    done: bool = False
    completed: str = ""  # when this checkout was confirmed: the page says so, no second payment

    def _view_action(self) -> Action:
        return Action.billing_manage

    def _refresh(self, acting: Acting) -> None:
        try:
            view = billing.local_checkout_view(
                session=acting.session, actor=acting.user, org_id=acting.org.id, token=self._token
            )
        except DomainError as error:  # an expired or forged link, or Stripe is configured
            self.ready = False
            self._show_error(acting.session, error)
            return
        self.title, self.lines, self.amount, self.purpose = (
            view.title,
            view.lines,
            view.amount,
            view.purpose,
        )
        self.completed = view.completed
        self.ready = True

    @rx.event
    async def load(self):
        self.ready = self.done = False
        self._token = bounded(self.router.url.query_parameters.get("session", ""), MAX_TOKEN_CHARS)
        opened = await self._open()
        slug = routes.org_slug_from_path(self.router.url.path)
        self.cancel_path = routes.org_billing_after_checkout(slug, "canceled")
        self.billing_path = routes.org_billing(slug)
        return opened.elsewhere

    @rx.event
    async def confirm(self, form: dict):
        owner = await self._act(
            Action.billing_manage, lambda a: (a.user.id, a.org.id, a.org.slug), refresh=False
        )
        if owner is None:
            return None
        user_id, org_id, slug = owner
        try:
            billing.local_checkout_confirm(
                actor_user_id=user_id,
                org_id=org_id,
                token=self._token,
                billing_name=bounded(
                    form_fields(form).get("billing_name", ""), MAX_BILLING_NAME_CHARS
                ),
            )
        except DomainError as error:
            with db.new_session() as session:
                self._show_error(session, error)
            return None
        self.done = True
        outcome = "profile" if self.purpose == "billing_profile" else "success"
        return rx.redirect(routes.org_billing_after_checkout(slug, outcome))
