"""/org/<slug>/settings/api: API keys (created, shown once, revoked) and the API controls.

Owners and admins only (policy `api_keys_manage`); everyone else gets the policy's message.
Every handler goes through the org-page skeleton. The new key's secret is the one secret this
page sends to the browser, once: it is cleared when dismissed, on the next load, and it is
never stored (a repeated submit of the same form shows no key and creates none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import reflex as rx

from core import routes
from core.clock import as_utc, utcnow
from services import api_keys as key_service
from services import models_registry as registry
from services import orgs as org_service
from services import policy
from state.org_page import Acting, OrgPageState, bounded, browser_id, form_fields

Action = policy.Action
FORM_TEXT_MAX_CHARS = 200
EXPIRY_CHOICES: tuple[tuple[str, str], ...] = (
    ("never", "Never"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
)
NO_PROJECT = "all"
DEFAULT_SCOPES = [key_service.SCOPE_MODELS_READ, key_service.SCOPE_CHAT_WRITE]


@dataclass
class KeyRow:
    key_id: int
    name: str
    prefix: str
    scopes: str
    project: str
    created: str
    last_used: str
    expires: str
    daily_cap: str
    status: str


@dataclass
class ScopeOption:
    value: str
    label: str
    field_id: str


@dataclass
class Choice:
    value: str
    label: str


@dataclass
class ModelOption:
    key: str
    label: str
    field_id: str
    note: str  # why the plan does not allow it ("" when it does)


def _when(moment: datetime | None, never: str = "Never") -> str:
    return f"{as_utc(moment):%Y-%m-%d %H:%M} UTC" if moment is not None else never


def _row(view: key_service.ApiKeyView) -> KeyRow:
    return KeyRow(
        key_id=view.id,
        name=view.name,
        prefix=f"{view.prefix}…",
        scopes=", ".join(view.scopes),
        project=view.project_name or "All projects",
        created=f"{_when(view.created_at)} by {view.created_by}",
        last_used=_when(view.last_used_at),
        expires=_when(view.expires_at),
        daily_cap=f"{view.daily_cap_credits:,} credits" if view.daily_cap_credits else "None",
        status=view.status,
    )


SCOPE_OPTIONS = [
    ScopeOption(
        scope, f"{scope} ({key_service.SCOPE_LABELS[scope]})", f"scope-{scope.replace(':', '-')}"
    )
    for scope in key_service.SCOPES
]


class ApiSettingsState(OrgPageState, rx.State):
    keys: list[KeyRow] = []
    project_choices: list[Choice] = []
    model_options: list[ModelOption] = []
    org_address: str = ""

    create_scopes: list[str] = DEFAULT_SCOPES
    create_project: str = NO_PROJECT
    create_expiry: str = "never"
    new_key_secret: str = ""  # shown once, then cleared
    _new_key_name: str = ""
    confirm_revoke_id: int = 0

    api_enabled: bool = True
    allowed_models: list[str] = []
    section: str = ""  # which card the messages belong to: "create", "keys" or "controls"

    @rx.var
    def logs_href(self) -> str:
        return routes.org_subpage(self.org_address, "settings", "logs") if self.org_address else ""

    @rx.var
    def expiry_choices(self) -> list[Choice]:
        return [Choice(value, label) for value, label in EXPIRY_CHOICES]

    # --- the skeleton's hooks --------------------------------------------------------------

    def _view_action(self) -> policy.Action:
        return Action.api_keys_manage

    def _refresh(self, acting: Acting) -> None:
        session, org = acting.session, acting.org
        self.org_address = org.slug
        self.keys = [
            _row(view)
            for view in key_service.api_keys_list(
                session=session, actor_user=acting.user, org_id=org.id
            )
        ]
        projects = org_service.projects_visible(
            session=session, actor=acting.actor, org_id=org.id, include_archived=False
        )
        self.project_choices = [Choice(NO_PROJECT, "All projects")] + [
            Choice(str(p.id), p.name) for p in sorted(projects, key=lambda p: p.name.lower())
        ]
        controls = key_service.api_controls_get(session=session, org_id=org.id)
        self.api_enabled = controls.api_enabled
        self.allowed_models = list(controls.allowed_model_keys)
        self.model_options = [
            ModelOption(
                key=item.key,
                label=f"{item.display_name} ({item.key})",
                field_id=f"allow-{item.key}",
                note="" if item.usable else item.reason,
            )
            for item in registry.models_for_org(session=session, org_id=org.id)
        ]

    def _forget(self) -> None:
        self.keys, self.project_choices, self.model_options = [], [], []
        self.org_address = ""
        self.new_key_secret = self._new_key_name = ""

    # --- events ----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        self.section = ""
        self.new_key_secret = self._new_key_name = ""
        self.confirm_revoke_id = 0
        self.create_scopes, self.create_project, self.create_expiry = (
            list(DEFAULT_SCOPES),
            NO_PROJECT,
            "never",
        )
        opened = await self._open()
        return opened.elsewhere

    @rx.event
    def toggle_scope(self, scope: str, checked: bool):
        if not self.org_address or not isinstance(scope, str) or scope not in key_service.SCOPES:
            return
        scopes = [s for s in self.create_scopes if s != scope]
        if checked is True:
            scopes.append(scope)
        self.create_scopes = [s for s in key_service.SCOPES if s in scopes]

    @rx.event
    def set_create_project(self, value: str):
        known = {c.value for c in self.project_choices}
        self.create_project = value if isinstance(value, str) and value in known else NO_PROJECT

    @rx.event
    def set_create_expiry(self, value: str):
        known = bool(self.org_address) and isinstance(value, str) and value in dict(EXPIRY_CHOICES)
        self.create_expiry = value if known else "never"

    @rx.event
    def dismiss_secret(self):
        self.new_key_secret = self._new_key_name = ""

    @rx.event
    async def create_key(self, form: dict):
        form = form_fields(form)
        self.section = "create"
        self.new_key_secret = self._new_key_name = ""
        self.pending = "create"
        yield
        name = bounded(form.get("name", ""), FORM_TEXT_MAX_CHARS)
        project_choice = self.create_project
        expires_at = None
        if self.create_expiry != "never":
            day = utcnow().date() + timedelta(days=int(self.create_expiry))
            expires_at = datetime.combine(day, time.max).replace(tzinfo=utcnow().tzinfo)
        cap = bounded(form.get("daily_cap", ""), 12).strip() or None
        made: dict[str, str] = {}

        def work(acting: Acting) -> str:
            project_id = None if project_choice == NO_PROJECT else browser_id(project_choice)
            created = key_service.api_key_create(
                session=acting.session,
                actor_user=acting.user,
                org_id=acting.org.id,
                name=name,
                scopes=list(self.create_scopes),
                project_id=project_id,
                expires_at=expires_at,
                daily_cap_credits=cap,
            )
            made["secret"] = created.secret
            return f"Key {created.key.name} ({created.key.prefix}…) was created."

        try:
            done = await self._act(
                Action.api_keys_manage,
                work,
                success=lambda message: message,
                form_token=form.get("form_token"),
                purpose="api_key_create",
            )
        finally:
            self.pending = ""
        if done is not None and "secret" in made:
            self.new_key_secret = made["secret"]
            self._new_key_name = name
            yield rx.set_value("key-name", "")

    @rx.event
    def ask_revoke(self, key_id: Any):
        """Ask to confirm revoking one of the keys on the page (any other id asks nothing)."""
        try:
            wanted = browser_id(key_id)
        except Exception:  # noqa: BLE001 - a forged id asks about nothing
            wanted = 0
        self.confirm_revoke_id = wanted if any(k.key_id == wanted for k in self.keys) else 0

    @rx.event
    def cancel_revoke(self):
        self.confirm_revoke_id = 0

    @rx.event
    async def revoke_key(self, key_id: Any):
        self.section = "keys"
        self.confirm_revoke_id = 0

        def work(acting: Acting) -> str:
            key = key_service.api_key_revoke(
                session=acting.session,
                actor_user=acting.user,
                org_id=acting.org.id,
                key_id=browser_id(key_id),
            )
            return f"Key {key.name} ({key.prefix}…) was revoked; requests with it now fail."

        await self._act(Action.api_keys_manage, work, success=lambda message: message)

    @rx.event
    def set_api_enabled(self, checked: bool):
        if self.org_address:  # only on a page shown to someone who may change it
            self.api_enabled = checked is True

    @rx.event
    def toggle_allowed_model(self, key: str, checked: bool):
        known = {m.key for m in self.model_options}
        if not isinstance(key, str) or key not in known:
            return
        keys = [k for k in self.allowed_models if k != key]
        if checked is True:
            keys.append(key)
        self.allowed_models = sorted(keys)

    @rx.event
    async def save_controls(self, form_token: Any = None):
        self.section = "controls"
        enabled, allowed = bool(self.api_enabled), list(self.allowed_models)

        def work(acting: Acting) -> str:
            controls = key_service.api_controls_update(
                session=acting.session,
                actor_user=acting.user,
                org_id=acting.org.id,
                api_enabled=enabled,
                allowed_model_keys=allowed,
            )
            state = "on" if controls.api_enabled else "off"
            models = (
                f"{len(controls.allowed_model_keys)} allowed model(s)"
                if controls.allowed_model_keys
                else "every model the plan allows"
            )
            return f"API controls saved: the API is {state}, with {models}."

        await self._act(
            Action.api_keys_manage,
            work,
            success=lambda message: message,
            form_token=form_token,
            purpose="api_controls",
        )
