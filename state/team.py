"""/org/<slug>/team: members and roles, invitations, projects, and the organization itself.

Every public handler goes through the org-page skeleton (`OrgPageState._act`): who acts is
re-derived from the session cookie and the URL, the policy is asked, one service runs in one
transaction, and a domain error becomes the message shown next to the card that triggered it
(`section`). State holds only read models (the dataclasses below): no table rows, tokens or
hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import reflex as rx

from core import routes
from core.clock import as_utc, utcnow
from core.settings import get_settings
from models.enums import OrgRole
from services import invites as invite_service
from services import orgs as org_service
from services import policy
from services import sso as sso_service
from services.errors import NotFound
from state.notices import LimitNotice, notice_for
from state.org_page import (
    MAX_PASSWORD_INPUT,
    NOT_FOUND_RELOAD,
    Acting,
    OrgPageState,
    bounded,
    browser_id,
)
from state.session import SessionState

Action = policy.Action

# The role picker's values: a scoped editor is an editor with a project list.
SCOPED_EDITOR = "editor_scoped"
INVITE_ROLE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("admin", "Admin"),
    ("editor", "Editor"),
    (SCOPED_EDITOR, "Editor (selected projects)"),
    ("viewer", "Viewer"),
)
ROLE_HELP = {
    "admin": "Admins manage the team and projects, and run tools. Billing stays with the owner.",
    "editor": "Editors run tools in every project.",
    SCOPED_EDITOR: "Editors who see and run tools only in the projects you pick.",
    "viewer": "Viewers look at projects and assets but cannot run tools.",
}

# Longest text accepted from a form or a picker; the services apply the real limits.
FORM_TEXT_MAX_CHARS = 1000
CHOICE_MAX_CHARS = 40
CODE_MAX_CHARS = 64
SLUG_QUERY_MAX_CHARS = 64


# --- read models -------------------------------------------------------------------------------


@dataclass
class MemberRow:
    user_id: int
    name: str
    email: str
    role_label: str
    role_choice: str  # value of the role picker: owner/admin/editor/editor_scoped/viewer
    scope: str
    last_active: str
    is_self: bool
    manageable: bool  # the viewer of the page may change or remove this member
    two_factor: bool = False  # has two-factor authentication on


@dataclass
class InviteRow:
    invite_id: int
    email: str
    role_label: str
    status: str
    expires: str


@dataclass
class ProjectRow:
    project_id: int
    name: str
    archived: bool
    created: str


@dataclass
class ProjectOption:
    project_id: int
    name: str
    field_id: str  # unique id for the checkbox and its label


@dataclass
class MemberChoice:
    value: str  # user id as text (select values are strings)
    label: str


# --- formatting --------------------------------------------------------------------------------


def role_label(role: str, project_scoped: bool = False) -> str:
    if role == OrgRole.editor.value and project_scoped:
        return "Editor (selected projects)"
    return role.replace("_", " ").capitalize()


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "Never"
    seconds = int((utcnow() - as_utc(moment)).total_seconds())
    if seconds < 120:
        return "Just now"
    if seconds < 3600:
        return f"{seconds // 60} minutes ago"
    if seconds < 86400:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    days = seconds // 86400
    if days < 30:
        return f"{days} day{'s' if days != 1 else ''} ago"
    return f"{as_utc(moment):%Y-%m-%d}"


def _expires(moment: datetime) -> str:
    # Whole days, rounded: a link sent a minute ago expires "in 7 days", not "in 6 days".
    days = round((as_utc(moment) - utcnow()).total_seconds() / 86400)
    when = f"{as_utc(moment):%Y-%m-%d %H:%M} UTC"
    if days >= 1:
        return f"{when} (in {days} day{'s' if days != 1 else ''})"
    return f"{when} (today)"


def _people(names: list[str]) -> str:
    if not names:
        return "an owner or admin"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _form_text(form: Any, key: str) -> str:
    return bounded(form.get(key, "") if isinstance(form, dict) else "", FORM_TEXT_MAX_CHARS)


# --- state -------------------------------------------------------------------------------------


class TeamState(OrgPageState, rx.State):
    members: list[MemberRow] = []
    invites: list[InviteRow] = []
    projects: list[ProjectRow] = []
    project_options: list[ProjectOption] = []  # active projects, for the scoped-editor picker
    transfer_choices: list[MemberChoice] = []
    show_archived: bool = False

    can_manage_team: bool = False
    can_manage_projects: bool = False
    can_manage_org: bool = False
    is_owner: bool = False
    managers: str = ""  # who can change the team ("Olivia Owner or Adam Admin")
    owners: str = ""
    org_display_name: str = ""
    org_address: str = ""

    seats_line: str = ""  # "Seats 4 of 20 (Growth)"
    projects_line: str = ""
    seat_notice: LimitNotice = rx.field(
        default_factory=LimitNotice
    )  # shown ahead of time when the invite form cannot work

    section: str = ""  # which card `error`, `notice` and `limit_notice` belong to

    invite_role: str = "editor"
    invite_project_ids: list[int] = []
    scope_user_id: int = 0  # member being made a scoped editor (project picker open)
    scope_user_name: str = ""
    scope_project_ids: list[int] = []
    confirm_remove_user_id: int = 0
    confirm_leave: bool = False
    renaming_project_id: int = 0
    transfer_user_id: str = ""
    confirm_transfer: bool = False  # the step-up form (what is lost, password, 2FA code) is open
    needs_totp: bool = False  # the acting person has 2FA on: the step-up asks for a code too
    slug_to_confirm: str = ""  # a new address waiting for "Yes, change the address"
    is_member: bool = False  # operators looking at a customer's team are not members

    @rx.var
    def billing_href(self) -> str:
        return routes.org_billing(self.org_address) if self.org_address else ""

    # --- the skeleton's hooks --------------------------------------------------------------

    def _view_action(self) -> policy.Action:
        return Action.team_view

    def _refresh(self, acting: Acting) -> None:
        session, user, org = acting.session, acting.user, acting.org
        # Re-read the role: the handler may just have changed it (ownership transfer).
        actor = policy.actor_for(session=session, user=user, org_id=org.id)
        now = Acting(session=session, user=user, org=org, actor=actor)
        if not now.can(Action.team_view):
            self._forget()
            return
        self.can_manage_team = now.can(Action.team_manage)
        self.can_manage_projects = now.can(Action.project_manage)
        self.can_manage_org = now.can(Action.org_manage)
        self.is_owner = now.can(Action.ownership_transfer)
        self.is_member = actor.role is not None
        self.needs_totp = user.totp_enabled_at is not None
        self.org_display_name, self.org_address = org.name, org.slug

        team = org_service.team_list(session=session, org_id=org.id)
        with_2fa = sso_service.members_with_2fa(session=session, org_id=org.id)
        # A project-scoped viewer of this page sees only the project names it may see.
        visible_names = {
            p.name
            for p in org_service.projects_visible(session=session, actor=actor, org_id=org.id)
        }
        self.members = [
            MemberRow(
                user_id=m.user_id,
                name=m.name,
                email=m.email,
                role_label=role_label(m.role, m.project_scoped),
                role_choice=SCOPED_EDITOR if m.project_scoped else m.role,
                scope=(
                    ", ".join(n for n in m.project_names if n in visible_names) or "No projects yet"
                    if m.project_scoped
                    else "All projects"
                ),
                last_active=_ago(m.last_active_at),
                is_self=m.user_id == user.id,
                two_factor=m.user_id in with_2fa,
                manageable=self.can_manage_team
                and m.user_id != user.id
                and (m.role != OrgRole.owner.value or actor.role == OrgRole.owner),
            )
            for m in team
        ]
        self.transfer_choices = [
            MemberChoice(value=str(m.user_id), label=f"{m.name} ({m.email})")
            for m in team
            if m.user_id != user.id
        ]
        self.managers = _people(org_service.org_admin_names(session=session, org_id=org.id))
        self.owners = _people([m.name for m in team if m.role == OrgRole.owner.value])

        self.invites = [
            InviteRow(
                invite_id=invite.id,
                email=invite.email,
                role_label=role_label(invite.role, invite.project_scoped),
                status="Pending",
                expires=_expires(invite.expires_at),
            )
            for invite in invite_service.invites_pending(session=session, org_id=org.id)
        ]
        projects = org_service.projects_visible(
            session=session, actor=actor, org_id=org.id, include_archived=self.show_archived
        )
        self.projects = [
            ProjectRow(
                project_id=p.id,
                name=p.name,
                archived=p.archived_at is not None,
                created=f"{as_utc(p.created_at):%Y-%m-%d}",
            )
            for p in projects
        ]
        active = [p for p in projects if p.archived_at is None]
        self.project_options = [
            ProjectOption(project_id=p.id, name=p.name, field_id=f"project-{p.id}") for p in active
        ]
        active_ids = {p.id for p in active}
        self.invite_project_ids = [i for i in self.invite_project_ids if i in active_ids]
        self._refresh_usage(acting)

    def _refresh_usage(self, acting: Acting) -> None:
        """The seat and project lines, and the notice that replaces the invite form when full."""
        usage = org_service.plan_usage(session=acting.session, org_id=acting.org.id)
        plan_name = usage["plan"]["name"]
        seats, pending, proj = usage["seats"], usage["pending_invites"], usage["projects"]
        self.seats_line = (
            f"Seats {seats['used']} of {seats['allowed']} ({plan_name})"
            if seats["allowed"] is not None
            else f"Seats {seats['used']}, unlimited ({plan_name})"
        )
        self.projects_line = (
            f"Projects {proj['used']} of {proj['allowed']} active ({plan_name})"
            if proj["allowed"] is not None
            else f"Projects {proj['used']} active, unlimited ({plan_name})"
        )
        if seats["allowed"] is not None and seats["used"] >= seats["allowed"]:
            self.seat_notice = notice_for(
                limit="seats",
                used=seats["used"],
                allowed=seats["allowed"],
                plan_name=plan_name,
                message=(
                    f"Every seat is taken ({usage['members']} members and {pending['used']} "
                    "pending invites), so no one else can be invited. Upgrade in Billing, remove "
                    "a member, or revoke a pending invite to free a seat."
                ),
            )
        elif pending["allowed"] is not None and pending["used"] >= pending["allowed"]:
            self.seat_notice = notice_for(
                limit="pending_invites",
                used=pending["used"],
                allowed=pending["allowed"],
                plan_name=plan_name,
                message=(
                    "Revoke an invite that is no longer needed, wait until someone accepts, "
                    "or upgrade in Billing to send more."
                ),
            )
        else:
            self.seat_notice = LimitNotice()

    # --- helpers ---------------------------------------------------------------------------

    def _say(self, section: str, error: str) -> None:
        """Show `error` in `section` for a request refused before reaching a service."""
        self.section = section
        self._clear_messages()
        self.error = error

    def _local_id(self, section: str, value: Any) -> int | None:
        """An id from the browser for a handler that only changes what is shown."""
        try:
            return browser_id(value)
        except NotFound as error:
            self._say(section, error.message)
            return None

    def _offered_project(self, section: str, value: Any) -> int | None:
        """A project from the page's picker (anything else is "not found, reload")."""
        project_id = self._local_id(section, value)
        if project_id is None:
            return None
        if project_id not in {option.project_id for option in self.project_options}:
            self._say(section, NOT_FOUND_RELOAD)
            return None
        return project_id

    def _member(self, user_id: int) -> MemberRow | None:
        return next((m for m in self.members if m.user_id == user_id), None)

    # --- events: page ----------------------------------------------------------------------

    @rx.event
    async def load(self):
        self.section = ""
        self.confirm_remove_user_id = self.renaming_project_id = self.scope_user_id = 0
        self.confirm_leave = self.confirm_transfer = False
        self.invite_role, self.invite_project_ids = "editor", []
        self.transfer_user_id = self.slug_to_confirm = ""
        opened = await self._open()
        if opened.elsewhere is not None:
            return opened.elsewhere
        acting = opened.acting
        moved_from = bounded(
            self.router.url.query_parameters.get("moved_from", ""), SLUG_QUERY_MAX_CHARS
        )
        if acting is not None and moved_from and org_service.is_slug_shaped(moved_from):
            self.section = "org"
            self.notice = (
                f"The organization's address is now /org/{acting.org.slug}. Links to "
                f"/org/{moved_from} lead here for {org_service.OLD_ADDRESS_REDIRECT_FOR.days} "
                "days; update bookmarks and shared links."
            )

    # --- events: invitations ---------------------------------------------------------------

    @rx.event
    def set_invite_role(self, value: str):
        known = isinstance(value, str) and value in dict(INVITE_ROLE_OPTIONS)
        self.invite_role = value if known else "editor"

    @rx.event
    def toggle_invite_project(self, project_id: int, checked: bool):
        project_id = self._offered_project("invite", project_id)
        if project_id is None:
            return
        ids = [i for i in self.invite_project_ids if i != project_id]
        self.invite_project_ids = ids + [project_id] if checked else ids

    @rx.event
    async def send_invite(self, form: dict):
        self.pending = "invite"
        yield
        try:
            async for update in self._send_invite(form):
                yield update
        finally:
            self.pending = ""

    async def _send_invite(self, form: dict):
        email = _form_text(form, "email").strip()
        scoped = self.invite_role == SCOPED_EDITOR
        role = "editor" if scoped else self.invite_role
        if scoped and not self.invite_project_ids:
            self._say(
                "invite",
                "Pick at least one project for a scoped editor, or choose Editor to give "
                "access to every project.",
            )
            return
        project_ids = list(self.invite_project_ids) if scoped else None
        self.section = "invite"
        sent = await self._act(
            Action.team_manage,
            lambda a: (
                invite_service.invite_create(
                    session=a.session,
                    actor=a.user,
                    org_id=a.org.id,
                    email=email,
                    role=role,
                    project_ids=project_ids,
                    base_url=get_settings().app_base_url,
                )[0].email
            ),
            success=lambda to: (
                f"Invite sent to {to}. The link expires in {invite_service.INVITE_TTL.days} days."
            ),
            form_token=_form_text(form, "form_token"),
            purpose="invite",
        )
        if sent is not None:
            self.invite_role, self.invite_project_ids = "editor", []
            yield rx.set_value("invite-email", "")

    @rx.event
    async def resend_invite(self, invite_id: int):
        self.section = "invites"
        await self._act(
            Action.team_manage,
            lambda a: (
                invite_service.invite_resend(
                    session=a.session,
                    actor=a.user,
                    org_id=a.org.id,
                    invite_id=browser_id(invite_id),
                    base_url=get_settings().app_base_url,
                )[0].email
            ),
            success=lambda to: (
                f"A new invite link was sent to {to}; the previous link no longer works."
            ),
        )

    @rx.event
    async def revoke_invite(self, invite_id: int):
        self.section = "invites"
        await self._act(
            Action.team_manage,
            lambda a: (
                invite_service.invite_revoke(
                    session=a.session,
                    actor=a.user,
                    org_id=a.org.id,
                    invite_id=browser_id(invite_id),
                ).email
            ),
            success=lambda to: f"The invite to {to} was withdrawn; its link now says so.",
        )

    # --- events: members -------------------------------------------------------------------

    @rx.event
    async def change_role(self, user_id: int, value: str):
        user_id = self._local_id("members", user_id)
        if user_id is None:
            return
        value = bounded(value, CHOICE_MAX_CHARS)
        member = self._member(user_id)
        if member is None or value == member.role_choice and value != SCOPED_EDITOR:
            return
        if value == SCOPED_EDITOR:
            self.section = "members"
            self._clear_messages()
            current = {p.strip() for p in member.scope.split(",")}
            self.scope_user_id, self.scope_user_name = user_id, member.name
            self.scope_project_ids = [
                o.project_id for o in self.project_options if o.name in current
            ]
            return
        self.section = "members"
        await self._act(
            Action.team_manage,
            lambda a: org_service.member_change_role(
                session=a.session, actor=a.user, org_id=a.org.id, user_id=user_id, role=value
            ),
            success=f"{member.name} is now {role_label(value).lower()}.",
        )

    @rx.event
    def toggle_scope_project(self, project_id: int, checked: bool):
        project_id = self._offered_project("members", project_id)
        if project_id is None:
            return
        ids = [i for i in self.scope_project_ids if i != project_id]
        self.scope_project_ids = ids + [project_id] if checked else ids

    @rx.event
    def cancel_scope(self):
        self.scope_user_id, self.scope_user_name, self.scope_project_ids = 0, "", []

    @rx.event
    async def save_scope(self):
        user_id, name, ids = self.scope_user_id, self.scope_user_name, list(self.scope_project_ids)
        if not ids:
            self._say(
                "members",
                f"Pick at least one project for {name}, or choose Editor to give access to "
                "every project.",
            )
            return
        self.section = "members"
        done = await self._act(
            Action.team_manage,
            lambda a: org_service.member_change_role(
                session=a.session,
                actor=a.user,
                org_id=a.org.id,
                user_id=user_id,
                role="editor",
                project_ids=ids,
            ),
            success=f"{name} is now an editor limited to the selected projects.",
        )
        if done is not None:
            self.cancel_scope()

    @rx.event
    def ask_remove(self, user_id: int):
        user_id = self._local_id("members", user_id)
        self.confirm_remove_user_id = user_id or 0

    @rx.event
    def cancel_remove(self):
        self.confirm_remove_user_id = 0

    @rx.event
    async def remove_member(self, user_id: int):
        self.confirm_remove_user_id = 0
        self.section = "members"

        def work(a: Acting) -> str:
            member_id = browser_id(user_id)
            member = self._member(member_id)
            org_service.member_remove(
                session=a.session, actor=a.user, org_id=a.org.id, user_id=member_id
            )
            return member.name if member else "The member"

        await self._act(
            Action.team_manage,
            work,
            success=lambda name: f"{name} was removed from the organization; their seat is free.",
        )

    @rx.event
    def ask_leave(self, ask: bool = True):
        self.confirm_leave = bool(ask)

    @rx.event
    async def leave_org(self):
        self.confirm_leave = False
        self.section = "leave"
        # No refresh: the person is no longer a member, and the page is left.
        left = await self._act(
            Action.org_view,
            lambda a: org_service.member_leave(session=a.session, actor=a.user, org_id=a.org.id),
            refresh=False,
        )
        if left is not None:
            return rx.redirect(routes.INDEX)

    # --- events: projects ------------------------------------------------------------------

    @rx.event
    async def set_show_archived(self, checked: bool):
        self.show_archived = bool(checked)
        self.section = "projects"
        await self._act(Action.project_view, lambda a: True)

    @rx.event
    async def create_project(self, form: dict):
        name = _form_text(form, "name")
        self.section = "projects"
        self.pending = "project"
        yield
        try:
            done = await self._act(
                Action.project_manage,
                lambda a: (
                    org_service.project_create(
                        session=a.session, actor=a.user, org_id=a.org.id, name=name
                    ).name
                ),
                success=lambda created: f"Project {created} created.",
                form_token=_form_text(form, "form_token"),
                purpose="project_create",
            )
        finally:
            self.pending = ""
        if done is not None:
            yield rx.set_value("new-project-name", "")

    @rx.event
    def start_rename(self, project_id: int):
        project_id = self._local_id("projects", project_id)
        self.renaming_project_id = project_id or 0

    @rx.event
    def cancel_rename(self):
        self.renaming_project_id = 0

    @rx.event
    async def save_rename(self, form: dict):
        project_id, name = self.renaming_project_id, _form_text(form, "name")
        self.section = "projects"
        done = await self._act(
            Action.project_manage,
            lambda a: (
                org_service.project_rename(
                    session=a.session,
                    actor=a.user,
                    org_id=a.org.id,
                    project_id=browser_id(project_id),
                    name=name,
                ).name
            ),
            success=lambda renamed: f"Project renamed to {renamed}.",
        )
        if done is not None:
            self.renaming_project_id = 0

    @rx.event
    async def archive_project(self, project_id: int):
        self.section = "projects"
        await self._act(
            Action.project_manage,
            lambda a: (
                org_service.project_archive(
                    session=a.session,
                    actor=a.user,
                    org_id=a.org.id,
                    project_id=browser_id(project_id),
                ).name
            ),
            success=lambda name: f"{name} archived. Its assets stay readable; restore it any time.",
        )

    @rx.event
    async def restore_project(self, project_id: int):
        self.section = "projects"
        await self._act(
            Action.project_manage,
            lambda a: (
                org_service.project_restore(
                    session=a.session,
                    actor=a.user,
                    org_id=a.org.id,
                    project_id=browser_id(project_id),
                ).name
            ),
            success=lambda name: f"{name} restored.",
        )

    # --- events: organization --------------------------------------------------------------

    @rx.event
    async def rename_org(self, form: dict):
        name = _form_text(form, "name")
        self.section = "org"
        done = await self._act(
            Action.org_manage,
            lambda a: (
                org_service.org_rename(
                    session=a.session, actor=a.user, org_id=a.org.id, name=name
                ).name
            ),
            success=lambda renamed: f"The organization is now called {renamed}.",
        )
        if done is not None:
            return SessionState.load_org

    @rx.event
    async def change_slug(self, form: dict):
        """First step: check the new address and ask for confirmation (nothing changes yet)."""
        slug = _form_text(form, "slug")
        self.section = "org"
        self.slug_to_confirm = ""
        checked = await self._act(
            Action.org_manage,
            lambda a: org_service.org_change_slug_check(session=a.session, org=a.org, slug=slug),
            refresh=False,
        )
        if checked is None:
            return
        if checked == self.org_address:
            self.notice = f"The address is already /org/{checked}; nothing changed."
            return
        self.slug_to_confirm = checked

    @rx.event
    def cancel_slug_change(self):
        self.slug_to_confirm = ""
        self.section = "org"
        self._clear_messages()

    @rx.event
    async def confirm_slug_change(self, form_token: str):
        slug, old = self.slug_to_confirm, self.org_address
        if not slug:
            self._say("org", "Type the new address and choose Change address first.")
            return
        self.section = "org"
        self.pending = "slug"
        yield
        try:
            new_slug = await self._act(
                Action.org_manage,
                lambda a: (
                    org_service.org_change_slug(
                        session=a.session, actor=a.user, org_id=a.org.id, slug=slug
                    ).slug
                ),
                form_token=form_token,
                purpose="org_slug",
                refresh=False,
            )
        finally:
            self.pending = ""
        self.slug_to_confirm = ""
        if new_slug is not None:
            yield rx.redirect(f"{routes.org_team(new_slug)}?moved_from={old}")

    @rx.event
    def set_transfer_user(self, value: str):
        self.transfer_user_id = bounded(value, CHOICE_MAX_CHARS)
        self.confirm_transfer = False

    @rx.event
    def ask_transfer(self, ask: bool = True):
        """Open the step-up (what the owner loses, password, code) for the chosen member."""
        self.section = "org"
        self._clear_messages()
        if ask and not self.transfer_user_id:
            self.error = "Choose the member who should become the owner."
            return
        self.confirm_transfer = bool(ask)

    @rx.event
    async def transfer_ownership(self, form: dict):
        password = bounded(
            form.get("password", "") if isinstance(form, dict) else "", MAX_PASSWORD_INPUT
        )
        code = bounded(form.get("totp_code", "") if isinstance(form, dict) else "", CODE_MAX_CHARS)
        if not self.transfer_user_id:
            self._say("org", "Choose the member who should become the owner.")
            return
        choice = next((c for c in self.transfer_choices if c.value == self.transfer_user_id), None)
        if choice is None:
            self._say(
                "org",
                "That member is not in this organization any more. Reload the page and choose "
                "again.",
            )
            return
        self.section = "org"
        self.pending = "transfer"
        yield
        try:
            done = await self._act(
                Action.ownership_transfer,
                lambda a: (
                    org_service.ownership_transfer_confirmed(
                        session=a.session,
                        actor=a.user,
                        org_id=a.org.id,
                        new_owner_user_id=browser_id(choice.value),
                        password=password,
                        totp_code=code,
                    )
                    and choice.label
                ),
                success=lambda label: f"{label} now owns the organization; you are an admin.",
                form_token=_form_text(form, "form_token"),
                purpose="ownership_transfer",
            )
        finally:
            self.pending = ""
        if done is not None:
            self.transfer_user_id = ""
            self.confirm_transfer = False
            yield SessionState.load_org

    @rx.event
    async def delete_org(self, form: dict):
        typed = _form_text(form, "confirm_slug")
        self.section = "org"
        done = await self._act(
            Action.org_delete,
            lambda a: org_service.org_delete(
                session=a.session, actor=a.user, org_id=a.org.id, confirm_slug=typed
            ),
        )
        if done is not None:
            return rx.redirect(routes.INDEX)
