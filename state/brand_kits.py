"""/org/<slug>/settings/brand: the organization's brand kit and each project's own.

Owners, admins and editors edit (a project-scoped editor only its projects' kits); viewers read
and are told why they cannot change anything. Every handler goes through the org-page skeleton.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from core import routes
from services import brand_kits as kit_service
from services import orgs as org_service
from services import policy
from services.errors import DomainError
from state.org_page import Acting, OrgPageState, bounded, browser_id, form_fields

Action = policy.Action

ORG_SCOPE = "org"
# One character over each service limit, so an over-long value is named, never cut silently.
MAX_NAME_INPUT = kit_service.MAX_NAME + 1
MAX_AUDIENCE_INPUT = kit_service.MAX_AUDIENCE + 1
MAX_LIST_INPUT = (kit_service.MAX_ITEM + 1) * (kit_service.MAX_ITEMS + 1)
LIST_FIELDS = kit_service.LIST_FIELDS

VIEWER_REASON = (
    "Viewers can read brand kits but not change them. Ask an owner, admin or editor to "
    "make the change."
)


@dataclass
class KitRow:
    scope: str  # "org" or a project id as text
    where: str  # "Whole organization" / project name
    name: str
    updated: str


@dataclass
class ScopeChoice:
    value: str
    label: str


class BrandKitsState(OrgPageState, rx.State):
    kits: list[KitRow] = []
    scope_choices: list[ScopeChoice] = []
    scope: str = ORG_SCOPE
    exists: bool = False  # the chosen scope has a kit of its own
    applies: str = ""  # "Projects without a kit of their own use this one" / fallback note
    can_edit: bool = False
    edit_reason: str = ""
    form_key: int = 0  # changes when another scope is loaded, so the form shows its values

    name: str = ""
    audience: str = ""
    voice: str = ""
    dos: str = ""
    donts: str = ""
    preferred_terms: str = ""
    avoided_terms: str = ""
    product_facts: str = ""
    example_phrases: str = ""

    org_address: str = ""

    @rx.var
    def assistant_href(self) -> str:
        return routes.org_assistant(self.org_address) if self.org_address else ""

    def _view_action(self) -> policy.Action:
        return Action.org_view

    def _project_id(self) -> int | None:
        return None if self.scope == ORG_SCOPE else browser_id(self.scope)

    def _refresh(self, acting: Acting) -> None:
        session, org = acting.session, acting.org
        self.org_address = org.slug
        projects = org_service.projects_visible(session=session, actor=acting.actor, org_id=org.id)
        names = {p.id: p.name for p in projects}
        self.scope_choices = [ScopeChoice(ORG_SCOPE, "Whole organization")] + [
            ScopeChoice(str(p.id), p.name) for p in projects
        ]
        if self.scope not in {c.value for c in self.scope_choices}:
            self.scope = ORG_SCOPE
        self.kits = [
            KitRow(
                scope=ORG_SCOPE if kit.project_id is None else str(kit.project_id),
                where="Whole organization"
                if kit.project_id is None
                else names.get(kit.project_id, ""),
                name=kit.name,
                updated=f"{kit.updated_at:%Y-%m-%d %H:%M} UTC",
            )
            for kit in kit_service.brand_kits_list(session=session, org_id=org.id)
            if kit.project_id is None or kit.project_id in names
        ]
        project_id = self._project_id()
        kit = kit_service.brand_kit_get(session=session, org_id=org.id, project_id=project_id)
        self.exists = kit is not None
        self._fill(kit)
        if project_id is None:
            self.applies = "Projects without a kit of their own use this one."
        elif kit is None:
            fallback = kit_service.brand_kit_for(session=session, org_id=org.id, project_id=None)
            self.applies = (
                f"This project has no kit of its own: it uses the organization's ({fallback.name})."
                if fallback
                else "Neither this project nor the organization has a kit yet."
            )
        else:
            self.applies = "Work in this project uses this kit instead of the organization's."
        self.can_edit = acting.can(Action.brand_kit_manage, project_id=project_id)
        if self.can_edit:
            self.edit_reason = ""
        elif acting.actor.role == "viewer":
            self.edit_reason = VIEWER_REASON
        else:
            target = policy.target_for(session=session, org_id=org.id, project_id=project_id)
            self.edit_reason = policy.can(acting.actor, Action.brand_kit_manage, target).message

    def _fill(self, kit) -> None:
        self.name = kit.name if kit else ""
        self.audience = kit.audience if kit else ""
        for name in LIST_FIELDS:
            setattr(self, name, "\n".join(getattr(kit, name) or []) if kit else "")
        self.form_key += 1

    # --- events ----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        opened = await self._open()
        return opened.elsewhere

    @rx.event
    async def pick_scope(self, value: str):
        value = bounded(value, 24)
        if value != ORG_SCOPE:
            try:
                browser_id(value)
            except DomainError as error:
                self.error = error.message
                return
        await self._act(self._view_action(), lambda a: setattr(self, "scope", value))

    @rx.event
    async def save(self, form: dict):
        form = form_fields(form)
        try:
            project_id = self._project_id()
        except DomainError as error:
            self.error = error.message
            return
        data = kit_service.BrandKitInput(
            name=bounded(form.get("name"), MAX_NAME_INPUT),
            audience=bounded(form.get("audience"), MAX_AUDIENCE_INPUT),
            **{
                name: kit_service.split_lines(bounded(form.get(name), MAX_LIST_INPUT))
                for name in LIST_FIELDS
            },
        )
        await self._act(
            Action.brand_kit_manage,
            lambda a: (
                kit_service.brand_kit_save(
                    session=a.session,
                    user=a.user,
                    org_id=a.org.id,
                    project_id=project_id,
                    data=data,
                ).name
            ),
            project_id=project_id,
            success=lambda name: (
                f"Saved “{name}”. New Assistant replies and Studio text runs use it."
            ),
        )

    @rx.event
    async def remove(self):
        try:
            project_id = self._project_id()
        except DomainError as error:
            self.error = error.message
            return
        await self._act(
            Action.brand_kit_manage,
            lambda a: kit_service.brand_kit_delete(
                session=a.session, user=a.user, org_id=a.org.id, project_id=project_id
            ),
            project_id=project_id,
            success="Brand kit removed.",
        )
