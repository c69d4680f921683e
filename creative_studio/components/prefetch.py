"""Fetch a page's code ahead of time, so that navigating there later finds it in the cache."""

from __future__ import annotations

import reflex as rx


class PrefetchPageLinks(rx.Component):
    """React Router's `<PrefetchPageLinks page=...>`: `<link rel="modulepreload">` for the route
    module of `page` and everything it imports (its icons, its sections), nothing visible.

    The built files have hashed names that only the router's manifest knows, so the router
    writes the links. Dynamic segments match any value: `/org/_/studio` fetches the Studio of
    every organization.
    """

    library = "react-router"
    tag = "PrefetchPageLinks"

    page: rx.Var[str]


def prefetch_page(path: str) -> rx.Component:
    return PrefetchPageLinks.create(page=path)
