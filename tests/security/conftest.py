"""What the security suites share: two organizations, the callers who attack one of them, a
browser tab per caller, the app's State classes and their public handlers, forged arguments,
and a snapshot of every table the handlers could change.

The world: "Acmesecret Marketing" (slug `acme`, Scale plan, credits, a billing profile, so a
run would really start) with an owner, an admin, a viewer, a project-scoped editor approved
for "Acmesecret Open" but not "Acmesecret Hush", a pending invite, a run and a connection; and
"Rivalsecret Media" (slug `rival`) with the same kinds of rows. Every name, address, prompt and
label of a rival row contains "rivalsecret", of the hidden project "hush", and of Acme
"acmesecret", so a leak is a substring search in what the browser would receive.

The callers (`ROLES`): Acme's viewer and scoped editor, a rival editor who is not a member of
Acme (the non-member), and a tab with no session cookie (signed out).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import reflex as rx
from reflex.istate.data import RouterData
from reflex_base.registry import RegistrationContext
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from core.clock import utcnow
from creative_studio.creative_studio import app  # noqa: F401  (registers every page State)
from models import Generation, OAuthConnection, Organization, User
from services import auth as auth_service
from services import credits as credit_service
from services import invites as invite_service
from services import orgs as org_service
from tests.factories import add_member, make_org, make_user, signed_in_cookie

ROLES = ("viewer", "scoped_editor", "non_member", "signed_out")

# Reflex's own handlers on every State (hydration, client storage, the generic `setvar`, which
# only reaches the `set_<name>` handlers checked here, and frontend error reports).
REFLEX_BUILTIN_HANDLERS = frozenset(
    {
        "setvar",
        "hydrate",
        "hydrate_and_load",
        "set_is_hydrated",
        "update_vars_internal",
        "on_load_internal",
        "handle_frontend_exception",
    }
)

# Tables that are catalogue data (loaded from files, never changed by a page).
CATALOG_TABLES = frozenset({"plans", "ai_models", "tools"})
# Columns every signed-in request may touch: the session's activity stamp (idle timeout).
ACTIVITY_COLUMNS = {
    "users": frozenset({"last_active_at"}),
    "user_sessions": frozenset({"last_seen_at"}),
    "memberships": frozenset({"last_active_at"}),
}

ONE_MEGABYTE = 1_048_576


# --- the app's States and handlers ------------------------------------------------------------


def app_states() -> list[type[rx.State]]:
    """Every State class of the app (Reflex's own and test-only States left out)."""
    found: list[type[rx.State]] = []
    stack = [rx.State]
    while stack:
        current = stack.pop()
        stack.extend(sorted(current.get_substates(), key=lambda c: c.__name__))
        top = current.__module__.split(".")[0]
        if current is not rx.State and not top.startswith("reflex") and top != "tests":
            found.append(current)
    return sorted(found, key=lambda c: c.__name__)


def public_handlers(state_cls: type[rx.State]) -> dict[str, Any]:
    """name -> EventHandler for every handler the browser can call on `state_cls`."""
    return {
        name: handler
        for name, handler in sorted(state_cls.event_handlers.items())
        if name not in REFLEX_BUILTIN_HANDLERS and not name.startswith("_")
    }


def handler_params(handler: Any) -> list[inspect.Parameter]:
    return list(inspect.signature(handler.fn).parameters.values())[1:]


def _on_load_handlers(kwargs: dict) -> list[Any]:
    on_load = kwargs.get("on_load") or []
    return list(on_load) if isinstance(on_load, list | tuple) else [on_load]


def page_for(state_cls: type[rx.State]) -> tuple[str, list[tuple[type[rx.State], str]]]:
    """The route of a page that loads `state_cls` (an org page when there is one), and that
    page's on_load handlers as (State class, handler name)."""
    pages = []
    for _render, kwargs in RegistrationContext.ensure_context().decorated_pages:
        loads = [
            (state, handler.fn.__name__)
            for handler in _on_load_handlers(kwargs)
            for state in app_states()
            if state.get_full_name() == handler.state_full_name
        ]
        if any(state is state_cls for state, _ in loads):
            pages.append((kwargs.get("route", ""), loads))
    pages.sort(key=lambda page: "[org_slug]" not in page[0])
    return pages[0] if pages else ("/org/[org_slug]/studio", [])


def org_path(route: str, slug: str) -> str:
    return route.replace("[org_slug]", slug)


# --- the world ----------------------------------------------------------------------------------


@dataclass
class OrgRows:
    slug: str
    org_id: int
    owner_id: int
    admin_id: int
    member_id: int  # a member the attacker may try to change
    project_id: int  # an open project
    hidden_project_id: int  # the project a scoped editor may not see
    invite_id: int
    generation_public_id: str
    hidden_generation_public_id: str
    connection_id: int


@dataclass
class World:
    acme: OrgRows
    rival: OrgRows
    callers: dict[str, int]  # role -> user id (signed_out: none)
    emails: dict[str, str]
    scoped_project_ids: frozenset[int]
    markers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Sessions the test harness itself signed in (a tab signing in again after a sign-out).
    harness_session_ids: set[int] = field(default_factory=set)

    def secrets_hidden_from(self, role: str) -> tuple[str, ...]:
        """What must never reach `role`'s browser: another org's data, hidden projects."""
        return self.markers[role]


def _org(session: Session, key: str, display: str) -> OrgRows:
    owner = make_user(session, f"owner@{key}.example", f"Olivia {display}")
    org = make_org(
        session, owner, f"{display} Marketing", slug=key.removesuffix("secret"), plan_key="scale"
    )
    org.billing_profile_added_at = utcnow()
    session.add(org)
    admin = add_member(session, org, f"admin@{key}.example", "admin", name=f"Adam {display}")
    member = add_member(session, org, f"edith@{key}.example", "editor", name=f"Edith {display}")
    open_project = org_service.project_create(
        session=session, actor=owner, org_id=org.id, name=f"{display} Open"
    )
    hidden = org_service.project_create(
        session=session, actor=owner, org_id=org.id, name=f"{display} Hush"
    )
    invite, _ = invite_service.invite_create(
        session=session,
        actor=owner,
        org_id=org.id,
        email=f"invitee@{key}.example",
        role="editor",
        base_url="http://localhost:3000",
    )
    runs = []
    for index, (project, label) in enumerate(((open_project, "open"), (hidden, "hush"))):
        run = Generation(
            public_id=f"gen_{key[:4]}{index}",
            org_id=org.id,
            project_id=project.id,
            user_id=owner.id,
            model_key="local-text",
            modality="text",
            prompt=f"{display} {label} prompt",
            status="failed",
            failure_code="provider_error",
            failure_reason=f"{display} {label} failure",
        )
        session.add(run)
        runs.append(run)
    connection = OAuthConnection(
        org_id=org.id,
        connected_by_user_id=owner.id,
        provider_key="linkedin",
        account_id=f"{key}-account",
        account_label=f"{display} account",
        scopes=["r_basicprofile"],
        access_token_encrypted="not-a-real-token",
    )
    session.add(connection)
    session.flush()
    credit_service.credits_grant(
        session=session,
        org_id=org.id,
        amount_millicredits=500_000,
        idempotency_key=f"seed-{key}",
    )
    return OrgRows(
        slug=org.slug,
        org_id=org.id,
        owner_id=owner.id,
        admin_id=admin.id,
        member_id=member.id,
        project_id=open_project.id,
        hidden_project_id=hidden.id,
        invite_id=invite.id,
        generation_public_id=runs[0].public_id,
        hidden_generation_public_id=runs[1].public_id,
        connection_id=connection.id,
    )


def build_world(session: Session) -> World:
    acme = _org(session, "acmesecret", "Acmesecret")
    rival = _org(session, "rivalsecret", "Rivalsecret")
    acme_org = session.get(Organization, acme.org_id)
    rival_org = session.get(Organization, rival.org_id)
    viewer = add_member(session, acme_org, "vera@acmesecret.example", "viewer", name="Vera Viewer")
    scoped = add_member(
        session,
        acme_org,
        "scott@acmesecret.example",
        "editor",
        [acme.project_id],
        name="Scott Scoped",
    )
    outsider = add_member(
        session, rival_org, "nina@rivalsecret.example", "editor", name="Nina Rivalsecret"
    )
    session.commit()
    world = World(
        acme=acme,
        rival=rival,
        callers={"viewer": viewer.id, "scoped_editor": scoped.id, "non_member": outsider.id},
        emails={
            "viewer": viewer.email,
            "scoped_editor": scoped.email,
            "non_member": outsider.email,
        },
        scoped_project_ids=frozenset({acme.project_id}),
    )
    world.markers = {
        "viewer": ("rivalsecret",),
        "scoped_editor": ("rivalsecret", "hush"),
        # The outsider belongs to the rival org: its own org is no secret to it, Acme is.
        "non_member": ("acmesecret",),
        "signed_out": ("acmesecret", "rivalsecret"),
    }
    return world


@pytest.fixture
def world(engine, session) -> World:
    return build_world(session)


# --- forged arguments ---------------------------------------------------------------------------


class EveryField(dict):
    """A submitted form that carries `value` in every field the handler asks for."""

    def __init__(self, value: Any):
        super().__init__()
        self.value = value

    def __missing__(self, key: str) -> Any:
        return self.value

    def get(self, key: str, default: Any = None) -> Any:
        return self.value

    def __contains__(self, key: object) -> bool:
        return True

    def __repr__(self) -> str:
        return f"EveryField({_short(self.value)})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"


def forged_values(world: World, role: str) -> list[Any]:
    """Ids of the other org's rows and of rows the caller may not touch, malformed ids, huge
    strings, None, negative numbers, structures where a scalar belongs."""
    acme, rival = world.acme, world.rival
    own_id = world.callers.get(role, acme.owner_id)
    return [
        # the other organization's rows
        rival.project_id,
        str(rival.hidden_project_id),
        rival.invite_id,
        rival.owner_id,
        str(rival.member_id),
        rival.generation_public_id,
        str(rival.connection_id),
        rival.slug,
        # Acme rows the caller may not change (and the caller itself: self-promotion)
        acme.owner_id,
        str(own_id),
        acme.admin_id,
        acme.invite_id,
        acme.hidden_project_id,
        acme.hidden_generation_public_id,
        acme.connection_id,
        # malformed
        "1 OR 1=1",
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "0x10",
        "",
        "٣",
        # huge
        "9" * ONE_MEGABYTE,
        "A" * ONE_MEGABYTE,
        10**100,
        # negative, zero, other types
        -1,
        0,
        -(2**63),
        None,
        True,
        1.5,
        {"id": rival.project_id},
        [rival.project_id, acme.hidden_project_id],
        {"$ne": None},
    ]


SECOND_VALUES: tuple[Any, ...] = (
    "owner",
    "admin",
    "editor_scoped",
    True,
    "viewer",
    None,
    "A" * ONE_MEGABYTE,
    {"role": "owner"},
)


def forged_calls(handler: Any, values: list[Any]) -> Iterator[tuple[Any, ...]]:
    """The argument tuples to try on `handler`: every forged value in every parameter (dict
    parameters get forms carrying it in every field, and non-forms)."""
    params = handler_params(handler)
    if not params:
        yield ()
        return

    def for_param(param: inspect.Parameter, value: Any) -> Any:
        if param.annotation in (dict, "dict", "dict | None"):
            return EveryField(value)
        return value

    for index, value in enumerate(values):
        args = [for_param(params[0], value)]
        for offset, param in enumerate(params[1:], start=1):
            args.append(for_param(param, SECOND_VALUES[(index + offset) % len(SECOND_VALUES)]))
        yield tuple(args)
    if params[0].annotation in (dict, "dict", "dict | None"):
        for not_a_form in ({}, None, "form", [1, 2]):
            yield (not_a_form, *(SECOND_VALUES[0] for _ in params[1:]))


def describe_args(args: tuple[Any, ...]) -> str:
    return "(" + ", ".join(_short(a) for a in args) + ")"


# --- a browser tab ------------------------------------------------------------------------------


def _router(cookie: str, path: str) -> RouterData:
    return RouterData.from_router_data(
        {
            "headers": {"cookie": cookie, "origin": "http://localhost:3000"},
            "pathname": path.partition("?")[0],
            "asPath": path,
            "query": {},
            "token": "security-tab",
            "sid": "security-sid",
        }
    )


class _Unlocked:
    """What a background handler gets instead of Reflex's StateProxy: the state itself, with
    `async with self` doing nothing (the test holds the only reference)."""

    def __init__(self, state: rx.State):
        object.__setattr__(self, "_state", state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._state, name, value)

    async def __aenter__(self) -> _Unlocked:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None


class Tab:
    """One browser tab of `role` on `path`: the whole state tree, as the websocket builds it."""

    def __init__(self, engine: Engine, world: World, role: str, path: str):
        self.engine, self.world, self.role, self.path = engine, world, role, path
        self.loads: list[tuple[type[rx.State], str]] = []  # the page's on_load handlers
        self.cookie = self._sign_in() if role != "signed_out" else ""
        self.root = rx.State(_reflex_internal_init=True)
        self._set_router()

    def _sign_in(self) -> str:
        with Session(self.engine, expire_on_commit=False) as session:
            user = session.get(User, self.world.callers[self.role])
            cookie = signed_in_cookie(session, user)
            resolved = auth_service.session_resolve(session=session, token=cookie.partition("=")[2])
            self.world.harness_session_ids.add(resolved[1].id)
            session.commit()
        return cookie

    def _set_router(self) -> None:
        router = _router(self.cookie, self.path)
        stack = [self.root]
        while stack:
            current = stack.pop()
            current.router = router
            stack.extend(current.substates.values())

    def keep_signed_in(self) -> None:
        """Sign in again when a handler ended this tab's session (sign out, own session)."""
        if not self.cookie:
            return
        token = self.cookie.partition("=")[2]
        with Session(self.engine) as session:
            live = auth_service.session_resolve(session=session, token=token) is not None
        if not live:
            self.cookie = self._sign_in()
            self._set_router()

    def state(self, state_cls: type[rx.State]) -> rx.State:
        return self.root._get_state_from_cache(state_cls)

    async def call(self, state_cls: type[rx.State], name: str, *args: Any) -> Any:
        handler = state_cls.event_handlers[name]
        state = self.state(state_cls)
        target = _Unlocked(state) if handler.is_background else state
        result = handler.fn(target, *args)
        if inspect.isawaitable(result):
            result = await result
        return await drain_updates(result)

    def browser_view(self) -> str:
        """Everything the browser holds of this tab's state, as JSON text."""
        return json.dumps(self.root.dict(), default=str)


async def drain_updates(result: Any) -> Any:
    """Run a generator handler to its end as Reflex does; its yields as a list (else `result`)."""
    if inspect.isasyncgen(result):
        return [update async for update in result if update is not None]
    if inspect.isgenerator(result):
        return [update for update in result if update is not None]
    return result


# --- the database -------------------------------------------------------------------------------


Snapshot = dict[str, dict[tuple, dict[str, Any]]]


def db_snapshot(engine: Engine) -> Snapshot:
    """Every row of every table a page could change, keyed by primary key."""
    snapshot: Snapshot = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in CATALOG_TABLES:
                continue
            keys = [column.name for column in table.primary_key.columns]
            ignored = ACTIVITY_COLUMNS.get(table.name, frozenset())
            rows = {}
            for row in conn.execute(sa_select(table)).mappings():
                values = {k: v for k, v in row.items() if k not in ignored}
                rows[tuple(row[k] for k in keys)] = values
            snapshot[table.name] = rows
    return snapshot


@dataclass(frozen=True)
class Change:
    table: str
    kind: str  # "added" | "changed" | "removed"
    row: dict[str, Any]  # the row after (before, when removed)
    columns: frozenset[str] = frozenset()  # changed columns

    def __str__(self) -> str:
        what = f" {sorted(self.columns)}" if self.columns else ""
        return f"{self.table}: row {self.kind}{what}"


def db_changes(before: Snapshot, after: Snapshot) -> list[Change]:
    changes = []
    for table, rows in after.items():
        old = before.get(table, {})
        for key, row in rows.items():
            if key not in old:
                changes.append(Change(table, "added", row))
            elif row != old[key]:
                columns = frozenset(k for k in row if row[k] != old[key].get(k))
                changes.append(Change(table, "changed", row, columns))
        for key, row in old.items():
            if key not in rows:
                changes.append(Change(table, "removed", row))
    return changes
