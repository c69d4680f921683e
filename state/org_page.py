"""The one skeleton every org page's handlers use: who acts, may they, one unit of work, one
error map, then refresh.

A page State is declared `class TeamState(OrgPageState, rx.State)` (a subclass of the mixin
alone would be another mixin) and writes each public handler as

    @rx.event
    async def revoke_invite(self, invite_id: str):
        await self._act(
            Action.team_manage,
            lambda a: invite_service.invite_revoke(
                session=a.session, actor=a.user, org_id=a.org.id, invite_id=browser_id(invite_id)
            ).email,
            success=lambda email: f"The invite to {email} was withdrawn.",
        )

A mutating form carries the page's `form_token` (a hidden input, `token_input()`; a button
passes `State.form_token` as an argument) and its handler passes it on:
`await self._act(..., form_token=form.get("form_token"), purpose="invite")`. The first submit
with a token acts and records its result in the same transaction; a second one (double click,
retry) shows the first result and acts no more (`services/form_submissions.py`). A handler that
sets `pending` to its form's name and yields before acting shows the button as pending.

`_act` re-derives the person from the session cookie and the organization from the URL on
every call (the browser can call any public handler with any arguments), asks the policy
module, runs the work inside one transaction that it commits, maps every domain error to what
the page shows, and refreshes the page's read models through `_refresh`.

A page opens in one event and one unit of work: `on_load=XState.load`, its load starting with
`opened = await self._open()` and `if opened.elsewhere is not None: return opened.elsewhere`
(`opened.acting` is who acts, or None when the page was refused). `_open` does
SessionState.load_org's work (the header, the organization, what the person may do there)
and the page's `_load` on one session; each event of a page open costs a state lock, a delta
and a message. A page with several loads (Settings, Help) keeps
`on_load=[SessionState.load_org, XState.load, ...]`, each load calling `_load()`: load_org
resolves who acts and hands it to `_load` (for IDENTITY_REVALIDATE_SECONDS at most), so the
page does not resolve it again.

Transaction rule: the skeleton commits; services called through it never commit or roll back.
A service that owns its unit of work (it opens `core.db.session_scope()` itself) is called
outside `_act`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import reflex as rx
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import db, routes
from core.clock import utcnow
from models import Organization, User
from models.enums import OrgRole
from services import form_submissions, policy
from services import sso as sso_service
from services.errors import Conflict, DomainError, NotFound, PlanLimitReached
from services.passwords import MAX_PASSWORD_LENGTH
from state.notices import LimitNotice, notice_from_error
from state.session import SessionState

T = TypeVar("T")

NOT_FOUND_RELOAD = "That item was not found. Reload the page and try again."
CHANGED_MEANWHILE = "This changed while you were submitting. Reload the page and try again."
# Ids are 64-bit database integers; a larger number from the browser names no row.
_MAX_ID = 2**63 - 1


class Acting:
    """Who acts, in which organization, inside which unit of work. Server-side only.

    `user` and `org` are rows of `session`. Who acts as resolved moments ago comes with
    `attach` instead, which attaches them on first use: a read that never looks at them (a
    pick, an option) builds no ORM objects.
    """

    __slots__ = ("_attach", "_org", "_user", "actor", "session")

    def __init__(
        self,
        *,
        session: Session,
        actor: policy.Actor,
        user: User | None = None,
        org: Organization | None = None,
        attach: Callable[[], tuple[User, Organization]] | None = None,
    ):
        if attach is None and (user is None or org is None):
            raise ValueError("Acting needs the user and the organization, or how to attach them")
        self.session, self.actor = session, actor
        self._user, self._org, self._attach = user, org, attach

    def _rows(self) -> tuple[User, Organization]:
        if self._user is None or self._org is None:
            self._user, self._org = self._attach()
        return self._user, self._org

    @property
    def user(self) -> User:
        return self._rows()[0]

    @property
    def org(self) -> Organization:
        return self._rows()[1]

    @property
    def is_owner(self) -> bool:
        return self.actor.role == OrgRole.owner

    def can(self, action: policy.Action, *, project_id: int | None = None) -> bool:
        """A policy answer for showing what is possible (enforcement is `_act`'s job)."""
        target = policy.target_for(session=self.session, org_id=self.org.id, project_id=project_id)
        return bool(policy.can(self.actor, action, target))


def browser_id(value: Any) -> int:
    """An id that came from the browser. Anything but a positive integer is "not found"."""
    if isinstance(value, bool):
        raise NotFound(NOT_FOUND_RELOAD)
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise NotFound(NOT_FOUND_RELOAD) from None
    if not 0 < number <= _MAX_ID:
        raise NotFound(NOT_FOUND_RELOAD)
    return number


# Input limits for text from the browser: one character more than the service accepts, so an
# over-long value still reaches the service and is refused with its message, never cut silently.
MAX_EMAIL_INPUT = 321
MAX_PASSWORD_INPUT = MAX_PASSWORD_LENGTH + 1
MAX_HANDOFF_CODE_CHARS = 128


def form_fields(form: Any) -> dict:
    """A submitted form from the browser; anything but a form is an empty one."""
    return form if isinstance(form, dict) else {}


def bounded(value: Any, max_chars: int) -> str:
    """Text from the browser for a setter: always a string, never longer than `max_chars`."""
    return str(value if value is not None else "")[:max_chars]


@dataclass(frozen=True)
class Opened:
    """What `OrgPageState._open` found: the events to send instead of the page (sign-in, a
    moved organization, 2FA enrolment) or None, and who acts (None when refused)."""

    elsewhere: Any
    acting: Acting | None


class OrgPageState(rx.State, mixin=True):
    """Mixed into every /org/<slug>/... page State (a mixin keeps the state tree shallow)."""

    error: str = ""
    error_code: str = ""
    notice: str = ""
    limit_notice: LimitNotice = rx.field(default_factory=LimitNotice)
    # Issued when the page renders; mutating forms send it back so a retried submit acts once.
    # Not a secret: it only names one submit of this person's form.
    form_token: str = ""
    pending: str = ""  # the form whose submit is running ("" when none): its button shows it
    # The organization in the page's address, noted when the page loads and with each error.
    # Computed vars read this, not the router: one reading the router is recomputed, and its
    # state loaded and sent, on every page open of any page.
    _page_slug: str = ""
    # When the error was shown (UTC, "YYYY-MM-DD HH:MM"): only the Report this link shows it.
    _error_at: str = ""

    @rx.var
    def report_href(self) -> str:
        """Contact support pre-filled with the error shown (its code and UTC time); "" when
        no error code is shown. The error callout offers it as "Report this"."""
        slug = self._page_slug
        if not (self.error and self.error_code and slug):
            return ""
        return routes.support_new(slug, error_code=self.error_code, time=self._error_at)

    # --- what each page provides ------------------------------------------------------------

    def _view_action(self) -> policy.Action:
        """What a person must be allowed to do to see the page. Pages override it."""
        return policy.Action.org_view

    def _refresh(self, acting: Acting) -> None:
        """Reload the page's read models for `acting`. Pages override it."""

    def _forget(self) -> None:
        """Drop everything shown when the person may no longer see the page."""
        self.reset()

    # --- the skeleton -----------------------------------------------------------------------

    def _set_changed(self, name: str, value: Any) -> None:
        """Assign `value` only if it differs from what the var holds: Reflex sends (and
        recomputes what depends on) every var assigned, equal or not."""
        if value != self.get_value(name):
            setattr(self, name, value)

    def _clear_messages(self) -> None:
        """The last event's messages go; one already clear is not sent again."""
        for name in ("error", "error_code", "_error_at", "notice"):
            self._set_changed(name, "")
        self._set_changed("limit_notice", LimitNotice())

    def _show_error(self, session: Session, error: DomainError) -> None:
        """The one error map. Pages extend it for errors they show in their own place."""
        self.error_code = error.code
        self._error_at = f"{utcnow():%Y-%m-%d %H:%M}"
        self._note_page()
        if isinstance(error, PlanLimitReached):
            self.limit_notice = notice_from_error(session=session, error=error)
        else:
            self.error = error.message

    def _two_factor_exempt(self, org: Organization, action: policy.Action) -> bool:
        """Under "require 2FA", what a member without 2FA may still do: on the Settings page,
        enrol and manage their own account (org_view handlers), nothing else."""
        path = (self.router.url.path or "").rstrip("/")
        return action == policy.Action.org_view and path == routes.org_settings(org.slug)

    async def _acting(
        self,
        session: Session,
        action: policy.Action,
        *,
        project_id: int | None = None,
        recent: bool = False,
    ) -> Acting:
        """Who acts (cookie), where (URL), re-checked against the database and the policy.

        `recent`: the caller only reads (a page's load, a page's declared reads); who acts may
        then be the one resolved at most IDENTITY_REVALIDATE_SECONDS ago for this cookie and
        page (by the org's load_org or an earlier event). The policy is asked again either way.
        """
        session_state = await self.get_state(SessionState)
        known = session_state._recently_resolved(session) if recent and project_id is None else None
        if known is not None:
            attach, actor, target = known
            policy.require(actor, action, target)
            return Acting(session=session, actor=actor, attach=attach)
        session_state._resolved = None  # a refusal below must not leave an older answer
        user, org, actor = session_state._org_actor(session)
        gated = actor.role is not None and not self._two_factor_exempt(org, action)
        if gated:
            sso_service.two_factor_gate(session=session, user=user, org=org)
        target = policy.target_for(session=session, org_id=org.id, project_id=project_id)
        if project_id is None and (gated or actor.role is None):
            session_state._remember_resolved(session, user, org, actor, target)  # 2FA met
        policy.require(actor, action, target)
        return Acting(session=session, user=user, org=org, actor=actor)

    async def _act(
        self,
        action: policy.Action,
        work: Callable[[Acting], T],
        *,
        success: str | Callable[[T], str] = "",
        project_id: int | None = None,
        refresh: bool = True,
        form_token: Any = None,
        purpose: str = "",
    ) -> T | bool | None:
        """Check, run `work` in one transaction, commit, refresh, say what happened.

        With `purpose` and the form's `form_token`, a token that already acted does not act
        again: the first result (a string result, else "") is returned and said once more.

        Returns the work's result (True when it returned None), or None when it was refused;
        the refusal is then on the page (`error` or `limit_notice`) and the page refreshed.
        """
        self._clear_messages()
        token = form_submissions.form_token_clean(form_token) if purpose else ""
        with db.new_session() as session:
            try:
                acting = await self._acting(session, action, project_id=project_id)
                result = self._once(acting, work, purpose, token)
                session.commit()
            except IntegrityError:
                # The same token acted in another process meanwhile: show what it did.
                session.rollback()
                try:
                    acting = await self._acting(session, action, project_id=project_id)
                    result = self._once(acting, work, purpose, token, replay_only=True)
                except DomainError as error:
                    self._show_error(session, error)
                    return None
            except DomainError as error:
                session.rollback()
                self._show_error(session, error)
                await self._refresh_quietly(session)
                return None
            if token:
                self.form_token = form_submissions.form_token_new()
            if refresh:
                session.refresh(acting.org)
                if acting.org.deleted_at is None:
                    self._refresh(acting)
        self._set_changed("notice", success(result) if callable(success) else success)
        return True if result is None else result

    @staticmethod
    def _once(
        acting: Acting,
        work: Callable[[Acting], T],
        purpose: str,
        token: str,
        *,
        replay_only: bool = False,
    ) -> T | str:
        """Run `work` unless `token` already did (then its first result); record the run."""
        user_id = acting.user.id
        earlier = form_submissions.form_submission_find(
            session=acting.session, user_id=user_id, purpose=purpose, token=token
        )
        if earlier is not None:
            return earlier
        if replay_only:
            raise Conflict(CHANGED_MEANWHILE)
        result = work(acting)
        form_submissions.form_submission_record(
            session=acting.session, user_id=user_id, purpose=purpose, token=token, result=result
        )
        return result

    def _note_page(self) -> None:
        self._set_changed("_page_slug", routes.org_slug_from_path(self.router.url.path or ""))

    async def _open(self) -> Opened:
        """A page's load in one event and one unit of work: SessionState.load_org's work, then
        the page's `_load`, on one session. A page sent elsewhere (sign-in, a moved
        organization, 2FA enrolment) forgets what it showed, as a load refused by `_load` does."""
        with db.new_session() as session:
            elsewhere = (await self.get_state(SessionState))._open_org(session)
            if elsewhere is not None:
                self._forget()
                self._note_page()
                return Opened(elsewhere, None)
            return Opened(None, await self._load(session))

    async def _load(self, session: Session | None = None) -> Acting | None:
        """on_load: show the page to someone who may see it, and nothing to anyone else.
        Reads on `session` when the page's load already opened one (`_open`)."""
        self._note_page()
        if session is None:
            with db.new_session() as own:
                return await self._load(own)
        try:
            acting = await self._acting(session, self._view_action(), recent=True)
        except DomainError as error:
            self._forget()
            self._show_error(session, error)
            return None
        self._clear_messages()
        self.form_token = form_submissions.form_token_new()
        self.pending = ""
        self._refresh(acting)
        return acting

    async def _refresh_quietly(self, session: Session) -> None:
        """After a refused action, show the current truth (it may be why it was refused)."""
        try:
            acting = await self._acting(session, self._view_action())
        except DomainError:
            return
        self._refresh(acting)
