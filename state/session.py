"""Who is signed in, and in which organization. Re-resolved from the server-side session on use.

The browser holds only an HttpOnly cookie; Reflex never serializes the Cookie header, so the
session token never appears in state or in websocket frames. The user id used for access
checks is a backend var (leading underscore) and is re-derived from the cookie in every event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from http.cookies import CookieError, SimpleCookie
from typing import Any

import reflex as rx
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Session

from core import db, routes
from core.clock import utcnow
from models import Membership, Organization, User
from services import auth as auth_service
from services import connections as connections_service
from services import orgs as org_service
from services import policy
from services import sso as sso_service
from services.errors import DomainError, NotFound
from state.navigation import backend_url, navigate

# How long who-is-acting, once resolved from the database, may answer a read that a page
# declares read-only (its load, the studio's picks): a revoked session or a removed member
# still sees that page for at most this long. Anything that changes something resolves it anew.
IDENTITY_REVALIDATE_SECONDS = 5.0
# Never kept between events (a read that needs one loads it from the database).
_SECRET_COLUMNS = frozenset({"password_hash", "totp_secret_encrypted", "google_subject"})


def _columns(row: Any) -> dict[str, Any]:
    """A row's column values but secrets (plain data, kept between events server-side)."""
    return {
        attr.key: getattr(row, attr.key)
        for attr in sa_inspect(row).mapper.column_attrs
        if attr.key not in _SECRET_COLUMNS
    }


@dataclass(frozen=True)
class ResolvedIdentity:
    """Who acts in the organization of one page, as last resolved from the database, with the
    2FA requirement met (server-side only)."""

    key: str  # a digest of the session cookie and the page's path it was resolved for
    checked_at: datetime
    user: dict[str, Any]
    org: dict[str, Any]
    actor: policy.Actor
    target: policy.Target  # the organization, with whether its subscription allows runs
    subscription: tuple[str | None, str | None]  # its (status, plan key)

    def fresh_for(self, key: str) -> bool:
        return bool(key) and key == self.key and self.fresh_at(utcnow())

    def fresh_at(self, now: datetime) -> bool:
        return 0 <= (now - self.checked_at).total_seconds() < IDENTITY_REVALIDATE_SECONDS


# What an organization's load shows in the header and sidebar (OrgLink rows apart).
_SHOWN = (
    "signed_in",
    "user_name",
    "user_email",
    "email_verified",
    "is_operator",
    "org_slug",
    "org_name",
    "_org_role",
    "org_not_found",
    "allowed_actions",
    "has_expired_connection",
    "ready",
)


@dataclass(frozen=True)
class _Opened:
    """A full `_open_org` that let a member in: what it resolved and showed, and the facts it
    rested on (`auth.identity_facts`, read before it). Opening a page of the same organization
    with the same cookie again (another page, a new tab) re-uses it, with one read of the
    facts instead of the whole resolution, while they are unchanged and for at most
    IDENTITY_REVALIDATE_SECONDS after it: a revoked session, a removed member, a changed role or
    organization, a new 2FA requirement or a lapsed subscription are seen at once."""

    facts: tuple
    resolved: ResolvedIdentity
    user_id: int
    session_id: int
    shown: tuple[Any, ...]  # the values of _SHOWN
    orgs: tuple[tuple[str, str, str], ...]  # the switcher's (slug, name, role)


# This process's recent openings, by a digest of the cookie and the organization's address.
_OPENED: dict[str, _Opened] = {}
_OPENED_MAX = 4096


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _opened_key(token: str, slug: str) -> str:
    return hashlib.sha256(f"org-opened\0{token}\0{slug}".encode()).hexdigest()


@dataclass
class OrgLink:
    slug: str
    name: str
    role: str


class SessionState(rx.State):
    _user_id: int | None = None
    _session_id: int | None = None
    # The last full resolution of who acts on this tab's org page (see IDENTITY_REVALIDATE_SECONDS).
    _resolved: ResolvedIdentity | None = None

    signed_in: bool = False
    user_name: str = ""
    user_email: str = ""
    email_verified: bool = True
    is_operator: bool = False
    orgs: list[OrgLink] = []

    org_slug: str = ""
    org_name: str = ""
    _org_role: str = ""
    org_not_found: bool = False
    ready: bool = False
    # Policy answers for this user in this org, for showing (not enforcing) what is possible.
    allowed_actions: list[str] = []
    # An expired connection the person can reconnect: a red dot next to Settings.
    has_expired_connection: bool = False

    # --- helpers (private: not callable from the browser) ---------------------------------

    def _session_token(self) -> str:
        raw = self.router.headers.cookie or ""
        try:
            jar = SimpleCookie(raw)
        except CookieError:
            return ""
        morsel = jar.get(routes.SESSION_COOKIE)
        return morsel.value if morsel else ""

    def _current_user(self, session: Session) -> User | None:
        """The signed-in user, re-checked against the session row on every call."""
        token = self._session_token()
        resolved = auth_service.session_resolve(session=session, token=token) if token else None
        if resolved is None:
            self._user_id = None
            self._session_id = None
            self._resolved = None
            self.signed_in = False
            return None
        user, user_session = resolved
        self._user_id, self._session_id = user.id, user_session.id
        return user

    def _identity_key(self) -> str:
        token = self._session_token()
        if not token:
            return ""
        seen = f"org-identity\0{token}\0{self.router.url.path or ''}"
        return hashlib.sha256(seen.encode()).hexdigest()

    def _remember_resolved(
        self,
        session: Session,
        user: User,
        org: Organization,
        actor: policy.Actor,
        target: policy.Target,
    ) -> None:
        """Note a full resolution whose 2FA requirement is met, for reads in the next seconds."""
        key = self._identity_key()
        self._resolved = (
            ResolvedIdentity(
                key=key,
                checked_at=utcnow(),
                user=_columns(user),
                org=_columns(org),
                actor=actor,
                target=policy.Target(
                    org_id=target.org_id, subscription_executable=target.subscription_executable
                ),
                subscription=policy.subscription_facts(session=session, org_id=org.id),
            )
            if key
            else None
        )

    def _recently_resolved(
        self, session: Session
    ) -> tuple[Callable[[], tuple[User, Organization]], policy.Actor, policy.Target] | None:
        """Who acts and the organization as a policy target, as resolved at most
        IDENTITY_REVALIDATE_SECONDS ago for this cookie and page, or None. The user and the
        organization come as a function that attaches them to `session` without a query,
        called only by a caller that reads them."""
        known = self.get_value("_resolved")  # read only: no change tracking
        if known is None or not known.fresh_for(self._identity_key()):
            return None
        user_columns, org_columns = known.user, known.org
        policy.facts_known(
            session=session,
            user_id=user_columns["id"],
            is_operator=bool(user_columns.get("is_operator")),
            org_id=org_columns["id"],
            actor=known.actor,
            subscription=known.subscription,
        )

        def attach() -> tuple[User, Organization]:
            return (
                db.attach_loaded(session, User, user_columns),
                db.attach_loaded(session, Organization, org_columns),
            )

        return attach, known.actor, known.target

    def _org_actor(self, session: Session) -> tuple[User, Organization, policy.Actor]:
        """Who is acting, in which org (from the URL), re-checked against the DB.

        Every handler of an org page calls this first, then `policy.require(actor, action,
        policy.target_for(...))`. Raises NotFound when signed out or not a member (operators
        get a non-member Actor and the policy decides what they may do).
        """
        user = self._current_user(session)
        if user is None:
            raise NotFound("Your session has ended. Sign in again.")
        org, membership = org_service.org_and_membership(
            session=session, slug=routes.org_slug_from_path(self.router.url.path), user_id=user.id
        )
        actor = policy.actor_with_membership(
            session=session, user=user, org_id=org.id, membership=membership
        )
        if actor.role is None and not actor.is_operator:
            raise NotFound("There is no organization at this address that you belong to.")
        return user, org, actor

    def _fill_user(
        self, session: Session, user: User
    ) -> dict[str, tuple[Organization, Membership]]:
        """The person's name and organizations for the header; their organizations (with
        their membership) by slug."""
        self.signed_in = True
        self.user_name = user.name or user.email
        self.user_email = user.email
        self.email_verified = user.email_verified_at is not None
        self.is_operator = user.is_operator
        rows = org_service.orgs_for_user(session=session, user_id=user.id)
        self.orgs = [
            OrgLink(slug=org.slug, name=org.name, role=membership.role) for org, membership in rows
        ]
        return {org.slug: (org, membership) for org, membership in rows}

    def _sign_in_redirect(self):
        return rx.redirect(routes.sign_in(self.router.url.path or None))

    # --- events ----------------------------------------------------------------------------

    @rx.event
    def require_signed_in(self):
        """on_load for pages that need a user but no organization."""
        with db.session_scope() as session:
            user = self._current_user(session)
            if user is None:
                self.ready = False
                return self._sign_in_redirect()
            self._fill_user(session, user)
        self.ready = True

    @rx.event
    def load_org(self):
        """on_load for /org/<slug>/...: the user must be a member (or an operator)."""
        return self._open_org()

    def _open_org(self, session: Session | None = None):
        """load_org's work, also run inside a page's own load (`OrgPageState._open`, on
        the session the page then reads with): who is signed in, the organization in the
        address and what they may do there. Returns the events to send instead of the page
        (sign-in, a moved organization, 2FA enrolment), or None."""
        if session is None:
            with db.session_scope() as own:
                return self._open_org(own)
        slug = routes.org_slug_from_path(self.router.url.path)
        self._resolved = None
        token = self._session_token()
        facts = auth_service.identity_facts(session=session, token=token, slug=slug)
        if facts is not None and self._reopen(_opened_key(token, slug), facts):
            return None
        user = self._current_user(session)
        if user is None:
            self.ready = False
            return self._sign_in_redirect()
        mine = self._fill_user(session, user)
        self.org_not_found = True
        self.org_slug = slug
        self.org_name = self._org_role = ""
        membership_role = next((o.role for o in self.orgs if o.slug == slug), None)
        try:
            org, membership = mine.get(slug) or (
                org_service.org_by_slug(session=session, slug=slug),
                None,
            )
        except DomainError:
            org = None
            moved = org_service.org_by_old_address(session=session, slug=slug)
            if moved is not None and (
                user.is_operator or any(o.slug == moved.slug for o in self.orgs)
            ):
                # An old address: the same page at the new one, saying it moved.
                parts = [p for p in self.router.url.path.split("/") if p]
                rest = "/".join(parts[2:])
                target = f"/org/{moved.slug}/{rest}" if rest else routes.org_home(moved.slug)
                return [
                    rx.redirect(f"{target}?moved_from={slug}"),
                    rx.toast.info(
                        f"This organization moved from /org/{slug} to /org/{moved.slug}. "
                        "Update your bookmarks: the old address stops working after "
                        f"{org_service.OLD_ADDRESS_REDIRECT_FOR.days} days."
                    ),
                ]
        needs_2fa = (
            org is not None
            and membership_role is not None
            and sso_service.org_requires_2fa_of(session=session, user=user, org=org)
        )
        if needs_2fa and (self.router.url.path or "").rstrip("/") != routes.org_settings(org.slug):
            # "Require 2FA": enrol first, on Settings, before acting in this organization.
            return [
                rx.redirect(routes.org_settings(org.slug)),
                rx.toast.warning(
                    f"{org.name} requires two-factor authentication. Turn it on under "
                    "Security below, then continue.",
                    duration=15000,
                ),
            ]
        if org is not None and (membership_role is not None or user.is_operator):
            self.org_not_found = False
            self.org_name = org.name
            self._org_role = membership_role or "operator"
            actor = policy.actor_with_membership(
                session=session, user=user, org_id=org.id, membership=membership
            )
            target = policy.target_for(session=session, org_id=org.id)
            self.allowed_actions = [
                action.value for action in policy.Action if policy.can(actor, action, target)
            ]
            if not needs_2fa:  # the page's own load reads with it (one resolution, not two)
                self._remember_resolved(session, user, org, actor, target)
            # A member's resolution rests on `facts` alone (not an operator's view-as grant or
            # a scoped editor's approved projects): a next opening may re-use it.
            reusable = not needs_2fa and actor.role is not None
            reusable = reusable and not (actor.is_operator or actor.project_scoped)
            self.has_expired_connection = policy.Action.connections_manage.value in (
                self.allowed_actions
            ) and connections_service.connections_need_reconnect(session=session, org_id=org.id)
        else:
            reusable = False
            self.allowed_actions = []
            self.has_expired_connection = False
        self.ready = True
        if facts is not None and reusable:
            self._keep_opened(_opened_key(token, slug), facts)
        return None

    def _keep_opened(self, key: str, facts: tuple) -> None:
        if len(_OPENED) >= _OPENED_MAX:  # forget what is too old to be re-used, or everything
            now = utcnow()
            for stale in [k for k, o in _OPENED.items() if not o.resolved.fresh_at(now)]:
                del _OPENED[stale]
            if len(_OPENED) >= _OPENED_MAX:
                _OPENED.clear()
        _OPENED[key] = _Opened(
            facts=facts,
            resolved=self._resolved,
            user_id=self._user_id,
            session_id=self._session_id,
            shown=tuple(_frozen(self.get_value(name)) for name in _SHOWN),
            orgs=tuple((o.slug, o.name, o.role) for o in self.orgs),
        )

    def _reopen(self, key: str, facts: tuple) -> bool:
        """Show what a full `_open_org` of this cookie and organization showed moments ago, if
        its facts still hold (see `_Opened`)."""
        opened = _OPENED.get(key)
        if opened is None or opened.facts != facts:
            return False
        resolved = replace(opened.resolved, key=self._identity_key())
        if not resolved.fresh_for(resolved.key):
            _OPENED.pop(key, None)
            return False
        for name, value in zip(_SHOWN, opened.shown, strict=True):
            setattr(self, name, list(value) if isinstance(value, tuple) else value)
        self.orgs = [OrgLink(slug=slug, name=name, role=role) for slug, name, role in opened.orgs]
        self._user_id, self._session_id = opened.user_id, opened.session_id
        self._resolved = resolved
        return True

    @rx.event
    def go_home(self):
        """/ : the first organization's studio, or sign-in."""
        with db.new_session() as session:
            user = self._current_user(session)
            if user is None:
                return rx.redirect(routes.SIGN_IN)
            self._fill_user(session, user)
        if self.orgs:
            return rx.redirect(routes.org_home(self.orgs[0].slug))
        if self.is_operator:  # platform staff belong to no customer: their home is the console
            return rx.redirect(routes.OPERATOR_HOME)
        return rx.redirect(routes.NEW_ORG)

    @rx.event
    def switch_org(self, slug: str):
        if not any(org.slug == slug for org in self.orgs):
            return rx.toast.error("You are not a member of that organization.")
        return rx.redirect(routes.org_home(slug))

    @rx.event
    def sign_out(self):
        with db.session_scope() as session:
            if self._current_user(session) is not None and self._session_id is not None:
                auth_service.session_revoke(
                    session=session, user_id=self._user_id, session_id=self._session_id
                )
        # Nothing the previous user loaded in this tab may outlive the session.
        self._get_root_state().reset()
        return navigate(backend_url(routes.API_AUTH_SIGN_OUT))

    # --- display vars ----------------------------------------------------------------------

    @rx.var
    def org_role_label(self) -> str:
        return self._org_role.replace("_", " ").capitalize()

    @rx.var
    def user_initials(self) -> str:
        parts = [p for p in self.user_name.replace("@", " ").split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"
