"""/ : sends a signed-in user to their workspace and everyone else to sign-in."""

import reflex as rx

from core import routes
from creative_studio.layout import loading
from state.session import SessionState


@rx.page(route=routes.INDEX, title="Creative Studio", on_load=SessionState.go_home)
def index() -> rx.Component:
    return loading()
