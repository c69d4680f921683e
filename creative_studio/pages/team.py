"""/org/<slug>/team: members and roles, invitations, projects, and the organization itself.

Every handler re-derives (user, org, actor) from the session cookie and the URL, checks the
policy, calls one service, commits, and turns a domain error into a visible message. State
holds only read models (dataclasses below): no table rows, tokens or hashes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import reflex as rx
from sqlmodel import Session

from core.clock import as_utc, utcnow
from core.db import get_engine
from core.settings import get_settings
from core import routes
from creative_studio.components.forms import error_callout, field, label_for, success_callout
from creative_studio.components.limit_notice import limit_notice
from creative_studio.layout import app_shell
from models import Organization, User
from models.enums import OrgRole
from services import invites as invite_service
from services import orgs as org_service
from services import policy
from services.errors import DomainError, PlanLimitReached
from services.mail import mail_send
from state.notices import LimitNotice, notice_for, notice_from_error
from state.session import SessionState

Action = policy.Action

# The role picker's values: a scoped editor is an editor with a project list.
SCOPED_EDITOR = "editor_scoped"
INVITE_ROLE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("admin", "Admin"),
    ("editor", "Editor"),
    (SCOPED_EDITOR, "Editor (selected projects only)"),
    ("viewer", "Viewer"),
)
ROLE_HELP = {
    "admin": "Admins manage the team and projects, and run tools. Billing stays with the owner.",
    "editor": "Editors run tools in every project.",
    SCOPED_EDITOR: "Editors who see and run tools only in the projects you pick.",
    "viewer": "Viewers look at projects and assets but cannot run tools.",
}


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
    days = (as_utc(moment) - utcnow()).days
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


def invite_mail_body(
    *, org_name: str, inviter: str, role: str, projects: list[str], url: str, expires_at: datetime
) -> str:
    access = f" in the projects {', '.join(projects)}" if projects else ""
    return (
        f"Hello,\n\n{inviter} invited you to join {org_name} on Creative Studio as "
        f"{role_label(role).lower()}{access}.\n\n"
        f"Open this link to accept the invitation:\n{url}\n\n"
        f"The link works once and expires on {as_utc(expires_at):%Y-%m-%d %H:%M} UTC "
        f"({invite_service.INVITE_TTL.days} days). If you have no account yet, you can create "
        "one from that page with this email address.\n\n"
        "If you were not expecting this invitation, you can ignore this email.\n"
    )


# --- state -------------------------------------------------------------------------------------


class TeamState(rx.State):
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
    seat_notice: LimitNotice = LimitNotice()  # shown ahead of time when the invite form cannot work
    action_notice: LimitNotice = LimitNotice()  # a limit a handler just ran into

    section: str = ""  # which card the messages below belong to
    error: str = ""
    notice: str = ""

    invite_role: str = "editor"
    invite_project_ids: list[int] = []
    scope_user_id: int = 0  # member being made a scoped editor (project picker open)
    scope_user_name: str = ""
    scope_project_ids: list[int] = []
    confirm_remove_user_id: int = 0
    confirm_leave: bool = False
    renaming_project_id: int = 0
    transfer_user_id: str = ""

    # --- helpers ---------------------------------------------------------------------------

    def _clear(self, section: str) -> None:
        self.section = section
        self.error = self.notice = ""
        self.action_notice = LimitNotice()

    def _refresh(self, session: Session, user: User, org: Organization) -> None:
        actor = policy.actor_for(session=session, user=user, org_id=org.id)
        target = policy.target_for(session=session, org_id=org.id)
        self.can_manage_team = bool(policy.can(actor, Action.team_manage, target))
        self.can_manage_projects = bool(policy.can(actor, Action.project_manage, target))
        self.can_manage_org = bool(policy.can(actor, Action.org_manage, target))
        self.is_owner = bool(policy.can(actor, Action.ownership_transfer, target))
        self.org_display_name, self.org_address = org.name, org.slug

        team = org_service.team_list(session=session, org_id=org.id)
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
        names = org_service.org_admin_names(session=session, org_id=org.id)
        self.managers = _people(names)
        self.owners = _people([m.name for m in team if m.role == OrgRole.owner.value])

        self.invites = []
        for invite in invite_service.invites_pending(session=session, org_id=org.id):
            self.invites.append(
                InviteRow(
                    invite_id=invite.id,
                    email=invite.email,
                    role_label=role_label(invite.role, invite.project_scoped),
                    status="Pending",
                    expires=_expires(invite.expires_at),
                )
            )
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

        usage = org_service.plan_usage(session=session, org_id=org.id)
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

    async def _act(
        self,
        section: str,
        action: policy.Action,
        work: Callable[[Session, User, Organization], Any],
        success: str | Callable[[Any], str] = "",
    ) -> Any:
        """Check who acts and whether they may, run one service call, commit, refresh.

        Returns the service's result, or None when it was refused (the message is shown).
        """
        self._clear(section)
        session_state = await self.get_state(SessionState)
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user, org, actor = session_state._org_actor(session)
                policy.require(actor, action, policy.target_for(session=session, org_id=org.id))
                result = work(session, user, org)
                session.commit()
            except PlanLimitReached as error:
                session.rollback()
                self.action_notice = notice_from_error(session=session, error=error)
                return None
            except (DomainError, TypeError, ValueError) as error:
                # TypeError/ValueError: an id from the browser that is not a number.
                session.rollback()
                self.error = (
                    error.message
                    if isinstance(error, DomainError)
                    else "That item was not found. Reload the page and try again."
                )
                try:
                    user, org, _ = session_state._org_actor(session)
                    self._refresh(session, user, org)
                except DomainError:
                    pass
                return None
            session.refresh(org)
            if org.deleted_at is None:
                self._refresh(session, user, org)
        self.notice = success(result) if callable(success) else success
        return result if result is not None else True

    # --- events: page ----------------------------------------------------------------------

    @rx.event
    async def load(self):
        self._clear("")
        self.confirm_remove_user_id = self.renaming_project_id = self.scope_user_id = 0
        self.confirm_leave = False
        self.invite_role, self.invite_project_ids = "editor", []
        self.transfer_user_id = ""
        session_state = await self.get_state(SessionState)
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user, org, actor = session_state._org_actor(session)
                policy.require(
                    actor, Action.team_view, policy.target_for(session=session, org_id=org.id)
                )
            except DomainError:
                self.members, self.invites, self.projects = [], [], []
                return
            self._refresh(session, user, org)

    # --- events: invitations ---------------------------------------------------------------

    @rx.event
    def set_invite_role(self, value: str):
        self.invite_role = value if value in dict(INVITE_ROLE_OPTIONS) else "editor"

    @rx.event
    def toggle_invite_project(self, project_id: int, checked: bool):
        ids = [i for i in self.invite_project_ids if i != project_id]
        self.invite_project_ids = ids + [project_id] if checked else ids

    def _send_invite_mail(
        self, session: Session, user: User, org: Organization, invite, url: str
    ) -> None:
        names = [o.name for o in self.project_options if o.project_id in (invite.project_ids or [])]
        mail_send(
            session=session,
            to=invite.email,
            subject=f"{user.name or user.email} invited you to {org.name} on Creative Studio",
            body_text=invite_mail_body(
                org_name=org.name,
                inviter=user.name or user.email,
                role=invite.role,
                projects=names,
                url=url,
                expires_at=invite.expires_at,
            ),
        )

    @rx.event
    async def send_invite(self, form: dict):
        email = str(form.get("email", "")).strip()
        scoped = self.invite_role == SCOPED_EDITOR
        role = "editor" if scoped else self.invite_role
        if scoped and not self.invite_project_ids:
            self._clear("invite")
            self.error = (
                "Pick at least one project for a scoped editor, or choose Editor to give "
                "access to every project."
            )
            return

        def work(session: Session, user: User, org: Organization):
            invite, url = invite_service.invite_create(
                session=session,
                actor=user,
                org_id=org.id,
                email=email,
                role=role,
                project_ids=list(self.invite_project_ids) if scoped else None,
                base_url=get_settings().app_base_url,
            )
            self._send_invite_mail(session, user, org, invite, url)
            return invite.email

        sent = await self._act(
            "invite",
            Action.team_manage,
            work,
            lambda to: (
                f"Invite sent to {to}. The link expires in {invite_service.INVITE_TTL.days} days."
            ),
        )
        if sent is not None:
            self.invite_role, self.invite_project_ids = "editor", []
            return rx.set_value("invite-email", "")

    @rx.event
    async def resend_invite(self, invite_id: int):
        def work(session: Session, user: User, org: Organization):
            invite, url = invite_service.invite_resend(
                session=session,
                actor=user,
                org_id=org.id,
                invite_id=int(invite_id),
                base_url=get_settings().app_base_url,
            )
            self._send_invite_mail(session, user, org, invite, url)
            return invite.email

        await self._act(
            "invites",
            Action.team_manage,
            work,
            lambda to: f"A new invite link was sent to {to}; the previous link no longer works.",
        )

    @rx.event
    async def revoke_invite(self, invite_id: int):
        await self._act(
            "invites",
            Action.team_manage,
            lambda s, u, o: (
                invite_service.invite_revoke(
                    session=s, actor=u, org_id=o.id, invite_id=int(invite_id)
                ).email
            ),
            lambda to: f"The invite to {to} was withdrawn; its link now says so.",
        )

    # --- events: members -------------------------------------------------------------------

    @rx.event
    async def change_role(self, user_id: int, value: str):
        user_id = int(user_id)
        member = next((m for m in self.members if m.user_id == user_id), None)
        if member is None or value == member.role_choice and value != SCOPED_EDITOR:
            return
        if value == SCOPED_EDITOR:
            self._clear("members")
            current = {p.strip() for p in member.scope.split(",")}
            self.scope_user_id, self.scope_user_name = user_id, member.name
            self.scope_project_ids = [
                o.project_id for o in self.project_options if o.name in current
            ]
            return
        await self._act(
            "members",
            Action.team_manage,
            lambda s, u, o: org_service.member_change_role(
                session=s, actor=u, org_id=o.id, user_id=user_id, role=value
            ),
            f"{member.name} is now {role_label(value).lower()}.",
        )

    @rx.event
    def toggle_scope_project(self, project_id: int, checked: bool):
        ids = [i for i in self.scope_project_ids if i != project_id]
        self.scope_project_ids = ids + [project_id] if checked else ids

    @rx.event
    def cancel_scope(self):
        self.scope_user_id, self.scope_user_name, self.scope_project_ids = 0, "", []

    @rx.event
    async def save_scope(self):
        user_id, name, ids = self.scope_user_id, self.scope_user_name, list(self.scope_project_ids)
        if not ids:
            self._clear("members")
            self.error = (
                f"Pick at least one project for {name}, or choose Editor to give access to "
                "every project."
            )
            return
        done = await self._act(
            "members",
            Action.team_manage,
            lambda s, u, o: org_service.member_change_role(
                session=s, actor=u, org_id=o.id, user_id=user_id, role="editor", project_ids=ids
            ),
            f"{name} is now an editor limited to the selected projects.",
        )
        if done is not None:
            self.cancel_scope()

    @rx.event
    def ask_remove(self, user_id: int):
        self.confirm_remove_user_id = int(user_id)

    @rx.event
    def cancel_remove(self):
        self.confirm_remove_user_id = 0

    @rx.event
    async def remove_member(self, user_id: int):
        user_id = int(user_id)
        member = next((m for m in self.members if m.user_id == user_id), None)
        name = member.name if member else "The member"
        self.confirm_remove_user_id = 0
        await self._act(
            "members",
            Action.team_manage,
            lambda s, u, o: org_service.member_remove(
                session=s, actor=u, org_id=o.id, user_id=user_id
            ),
            f"{name} was removed from the organization; their seat is free.",
        )

    @rx.event
    def ask_leave(self, ask: bool = True):
        self.confirm_leave = bool(ask)

    @rx.event
    async def leave_org(self):
        self.confirm_leave = False
        left = await self._act(
            "leave",
            Action.org_view,
            lambda s, u, o: org_service.member_leave(session=s, actor=u, org_id=o.id),
        )
        if left is not None:
            return rx.redirect(routes.INDEX)

    # --- events: projects ------------------------------------------------------------------

    @rx.event
    async def set_show_archived(self, checked: bool):
        self.show_archived = bool(checked)
        await self._act("projects", Action.project_view, lambda s, u, o: True)

    @rx.event
    async def create_project(self, form: dict):
        name = str(form.get("name", ""))
        done = await self._act(
            "projects",
            Action.project_manage,
            lambda s, u, o: (
                org_service.project_create(session=s, actor=u, org_id=o.id, name=name).name
            ),
            lambda created: f"Project {created} created.",
        )
        if done is not None:
            return rx.set_value("new-project-name", "")

    @rx.event
    def start_rename(self, project_id: int):
        self.renaming_project_id = int(project_id)

    @rx.event
    def cancel_rename(self):
        self.renaming_project_id = 0

    @rx.event
    async def save_rename(self, form: dict):
        project_id, name = self.renaming_project_id, str(form.get("name", ""))
        done = await self._act(
            "projects",
            Action.project_manage,
            lambda s, u, o: (
                org_service.project_rename(
                    session=s, actor=u, org_id=o.id, project_id=project_id, name=name
                ).name
            ),
            lambda renamed: f"Project renamed to {renamed}.",
        )
        if done is not None:
            self.renaming_project_id = 0

    @rx.event
    async def archive_project(self, project_id: int):
        await self._act(
            "projects",
            Action.project_manage,
            lambda s, u, o: (
                org_service.project_archive(
                    session=s, actor=u, org_id=o.id, project_id=int(project_id)
                ).name
            ),
            lambda name: f"{name} archived. Its assets stay readable; restore it any time.",
        )

    @rx.event
    async def restore_project(self, project_id: int):
        await self._act(
            "projects",
            Action.project_manage,
            lambda s, u, o: (
                org_service.project_restore(
                    session=s, actor=u, org_id=o.id, project_id=int(project_id)
                ).name
            ),
            lambda name: f"{name} restored.",
        )

    # --- events: organization --------------------------------------------------------------

    @rx.event
    async def rename_org(self, form: dict):
        name = str(form.get("name", ""))
        done = await self._act(
            "org",
            Action.org_manage,
            lambda s, u, o: org_service.org_rename(session=s, actor=u, org_id=o.id, name=name).name,
            lambda renamed: f"The organization is now called {renamed}.",
        )
        if done is not None:
            return SessionState.load_org

    @rx.event
    async def change_slug(self, form: dict):
        slug = str(form.get("slug", ""))
        new_slug = await self._act(
            "org",
            Action.org_manage,
            lambda s, u, o: (
                org_service.org_change_slug(session=s, actor=u, org_id=o.id, slug=slug).slug
            ),
        )
        if new_slug is not None:
            return rx.redirect(routes.org_team(new_slug))

    @rx.event
    def set_transfer_user(self, value: str):
        self.transfer_user_id = value

    @rx.event
    async def transfer_ownership(self):
        if not self.transfer_user_id:
            self._clear("org")
            self.error = "Choose the member who should become the owner."
            return
        choice = next((c for c in self.transfer_choices if c.value == self.transfer_user_id), None)
        if choice is None:
            self._clear("org")
            self.error = "That member is not in this organization any more. Reload the page and choose again."
            return
        new_owner_id = int(choice.value)
        done = await self._act(
            "org",
            Action.ownership_transfer,
            lambda s, u, o: org_service.ownership_transfer(
                session=s, actor=u, org_id=o.id, new_owner_user_id=new_owner_id
            ),
            f"{choice.label if choice else 'The member'} now owns the organization; "
            "you are an admin.",
        )
        if done is not None:
            self.transfer_user_id = ""
            return SessionState.load_org

    @rx.event
    async def delete_org(self, form: dict):
        typed = str(form.get("confirm_slug", ""))
        done = await self._act(
            "org",
            Action.org_delete,
            lambda s, u, o: org_service.org_delete(
                session=s, actor=u, org_id=o.id, confirm_slug=typed
            ),
        )
        if done is not None:
            return rx.redirect(routes.INDEX)


# --- components --------------------------------------------------------------------------------


def _billing_href():
    return "/org/" + SessionState.org_slug + "/billing"


def _messages(section: str) -> rx.Component:
    return rx.cond(
        TeamState.section == section,
        rx.vstack(
            error_callout(TeamState.error),
            success_callout(TeamState.notice),
            limit_notice(TeamState.action_notice, _billing_href()),
            spacing="2",
            width="100%",
        ),
    )


def _card(title: str, *children, aside=None) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.flex(
                rx.heading(title, size="4", as_="h2"),
                rx.spacer(),
                aside if aside is not None else rx.fragment(),
                width="100%",
                align="center",
                wrap="wrap",
                gap="2",
            ),
            *children,
            spacing="4",
            width="100%",
        ),
        width="100%",
    )


def _muted(*children) -> rx.Component:
    return rx.text(*children, size="2", color=rx.color("gray", 11))


def _read_only_line(*children) -> rx.Component:
    return rx.hstack(
        rx.icon("lock", size=14, color=rx.color("gray", 10), flex_shrink="0"),
        _muted(*children),
        align="center",
        spacing="2",
        role="note",
    )


def _table(headers: list[str], body: rx.Component) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(*[rx.table.column_header_cell(h) for h in headers]),
            ),
            rx.table.body(body),
            width="100%",
            variant="ghost",
        ),
        overflow_x="auto",
        width="100%",
    )


# Members ----------------------------------------------------------------------------------------


def _role_picker(row: MemberRow) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(aria_label="Role of " + row.name, min_width="11rem"),
        rx.select.content(
            rx.cond(TeamState.is_owner, rx.select.item("Owner", value="owner")),
            rx.select.item("Admin", value="admin"),
            rx.select.item("Editor", value="editor"),
            rx.select.item("Editor (selected projects)", value=SCOPED_EDITOR),
            rx.select.item("Viewer", value="viewer"),
        ),
        value=row.role_choice,
        on_change=lambda value: TeamState.change_role(row.user_id, value),
        size="2",
    )


def _member_actions(row: MemberRow) -> rx.Component:
    return rx.cond(
        row.manageable,
        rx.cond(
            TeamState.confirm_remove_user_id == row.user_id,
            rx.hstack(
                rx.button(
                    "Confirm remove",
                    size="1",
                    color_scheme="red",
                    on_click=TeamState.remove_member(row.user_id),
                ),
                rx.button(
                    "Keep",
                    size="1",
                    variant="soft",
                    color_scheme="gray",
                    on_click=TeamState.cancel_remove,
                ),  # fmt: skip
                spacing="2",
            ),
            rx.button(
                "Remove",
                size="1",
                variant="soft",
                color_scheme="red",
                aria_label="Remove " + row.name,
                on_click=TeamState.ask_remove(row.user_id),
            ),
        ),
        rx.cond(row.is_self, rx.badge("You", color_scheme="iris", variant="soft")),
    )


def _member_row(row: MemberRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.vstack(
                rx.text(row.name, weight="medium", size="2"),
                rx.text(row.email, size="1", color=rx.color("gray", 11)),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.cond(row.manageable, _role_picker(row), rx.badge(row.role_label, variant="soft")),
            vertical_align="middle",
        ),
        rx.table.cell(rx.text(row.scope, size="2"), vertical_align="middle"),
        rx.table.cell(rx.text(row.last_active, size="2"), vertical_align="middle"),
        rx.table.cell(_member_actions(row), vertical_align="middle"),
        aria_label=row.name,
    )


def _project_checkboxes(selected, on_toggle, prefix: str) -> rx.Component:
    return rx.cond(
        TeamState.project_options.length() > 0,
        rx.flex(
            rx.foreach(
                TeamState.project_options,
                lambda option: rx.hstack(
                    rx.checkbox(
                        id=prefix + option.field_id,
                        checked=selected.contains(option.project_id),
                        on_change=lambda checked: on_toggle(option.project_id, checked),
                    ),
                    label_for(option.name, prefix + option.field_id, weight="regular"),
                    align="center",
                    spacing="2",
                ),
            ),
            column_gap="1.5rem",
            row_gap="0.5rem",
            wrap="wrap",
            role="group",
            aria_label="Projects",
        ),
        _muted("There are no active projects yet. Create one in Projects below, or choose Editor."),
    )


def _scope_panel() -> rx.Component:
    return rx.cond(
        TeamState.scope_user_id != 0,
        rx.card(
            rx.vstack(
                rx.text(
                    "Which projects may ",
                    rx.text.strong(TeamState.scope_user_name),
                    " see and work in?",
                    size="2",
                ),
                _project_checkboxes(
                    TeamState.scope_project_ids, TeamState.toggle_scope_project, "scope-"
                ),
                rx.hstack(
                    rx.button("Save project access", on_click=TeamState.save_scope),
                    rx.button(
                        "Cancel",
                        variant="soft",
                        color_scheme="gray",
                        on_click=TeamState.cancel_scope,
                    ),  # fmt: skip
                    spacing="2",
                ),
                spacing="3",
                width="100%",
            ),
            variant="surface",
            width="100%",
        ),
    )


def _leave() -> rx.Component:
    return rx.vstack(
        rx.divider(),
        _messages("leave"),
        rx.cond(
            TeamState.confirm_leave,
            rx.flex(
                _muted(
                    "Leave ",
                    rx.text.strong(TeamState.org_display_name),
                    "? You lose access to its projects and assets until someone invites you again.",
                ),
                rx.hstack(
                    rx.button("Yes, leave", color_scheme="red", on_click=TeamState.leave_org),
                    rx.button(
                        "Stay",
                        variant="soft",
                        color_scheme="gray",
                        on_click=TeamState.ask_leave(False),
                    ),  # fmt: skip
                    spacing="2",
                ),
                gap="3",
                align="center",
                wrap="wrap",
                justify="between",
                width="100%",
            ),
            rx.flex(
                _muted("Leaving removes your access to this organization."),
                rx.button(
                    rx.icon("log-out", size=14),
                    "Leave organization",
                    variant="soft",
                    color_scheme="red",
                    on_click=TeamState.ask_leave(True),
                ),
                gap="3",
                align="center",
                wrap="wrap",
                justify="between",
                width="100%",
            ),
        ),
        spacing="3",
        width="100%",
    )


def _members_card() -> rx.Component:
    return _card(
        "Members",
        rx.cond(
            ~TeamState.can_manage_team,
            _read_only_line(
                "Only owners and admins can invite, remove or change members. Ask ",
                TeamState.managers,
                ".",
            ),
        ),
        _messages("members"),
        _scope_panel(),
        _table(
            ["Member", "Role", "Projects", "Last active", ""],
            rx.foreach(TeamState.members, _member_row),
        ),
        _leave(),
        aside=rx.badge(TeamState.seats_line, size="2", variant="surface"),
    )


# Invitations ------------------------------------------------------------------------------------


def _invite_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.flex(
                rx.box(
                    field(
                        "Email address",
                        "email",
                        "email",
                        field_id="invite-email",
                        required=True,
                        placeholder="name@company.com",
                    ),
                    flex="2",
                    min_width="14rem",
                ),
                rx.vstack(
                    label_for("Role", "invite-role"),
                    rx.select.root(
                        rx.select.trigger(id="invite-role", width="100%"),
                        rx.select.content(
                            *[
                                rx.select.item(text, value=value)
                                for value, text in INVITE_ROLE_OPTIONS
                            ]
                        ),
                        value=TeamState.invite_role,
                        on_change=TeamState.set_invite_role,
                        size="3",
                    ),
                    spacing="1",
                    flex="1",
                    min_width="14rem",
                ),
                gap="3",
                wrap="wrap",
                width="100%",
            ),
            rx.match(
                TeamState.invite_role,
                *[(value, _muted(text)) for value, text in ROLE_HELP.items()],
                rx.fragment(),
            ),
            rx.cond(
                TeamState.invite_role == SCOPED_EDITOR,
                rx.vstack(
                    rx.text("Projects this editor may use", size="2", weight="medium"),
                    _project_checkboxes(
                        TeamState.invite_project_ids, TeamState.toggle_invite_project, "invite-"
                    ),
                    spacing="2",
                    width="100%",
                ),
            ),
            rx.button(rx.icon("send", size=16), "Send invite", type="submit", size="3"),
            spacing="3",
            width="100%",
        ),
        on_submit=TeamState.send_invite,
        reset_on_submit=False,
        width="100%",
    )


def _invite_card() -> rx.Component:
    return rx.cond(
        TeamState.can_manage_team,
        _card(
            "Invite someone",
            _muted(
                "They get an email with a link that works for 7 days. Invites count as seats "
                "until they are accepted, revoked or expire."
            ),
            _messages("invite"),
            rx.cond(
                TeamState.seat_notice.limit != "",
                limit_notice(TeamState.seat_notice, _billing_href(), role="status"),
                _invite_form(),
            ),
        ),
    )


def _invite_row(row: InviteRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row.email, size="2", weight="medium")),
        rx.table.cell(rx.text(row.role_label, size="2")),
        rx.table.cell(rx.badge(row.status, color_scheme="amber", variant="soft")),
        rx.table.cell(rx.text(row.expires, size="2")),
        rx.table.cell(
            rx.cond(
                TeamState.can_manage_team,
                rx.hstack(
                    rx.button(
                        "Resend",
                        size="1",
                        variant="soft",
                        aria_label="Resend invite to " + row.email,
                        on_click=TeamState.resend_invite(row.invite_id),
                    ),
                    rx.button(
                        "Revoke",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        aria_label="Revoke invite to " + row.email,
                        on_click=TeamState.revoke_invite(row.invite_id),
                    ),
                    spacing="2",
                ),
            )
        ),
        aria_label=row.email,
    )


def _invites_card() -> rx.Component:
    return _card(
        "Pending invites",
        _messages("invites"),
        rx.cond(
            TeamState.invites.length() > 0,
            _table(
                ["Email", "Role", "Status", "Expires", ""],
                rx.foreach(TeamState.invites, _invite_row),
            ),
            _muted(
                "No pending invites. ",
                rx.cond(
                    TeamState.can_manage_team,
                    "Invite someone above; their invite shows here until they accept it.",
                    "Invites that owners and admins send show here until they are accepted.",
                ),
            ),
        ),
        _muted(
            "Expired invites drop off this list and free their seat; invite the address again "
            "to send a fresh link."
        ),
    )


# Projects ---------------------------------------------------------------------------------------


def _project_row(row: ProjectRow) -> rx.Component:
    renaming = TeamState.renaming_project_id == row.project_id
    return rx.table.row(
        rx.table.row_header_cell(
            rx.cond(
                renaming,
                rx.form(
                    rx.hstack(
                        rx.box(
                            field(
                                "New name",
                                "name",
                                field_id="rename-project",
                                default_value=row.name,
                                required=True,
                            ),
                            min_width="12rem",
                        ),
                        rx.button("Save name", type="submit", size="2"),
                        rx.button(
                            "Cancel",
                            type="button",
                            size="2",
                            variant="soft",
                            color_scheme="gray",
                            on_click=TeamState.cancel_rename,
                        ),  # fmt: skip
                        align="end",
                        spacing="2",
                        wrap="wrap",
                    ),
                    on_submit=TeamState.save_rename,
                ),
                rx.text(row.name, size="2", weight="medium"),
            )
        ),
        rx.table.cell(
            rx.cond(
                row.archived,
                rx.badge("Archived", color_scheme="gray"),
                rx.badge("Active", color_scheme="green"),
            ),
            vertical_align="middle",
        ),
        rx.table.cell(rx.text(row.created, size="2"), vertical_align="middle"),
        rx.table.cell(
            rx.cond(
                TeamState.can_manage_projects & ~renaming,
                rx.hstack(
                    rx.button(
                        "Rename",
                        size="1",
                        variant="soft",
                        aria_label="Rename " + row.name,
                        on_click=TeamState.start_rename(row.project_id),
                    ),
                    rx.cond(
                        row.archived,
                        rx.button(
                            "Restore",
                            size="1",
                            variant="soft",
                            aria_label="Restore " + row.name,
                            on_click=TeamState.restore_project(row.project_id),
                        ),
                        rx.button(
                            "Archive",
                            size="1",
                            variant="soft",
                            color_scheme="gray",
                            aria_label="Archive " + row.name,
                            on_click=TeamState.archive_project(row.project_id),
                        ),
                    ),
                    spacing="2",
                ),
            ),
            vertical_align="middle",
        ),
        aria_label=row.name,
    )


def _projects_card() -> rx.Component:
    return _card(
        "Projects",
        rx.cond(
            ~TeamState.can_manage_projects,
            _read_only_line(
                "Only owners and admins can create, rename or archive projects. Ask ",
                TeamState.managers,
                ".",
            ),
        ),
        _messages("projects"),
        rx.cond(
            TeamState.can_manage_projects,
            rx.form(
                rx.flex(
                    rx.box(
                        field(
                            "New project name",
                            "name",
                            field_id="new-project-name",
                            required=True,
                            placeholder="Summer campaign",
                        ),
                        flex="1",
                        min_width="14rem",
                    ),
                    rx.button(rx.icon("plus", size=16), "Create project", type="submit", size="3"),
                    gap="3",
                    align="end",
                    wrap="wrap",
                    width="100%",
                ),
                on_submit=TeamState.create_project,
                reset_on_submit=False,
                width="100%",
            ),
        ),
        rx.hstack(
            rx.switch(
                id="show-archived",
                checked=TeamState.show_archived,
                on_change=TeamState.set_show_archived,
            ),
            label_for("Show archived projects", "show-archived", weight="regular"),
            align="center",
            spacing="2",
        ),
        rx.cond(
            TeamState.projects.length() > 0,
            _table(
                ["Project", "Status", "Created", ""], rx.foreach(TeamState.projects, _project_row)
            ),
            _muted(
                "No projects yet. Projects group your work and let you limit editors to "
                "some of it.",
                rx.cond(TeamState.can_manage_projects, " Create the first one above.", ""),
            ),
        ),
        aside=rx.badge(TeamState.projects_line, size="2", variant="surface"),
    )


# Organization -----------------------------------------------------------------------------------


def _inline_form(
    label: str,
    name: str,
    field_id: str,
    button: str,
    handler,
    color: str = "",
    hint: str = "",
    **props,
):
    # The hint goes below the row so the button lines up with the input, not the hint.
    return rx.form(
        rx.flex(
            rx.box(
                field(label, name, field_id=field_id, required=True, **props),
                flex="1",
                min_width="14rem",
            ),
            rx.button(
                button,
                type="submit",
                size="3",
                variant="soft",
                **({"color_scheme": color} if color else {}),
            ),  # fmt: skip
            gap="3",
            align="end",
            wrap="wrap",
            width="100%",
        ),
        rx.text(hint, size="1", color=rx.color("gray", 10), margin_top="0.25rem")
        if hint
        else rx.fragment(),
        on_submit=handler,
        reset_on_submit=False,
        width="100%",
    )


def _org_card() -> rx.Component:
    return _card(
        "Organization",
        rx.cond(
            ~TeamState.can_manage_org,
            _read_only_line(
                "Only owners and admins can rename the organization or change its address, and "
                "only the owner can transfer or delete it. Ask ",
                TeamState.owners,
                ".",
            ),
        ),
        _messages("org"),
        rx.cond(
            TeamState.can_manage_org,
            rx.vstack(
                _inline_form(
                    "Organization name",
                    "name",
                    "org-name",
                    "Rename",
                    TeamState.rename_org,
                    default_value=TeamState.org_display_name,
                    autocomplete="organization",
                ),
                _inline_form(
                    "Address (slug)",
                    "slug",
                    "org-slug",
                    "Change address",
                    TeamState.change_slug,
                    default_value=TeamState.org_address,
                    hint="Changing it changes every link: /org/<address>/... Old links and "
                    "bookmarks stop working, and the old address is not reused.",
                ),
                spacing="4",
                width="100%",
            ),
        ),
        rx.cond(
            TeamState.is_owner,
            rx.vstack(
                rx.divider(),
                rx.heading("Transfer ownership", size="3", as_="h3"),
                _muted(
                    "The member you choose becomes the owner (billing included); you become an admin."
                ),
                rx.cond(
                    TeamState.transfer_choices.length() > 0,
                    rx.flex(
                        rx.vstack(
                            label_for("New owner", "transfer-owner"),
                            rx.select.root(
                                rx.select.trigger(
                                    id="transfer-owner",
                                    placeholder="Choose a member",
                                    width="100%",
                                ),
                                rx.select.content(
                                    rx.foreach(
                                        TeamState.transfer_choices,
                                        lambda c: rx.select.item(c.label, value=c.value),
                                    )
                                ),
                                value=TeamState.transfer_user_id,
                                on_change=TeamState.set_transfer_user,
                                size="3",
                            ),
                            spacing="1",
                            flex="1",
                            min_width="14rem",
                        ),
                        rx.button(
                            "Transfer ownership",
                            size="3",
                            variant="soft",
                            color_scheme="amber",
                            on_click=TeamState.transfer_ownership,
                        ),
                        gap="3",
                        align="end",
                        wrap="wrap",
                        width="100%",
                    ),
                    _muted("Invite someone first: ownership can only go to an existing member."),
                ),
                rx.divider(),
                rx.heading("Delete organization", size="3", as_="h3"),
                _muted(
                    "Deleting removes access for every member and withdraws pending invites. "
                    "To confirm, type the address ",
                    rx.code(TeamState.org_address),
                    ".",
                ),
                _inline_form(
                    "Type the address to confirm",
                    "confirm_slug",
                    "delete-confirm",
                    "Delete organization",
                    TeamState.delete_org,
                    color="red",
                ),
                spacing="3",
                width="100%",
            ),
        ),
    )


@rx.page(
    route=f"/org/[{routes.ORG_ROUTE_ARG}]/team",
    title="Team · Creative Studio",
    on_load=[SessionState.load_org, TeamState.load],
)
def team_page() -> rx.Component:
    return app_shell(
        "team",
        "Team",
        "Members, roles, project access and invitations.",
        _members_card(),
        _invite_card(),
        _invites_card(),
        _projects_card(),
        _org_card(),
    )
