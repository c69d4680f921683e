"""Local payment mode's checkout page: the owner reviews and confirms; no real money moves.

Confirming produces the same signed event JSON as Stripe and sends it through the same
verification and fulfilment code (`services.billing.local_checkout_confirm`).
"""

from __future__ import annotations

import reflex as rx
from sqlmodel import Session

from core.db import get_engine
from core import routes
from creative_studio.components.forms import error_callout, field
from creative_studio.layout import app_shell
from services import billing, policy
from services.errors import DomainError
from state.session import SessionState


class LocalCheckoutState(rx.State):
    _token: str = ""
    ready: bool = False
    title: str = ""
    lines: list[str] = []
    amount: str = ""
    purpose: str = ""
    cancel_path: str = ""
    error: str = ""
    done: bool = False

    async def _owner(self, session: Session):
        session_state = await self.get_state(SessionState)
        user, org, actor = session_state._org_actor(session)
        policy.require(
            actor, policy.Action.billing_manage, policy.target_for(session=session, org_id=org.id)
        )
        return user, org

    @rx.event
    async def load(self):
        self.ready = self.done = False
        self.error = ""
        self._token = self.router.url.query_parameters.get("session", "")
        self.cancel_path = (
            routes.org_billing(routes.org_slug_from_path(self.router.url.path))
            + "?checkout=canceled"
        )
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user, org = await self._owner(session)
                view = billing.local_checkout_view(
                    session=session, actor=user, org_id=org.id, token=self._token
                )
            except DomainError as exc:
                self.error = exc.message
                return
        self.title, self.lines, self.amount, self.purpose = (
            view.title,
            view.lines,
            view.amount,
            view.purpose,
        )
        self.ready = True

    @rx.event
    async def confirm(self, form: dict):
        self.error = ""
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user, org = await self._owner(session)
            except DomainError as exc:
                self.error = exc.message
                return None
        try:
            billing.local_checkout_confirm(
                actor_user_id=user.id,
                org_id=org.id,
                token=self._token,
                billing_name=str(form.get("billing_name", "")),
            )
        except DomainError as exc:
            self.error = exc.message
            return None
        self.done = True
        return rx.redirect(routes.org_billing(org.slug) + "?checkout=success")


def _checkout_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.callout(
                "Local payment mode — no real money moves. This page stands in for Stripe Checkout "
                "because no Stripe keys are configured.",
                icon="flask-conical",
                color_scheme="amber",
                width="100%",
                role="note",
            ),
            rx.heading(LocalCheckoutState.title, size="5", as_="h2"),
            rx.foreach(LocalCheckoutState.lines, lambda line: rx.text(line, size="3")),
            rx.hstack(
                rx.text("Total", size="3", color=rx.color("gray", 11)),
                rx.text(LocalCheckoutState.amount, size="6", weight="bold"),
                align="baseline",
                spacing="3",
            ),
            rx.form(
                rx.vstack(
                    rx.cond(
                        LocalCheckoutState.purpose == "billing_profile",
                        field(
                            "Name on the billing profile",
                            "billing_name",
                            autocomplete="organization",
                            field_id="billing-name",
                            required=True,
                        ),
                    ),
                    rx.hstack(
                        rx.button(
                            rx.cond(
                                LocalCheckoutState.purpose == "billing_profile",
                                "Save billing profile",
                                "Confirm payment",
                            ),
                            type="submit",
                            size="3",
                            loading=LocalCheckoutState.done,
                        ),
                        rx.link(
                            rx.button(
                                "Cancel",
                                variant="soft",
                                color_scheme="gray",
                                size="3",
                                type="button",
                            ),
                            href=LocalCheckoutState.cancel_path,
                        ),
                        spacing="3",
                    ),
                    spacing="3",
                    width="100%",
                ),
                on_submit=LocalCheckoutState.confirm,
                width="100%",
            ),
            spacing="4",
            width="100%",
        ),
        max_width="36rem",
        width="100%",
    )


@rx.page(
    route=f"/org/[{routes.ORG_ROUTE_ARG}]/billing/local-checkout",
    title="Local checkout · Creative Studio",
    on_load=[SessionState.load_org, LocalCheckoutState.load],
)
def local_checkout_page() -> rx.Component:
    return app_shell(
        "billing",
        "Checkout",
        "Review and confirm.",
        error_callout(LocalCheckoutState.error),
        rx.cond(LocalCheckoutState.ready, _checkout_card()),
        rx.cond(
            ~LocalCheckoutState.ready & (LocalCheckoutState.error != ""),
            rx.link("Back to Billing", href=LocalCheckoutState.cancel_path),
        ),
    )
