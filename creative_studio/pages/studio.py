"""Creative Studio: pick a model, write a prompt, see the estimate, run it, follow it live.

The page state holds read models only (dataclasses); who is acting is re-derived from the
session cookie and the URL in every handler (`SessionState._org_actor`), and every rule lives
in services (generations, models_registry, storage). Runs execute in a background event that
touches state only inside `async with self`, so the page stays live while the provider works.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import reflex as rx
from sqlmodel import Session

from core.db import get_engine
from core import routes
from creative_studio.components.forms import label_for
from creative_studio.components.model_picker import ModelOption, model_picker
from creative_studio.components.upgrade_modal import UpgradeOffer, upgrade_modal
from creative_studio.layout import app_shell, explanation_card
from models.enums import OrgRole
from services import credits, generations, policy, pricing, storage
from services import models_registry as registry
from services import orgs as org_service
from services.catalog import plans_list
from services.errors import DomainError
from state.navigation import backend_url
from state.session import SessionState

TONES = ["friendly", "professional", "bold", "playful"]
LENGTHS = ["short", "medium", "long"]
ASPECTS = [("1:1", "Square 1:1"), ("16:9", "Landscape 16:9"), ("9:16", "Portrait 9:16")]
SECONDS = ["3", "6", "10"]
_STATE_LABELS = {"disabled": "Turned off", "not_configured": "Not configured"}


@dataclass
class ProjectOption:
    id: str = ""
    name: str = ""


@dataclass
class BlockerView:
    code: str = ""
    message: str = ""
    link_label: str = ""
    link_href: str = ""


@dataclass
class SwapNotice:
    model_name: str = ""
    backup_name: str = ""


@dataclass
class HistoryItem:
    public_id: str = ""
    status: str = ""
    modality: str = ""
    model_name: str = ""
    project_name: str = ""
    prompt: str = ""
    created_label: str = ""
    transitions: str = ""
    failure_reason: str = ""
    credits_label: str = ""
    output_text: str = ""
    preview_url: str = ""
    download_url: str = ""
    can_retry: bool = False
    note: str = ""


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%S") if moment else ""


def _history_item(view: generations.GenerationView, can_run: bool) -> HistoryItem:
    steps = " → ".join(f"{step.status} {_clock(step.at)}" for step in view.steps)
    preview = download = ""
    shown = [a for a in view.assets if a.kind != "text"] or list(view.assets)
    if shown:
        signed = storage.asset_link_sign(shown[0].public_id)
        preview = backend_url(storage.asset_path(signed))
        download = backend_url(storage.asset_path(signed, download=True))
    if view.status == "succeeded":
        money = f"{credits.format_credits(view.charged_millicredits)} credits charged"
    elif view.status == "failed":
        money = "No credits charged (hold returned)"
    else:
        money = f"{credits.format_credits(view.estimate_millicredits)} credits held"
    notes = []
    if view.requested_model_key:
        notes.append("Ran on the backup model while the requested one was swapped.")
    if view.retry_of_public_id:
        notes.append(f"Retry of {view.retry_of_public_id}.")
    if view.retried_by_public_id:
        notes.append(f"Retried as {view.retried_by_public_id}.")
    if view.late_result:
        notes.append("The result arrived after the run timed out; it is kept, not charged.")
    return HistoryItem(
        public_id=view.public_id,
        status=view.status,
        modality=view.modality,
        model_name=view.model_name,
        project_name=view.project_name or "No project",
        prompt=view.prompt,
        created_label=view.created_at.strftime("%Y-%m-%d %H:%M UTC") if view.created_at else "",
        transitions=steps + " UTC" if steps else "",
        failure_reason=(
            f"{view.failure_code}: {view.failure_reason}" if view.status == "failed" else ""
        ),
        credits_label=money,
        output_text=(view.output_text or "")[:4000],
        preview_url=preview if view.modality != "text" else "",
        download_url=download,
        can_retry=can_run and view.status == "failed" and not view.retried_by_public_id,
        note=" ".join(notes),
    )


@dataclass
class _RateProbe:
    rate_millicredits: int
    rate_unit: str
    modality: str


class StudioState(rx.State):
    text_models: list[ModelOption] = []
    image_models: list[ModelOption] = []
    video_models: list[ModelOption] = []
    selected_key: str = ""
    selected_name: str = ""
    modality: str = "text"
    projects: list[ProjectOption] = []
    project_id: str = ""
    prompt: str = ""
    tone: str = "friendly"
    length: str = "medium"
    aspect: str = "1:1"
    seconds: str = "6"
    estimate_label: str = ""
    blockers: list[BlockerView] = []
    swaps: list[SwapNotice] = []
    history: list[HistoryItem] = []
    live_id: str = ""
    live_status: str = ""
    running: bool = False
    error: str = ""
    upgrade_open: bool = False
    offer: UpgradeOffer = UpgradeOffer()
    can_run: bool = False
    operator_models: list[ModelOption] = []
    operator_notice: str = ""

    # Backend-only: rates of the model a run would use (swap-aware), per picker key.
    _rates: dict[str, tuple[int, str, str]] = {}
    _pending_id: int | None = None

    # --- helpers ---------------------------------------------------------------------------

    async def _actor(self, session: Session):
        session_state = await self.get_state(SessionState)
        return session_state._org_actor(session)

    def _project_id(self) -> int | None:
        return int(self.project_id) if self.project_id.isdigit() else None

    def _params(self) -> dict:
        if self.modality == "text":
            return {"tone": self.tone, "length": self.length}
        if self.modality == "image":
            return {"aspect": self.aspect, "count": 1}
        return {"aspect": self.aspect if self.aspect != "1:1" else "16:9", "seconds": self.seconds}

    def _update_estimate(self) -> None:
        rate = self._rates.get(self.selected_key)
        if rate is None:
            self.estimate_label = ""
            return
        probe = _RateProbe(*rate)
        try:
            estimate = pricing.estimate_credits(probe, {**self._params(), "prompt": self.prompt})
        except DomainError as error:
            self.estimate_label = error.message
            return
        self.estimate_label = f"About {credits.format_credits(estimate)} credits"

    def _load_models(self, session: Session, org_id: int) -> None:
        rows = registry.models_for_org(session=session, org_id=org_id)
        by_key = {row.key: row for row in rows}
        options = []
        self._rates = {}
        for row in rows:
            label = ""
            if row.state == registry.LOCKED:
                label = f"Needs {row.min_plan_name}"
            elif row.state in _STATE_LABELS:
                label = _STATE_LABELS[row.state]
            if row.state == registry.LOCKED:
                note = f"Available on {row.min_plan_name} and higher."
            elif row.state == registry.NOT_CONFIGURED:
                note = "Not set up on this server (OPENAI_BASE_URL is not set)."
            else:
                note = row.reason
            options.append(
                ModelOption(
                    key=row.key,
                    name=row.display_name,
                    modality=row.modality,
                    description=row.description,
                    rate_label=row.rate_label,
                    state=row.state,
                    state_label=label,
                    note=note,
                    min_plan_name=row.min_plan_name,
                    tier=row.tier,
                )
            )
            resolved = by_key.get(row.resolved_key, row)
            self._rates[row.key] = (
                resolved.rate_millicredits,
                resolved.rate_unit,
                resolved.modality,
            )
        self.text_models = [o for o in options if o.modality == "text"]
        self.image_models = [o for o in options if o.modality == "image"]
        self.video_models = [o for o in options if o.modality == "video"]
        usable = [o for o in options if o.state == registry.AVAILABLE]
        if self.selected_key not in {o.key for o in usable}:
            first = usable[0] if usable else None
            self.selected_key = first.key if first else ""
            self.selected_name = first.name if first else ""
            self.modality = first.modality if first else "text"
        self.swaps = [
            SwapNotice(model_name=s.model_name, backup_name=s.backup_name)
            for s in registry.active_swaps(session=session)
        ]

    def _refresh_blockers(self, session: Session, user, org) -> None:
        if not self.selected_key:
            self.blockers = [
                BlockerView("no_model", "No model is available to this organization right now.")
            ]
            return
        found = generations.generation_blockers(
            session=session,
            user=user,
            org_id=org.id,
            model_key=self.selected_key,
            project_id=self._project_id(),
            params=self._params(),
            prompt=self.prompt,
        )
        self.blockers = [BlockerView(b.code, b.message, b.link_label, b.link_href) for b in found]

    def _refresh_history(self, session: Session, user, org) -> None:
        views = generations.generations_history(session=session, user=user, org_id=org.id, limit=20)
        self.history = [_history_item(view, self.can_run) for view in views]

    async def _reload(self, session: Session) -> tuple:
        user, org, actor = await self._actor(session)
        self._load_models(session, org.id)
        self._refresh_blockers(session, user, org)
        self._refresh_history(session, user, org)
        self._update_estimate()
        return user, org, actor

    # --- events ----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        self.error = ""
        self.upgrade_open = False
        self.operator_notice = ""
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user, org, actor = await self._actor(session)
            except DomainError:
                self.reset()  # signed out or not a member: show nothing from before
                return
            visible = org_service.projects_visible(session=session, actor=actor, org_id=org.id)
            self.projects = [ProjectOption(str(p.id), p.name) for p in visible]
            if self.project_id not in {p.id for p in self.projects}:
                self.project_id = self.projects[0].id if self.projects else ""
            target = policy.target_for(
                session=session, org_id=org.id, project_id=self._project_id()
            )
            self.can_run = bool(policy.can(actor, policy.Action.tool_run, target))
            await self._reload(session)
            if user.is_operator:
                self.operator_models = [
                    *self.text_models,
                    *self.image_models,
                    *self.video_models,
                ]
            else:
                self.operator_models = []

    async def _open_upgrade(self, session: Session, model: ModelOption) -> None:
        user, org, actor = await self._actor(session)
        plans = plans_list(session=session)
        plan = next((p for p in plans if p.name == model.min_plan_name), None)
        unlocks = [
            m.name
            for m in [*self.text_models, *self.image_models, *self.video_models]
            if m.state == registry.LOCKED and m.min_plan_name == model.min_plan_name
        ]
        owners = [
            m.name
            for m in org_service.team_list(session=session, org_id=org.id)
            if m.role == OrgRole.owner.value
        ]
        price = (
            f"${plan.price_cents_monthly / 100:,.0f} / month" if plan is not None else "see Billing"
        )
        self.offer = UpgradeOffer(
            model_name=model.name,
            plan_name=model.min_plan_name,
            price_label=price,
            unlocks=[f"Models: {', '.join(unlocks)}", *(plan.features if plan else [])],
            billing_href=routes.org_billing(org.slug),
            is_owner=actor.role == OrgRole.owner,
            owner_names=", ".join(owners) or "the owner",
        )
        self.upgrade_open = True

    @rx.event
    async def pick_model(self, key: str):
        self.error = ""
        options = {o.key: o for o in [*self.text_models, *self.image_models, *self.video_models]}
        model = options.get(key)
        if model is None:
            return
        with Session(get_engine(), expire_on_commit=False) as session:
            if model.state == registry.LOCKED:
                await self._open_upgrade(session, model)
                return
            if model.state != registry.AVAILABLE:
                self.error = model.note
                return rx.toast.warning(model.note)
            self.selected_key, self.selected_name, self.modality = key, model.name, model.modality
            if self.modality == "video" and self.aspect == "1:1":
                self.aspect = "16:9"
            user, org, _ = await self._actor(session)
            self._refresh_blockers(session, user, org)
        self._update_estimate()

    @rx.event
    def set_upgrade_open(self, value: bool):
        self.upgrade_open = bool(value)

    @rx.event
    async def set_project(self, value: str):
        self.project_id = value
        with Session(get_engine(), expire_on_commit=False) as session:
            user, org, actor = await self._actor(session)
            target = policy.target_for(
                session=session, org_id=org.id, project_id=self._project_id()
            )
            self.can_run = bool(policy.can(actor, policy.Action.tool_run, target))
            self._refresh_blockers(session, user, org)

    @rx.event
    def set_prompt(self, value: str):
        self.prompt = value
        self._update_estimate()

    @rx.event
    async def check_blockers(self):
        with Session(get_engine(), expire_on_commit=False) as session:
            user, org, _ = await self._actor(session)
            self._refresh_blockers(session, user, org)

    @rx.event
    async def set_option(self, name: str, value: str):
        if name not in ("tone", "length", "aspect", "seconds"):
            return
        setattr(self, name, value)
        self._update_estimate()
        with Session(get_engine(), expire_on_commit=False) as session:
            user, org, _ = await self._actor(session)
            self._refresh_blockers(session, user, org)

    def _start(self, session: Session, user, org, start) -> bool:
        try:
            generation = start()
            session.commit()
        except generations.GenerationBlocked as blocked:
            session.rollback()
            self.blockers = [
                BlockerView(b.code, b.message, b.link_label, b.link_href) for b in blocked.blockers
            ]
            self.error = blocked.message
            return False
        except DomainError as error:
            session.rollback()
            self.error = error.message
            return False
        self._pending_id = generation.id
        self.live_id = generation.public_id
        self.live_status = "queued"
        self.running = True
        self._refresh_history(session, user, org)
        return True

    @rx.event
    async def run(self, form_data: dict | None = None):
        """Start a run. The prompt comes with the form, so a pending keystroke is never lost."""
        self.error = ""
        if form_data and isinstance(form_data.get("prompt"), str):
            self.prompt = form_data["prompt"]
            self._update_estimate()
        if self.running:
            return rx.toast.info("A run is already in progress; it shows its status below.")
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user, org, _ = await self._actor(session)
            except DomainError as error:
                self.error = error.message
                return
            started = self._start(
                session,
                user,
                org,
                lambda: generations.generation_start(
                    session=session,
                    user=user,
                    org_id=org.id,
                    model_key=self.selected_key,
                    prompt=self.prompt,
                    params=self._params(),
                    project_id=self._project_id(),
                ),
            )
        if started:
            return StudioState.execute_pending

    @rx.event
    async def retry(self, public_id: str):
        self.error = ""
        if self.running:
            return rx.toast.info("A run is already in progress; wait for it to finish.")
        with Session(get_engine(), expire_on_commit=False) as session:
            try:
                user, org, _ = await self._actor(session)
            except DomainError as error:
                self.error = error.message
                return
            started = self._start(
                session,
                user,
                org,
                lambda: generations.generation_retry(
                    session=session, user=user, org_id=org.id, public_id=str(public_id)
                ),
            )
        if started:
            return StudioState.execute_pending

    @rx.event(background=True)
    async def execute_pending(self):
        """queued -> running -> succeeded | failed, shown live; the provider runs in a thread."""
        async with self:
            generation_id, self._pending_id = self._pending_id, None
        if generation_id is None:
            return
        await asyncio.to_thread(_mark_running, generation_id)
        async with self:
            self.live_status = "running"
            with Session(get_engine(), expire_on_commit=False) as session:
                try:
                    user, org, _ = await self._actor(session)
                    self._refresh_history(session, user, org)
                except DomainError:
                    pass
        try:
            result = await asyncio.to_thread(
                generations.generation_run_in_new_session, generation_id, mark_running=False
            )
            status, reason = result.status, result.failure_reason or ""
        except Exception as error:  # noqa: BLE001 - shown to the person; the sweep cleans up
            status, reason = "running", f"The run stopped unexpectedly ({type(error).__name__})."
        async with self:
            live_id = self.live_id
            self.live_status = status
            self.running = False
            with Session(get_engine(), expire_on_commit=False) as session:
                try:
                    await self._reload(session)
                except DomainError:
                    pass
        if status == "succeeded":
            return rx.toast.success(f"{live_id} succeeded. The output is in history below.")
        return rx.toast.error(f"{live_id} {status}. {reason}")

    # --- operator controls -----------------------------------------------------------------

    async def _operator(self, action, key: str, verb: str):
        self.operator_notice = ""
        with Session(get_engine(), expire_on_commit=False) as session:
            session_state = await self.get_state(SessionState)
            user = session_state._current_user(session)
            if user is None:
                return
            try:
                model = action(session=session, actor=user, model_key=key, reason="from Studio")
                session.commit()
            except DomainError as error:
                session.rollback()
                self.operator_notice = error.message
                return
            self.operator_notice = f"{model.display_name} {verb}."
            await self._reload(session)
            self.operator_models = [*self.text_models, *self.image_models, *self.video_models]

    @rx.event
    async def operator_disable(self, key: str):
        await self._operator(registry.model_disable, str(key), "is turned off")

    @rx.event
    async def operator_enable(self, key: str):
        await self._operator(registry.model_enable, str(key), "is back in service")

    @rx.event
    async def operator_swap(self, key: str):
        await self._operator(registry.model_swap, str(key), "now runs on its backup")


def _mark_running(generation_id: int) -> None:
    with Session(get_engine(), expire_on_commit=False) as session:
        generations.generation_mark_running(session=session, generation_id=generation_id)


# --- view -------------------------------------------------------------------------------------

_STATUS_COLORS = {"queued": "gray", "running": "blue", "succeeded": "green", "failed": "red"}


def status_badge(status) -> rx.Component:
    return rx.badge(
        rx.cond(status == "running", rx.spinner(size="1"), rx.fragment()),
        status,
        color_scheme=rx.match(
            status, ("succeeded", "green"), ("failed", "red"), ("running", "blue"), "gray"
        ),
        variant="soft",
        size="2",
    )


def swap_banner() -> rx.Component:
    return rx.foreach(
        StudioState.swaps,
        lambda swap: rx.callout(
            rx.text(
                rx.text.strong(swap.model_name),
                " is temporarily replaced by ",
                rx.text.strong(swap.backup_name),
                ". Runs that pick it use ",
                swap.backup_name,
                " and its rate until the platform team switches it back.",
            ),
            icon="arrow-left-right",
            color_scheme="amber",
            role="status",
            width="100%",
        ),
    )


def _select(label: str, field_id: str, value, items: list[tuple[str, str]], on_change):
    return rx.vstack(
        label_for(label, field_id),
        rx.select.root(
            rx.select.trigger(id=field_id, width="100%"),
            rx.select.content(*[rx.select.item(text, value=val) for val, text in items]),
            value=value,
            on_change=on_change,
        ),
        spacing="1",
        width="100%",
    )


def _options() -> rx.Component:
    return rx.match(
        StudioState.modality,
        (
            "text",
            rx.grid(
                _select(
                    "Tone",
                    "opt-tone",
                    StudioState.tone,
                    [(t, t.capitalize()) for t in TONES],
                    lambda v: StudioState.set_option("tone", v),
                ),
                _select(
                    "Length",
                    "opt-length",
                    StudioState.length,
                    [(x, x.capitalize()) for x in LENGTHS],
                    lambda v: StudioState.set_option("length", v),
                ),
                columns="2",
                spacing="3",
                width="100%",
            ),
        ),
        (
            "image",
            _select(
                "Size and aspect",
                "opt-aspect",
                StudioState.aspect,
                ASPECTS,
                lambda v: StudioState.set_option("aspect", v),
            ),
        ),
        rx.grid(
            _select(
                "Duration",
                "opt-seconds",
                StudioState.seconds,
                [(s, f"{s} seconds") for s in SECONDS],
                lambda v: StudioState.set_option("seconds", v),
            ),
            _select(
                "Aspect",
                "opt-video-aspect",
                StudioState.aspect,
                ASPECTS[1:],
                lambda v: StudioState.set_option("aspect", v),
            ),
            columns="2",
            spacing="3",
            width="100%",
        ),
    )


def _blockers() -> rx.Component:
    return rx.cond(
        StudioState.blockers.length() > 0,
        rx.callout.root(
            rx.callout.icon(rx.icon("octagon-alert")),
            rx.vstack(
                rx.text("Why this cannot run yet", weight="bold", size="2"),
                rx.el.ul(
                    rx.foreach(
                        StudioState.blockers,
                        lambda b: rx.el.li(
                            rx.text(
                                b.message,
                                rx.cond(
                                    b.link_href != "",
                                    rx.fragment(" ", rx.link(b.link_label, href=b.link_href)),
                                ),
                                size="2",
                            ),
                            custom_attrs={"data-code": b.code},
                        ),
                    ),
                    style={"padding_left": "1rem", "margin": "0"},
                ),
                spacing="1",
            ),
            color_scheme="amber",
            role="status",
            id="run-blockers",
            width="100%",
        ),
    )


def _composer() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Create", size="4", as_="h2"),
                rx.text(
                    "Model: ",
                    rx.text.strong(
                        rx.cond(StudioState.selected_name != "", StudioState.selected_name, "none")
                    ),
                    size="2",
                    color=rx.color("gray", 11),
                ),
                rx.cond(
                    StudioState.projects.length() > 0,
                    rx.vstack(
                        label_for("Project", "studio-project"),
                        rx.select.root(
                            rx.select.trigger(id="studio-project", width="100%"),
                            rx.select.content(
                                rx.foreach(
                                    StudioState.projects,
                                    lambda p: rx.select.item(p.name, value=p.id),
                                )
                            ),
                            value=StudioState.project_id,
                            on_change=StudioState.set_project,
                        ),
                        spacing="1",
                        width="100%",
                    ),
                    rx.text(
                        "No project yet: runs are saved to the organization. Owners and admins can "
                        "create projects in Team.",
                        size="2",
                        color=rx.color("gray", 11),
                    ),
                ),
                rx.vstack(
                    label_for("Prompt", "studio-prompt"),
                    rx.text_area(
                        id="studio-prompt",
                        name="prompt",
                        value=StudioState.prompt,
                        on_change=StudioState.set_prompt.debounce(250),
                        on_blur=StudioState.check_blockers,
                        placeholder="Describe what to create, e.g. a launch post for our spring running shoes",
                        rows="4",
                        width="100%",
                        max_length=generations.MAX_PROMPT_CHARS,
                    ),
                    spacing="1",
                    width="100%",
                ),
                _options(),
                rx.hstack(
                    rx.icon("coins", size=16, aria_hidden="true"),
                    rx.text(
                        "Estimate: ",
                        rx.text.strong(StudioState.estimate_label),
                        " (held when the run starts; you pay only what it uses)",
                        size="2",
                    ),
                    align="center",
                    spacing="2",
                    id="run-estimate",
                ),
                _blockers(),
                rx.cond(
                    StudioState.error != "",
                    rx.callout(
                        StudioState.error,
                        icon="triangle-alert",
                        color_scheme="red",
                        role="alert",
                        width="100%",
                    ),
                ),
                rx.button(
                    rx.cond(StudioState.running, rx.spinner(size="2"), rx.icon("play", size=16)),
                    rx.cond(StudioState.running, "Running…", "Run"),
                    type="submit",
                    size="3",
                    aria_describedby="run-estimate run-blockers",
                ),
                rx.cond(
                    StudioState.live_id != "",
                    rx.hstack(
                        rx.text("Latest run ", rx.code(StudioState.live_id), size="2"),
                        status_badge(StudioState.live_status),
                        align="center",
                        spacing="2",
                        role="status",
                        aria_live="polite",
                        id="live-status",
                    ),
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=StudioState.run,
            reset_on_submit=False,
            width="100%",
        ),
        width="100%",
    )


def _history_card(item: HistoryItem) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.flex(
                rx.hstack(
                    status_badge(item.status),
                    rx.text(item.model_name, weight="medium", size="2"),
                    rx.text("· ", item.project_name, size="2", color=rx.color("gray", 11)),
                    align="center",
                    spacing="2",
                    wrap="wrap",
                ),
                rx.spacer(),
                rx.text("ID ", rx.code(item.public_id), size="1", color=rx.color("gray", 11)),
                width="100%",
                wrap="wrap",
                gap="2",
            ),
            rx.text(item.prompt, size="2", trim="both"),
            rx.text(item.transitions, size="1", color=rx.color("gray", 11)),
            rx.cond(
                item.failure_reason != "",
                rx.text(item.failure_reason, size="2", color=rx.color("red", 11)),
            ),
            rx.cond(
                item.output_text != "",
                rx.box(
                    rx.text(item.output_text, size="2", white_space="pre-wrap"),
                    padding="0.75rem",
                    border_radius="var(--radius-3)",
                    background=rx.color("gray", 2),
                    border=f"1px solid {rx.color('gray', 4)}",
                    width="100%",
                ),
            ),
            rx.cond(
                item.preview_url != "",
                rx.image(
                    src=item.preview_url,
                    alt=rx.cond(
                        item.modality == "video",
                        "Generated clip for: " + item.prompt,
                        "Generated image for: " + item.prompt,
                    ),
                    max_width="22rem",
                    width="100%",
                    border_radius="var(--radius-3)",
                    loading="lazy",
                ),
            ),
            rx.flex(
                rx.text(item.credits_label, size="1", color=rx.color("gray", 11)),
                rx.cond(item.note != "", rx.text(item.note, size="1", color=rx.color("gray", 11))),
                rx.spacer(),
                rx.cond(
                    item.download_url != "",
                    rx.link(
                        rx.hstack(
                            rx.icon("download", size=14, aria_hidden="true"),
                            "Download",
                            spacing="1",
                            align="center",
                        ),
                        href=item.download_url,
                        size="2",
                        is_external=False,
                    ),
                ),
                rx.cond(
                    item.can_retry,
                    rx.button(
                        rx.icon("rotate-ccw", size=14),
                        "Retry",
                        size="1",
                        variant="soft",
                        on_click=StudioState.retry(item.public_id),
                        aria_label="Retry " + item.public_id,
                    ),
                ),
                gap="3",
                align="center",
                wrap="wrap",
                width="100%",
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        custom_attrs={"data-generation": item.public_id},
    )


def _history() -> rx.Component:
    return rx.vstack(
        rx.heading("History", size="4", as_="h2"),
        rx.cond(
            StudioState.history.length() > 0,
            rx.vstack(rx.foreach(StudioState.history, _history_card), spacing="3", width="100%"),
            rx.card(
                rx.text(
                    "No runs yet. Pick a model, write a prompt and press Run: every run, its "
                    "status changes and its output appear here.",
                    size="2",
                    color=rx.color("gray", 11),
                ),
                width="100%",
            ),
        ),
        spacing="3",
        width="100%",
        role="region",
        aria_label="History",
    )


def _operator_panel() -> rx.Component:
    return rx.cond(
        SessionState.is_operator,
        rx.card(
            rx.vstack(
                rx.heading("Operator: model status", size="3", as_="h2"),
                rx.text(
                    "Changes apply to every organization and are written to the audit log.",
                    size="1",
                    color=rx.color("gray", 11),
                ),
                rx.cond(
                    StudioState.operator_notice != "",
                    rx.text(StudioState.operator_notice, size="2", role="status"),
                ),
                rx.foreach(
                    StudioState.operator_models,
                    lambda m: rx.flex(
                        rx.text(m.name, size="2", min_width="12rem"),
                        rx.button(
                            "Disable",
                            size="1",
                            variant="soft",
                            color_scheme="red",
                            on_click=StudioState.operator_disable(m.key),
                            aria_label="Disable " + m.name,
                        ),
                        rx.button(
                            "Swap to backup",
                            size="1",
                            variant="soft",
                            on_click=StudioState.operator_swap(m.key),
                            aria_label="Swap " + m.name + " to its backup",
                        ),
                        rx.button(
                            "Enable",
                            size="1",
                            variant="soft",
                            color_scheme="green",
                            on_click=StudioState.operator_enable(m.key),
                            aria_label="Enable " + m.name,
                        ),
                        gap="2",
                        align="center",
                        wrap="wrap",
                    ),
                ),
                spacing="2",
                width="100%",
            ),
            width="100%",
        ),
    )


def _viewer_note() -> rx.Component:
    return rx.cond(
        SessionState.allowed_actions.contains("tool_run"),
        rx.fragment(),
        explanation_card(
            "You can browse, not run",
            "Your role in this organization can look at models and past runs but cannot start "
            "new ones. The reasons are listed next to the Run button.",
        ),
    )


@rx.page(
    route=f"/org/[{routes.ORG_ROUTE_ARG}]/studio",
    title="Creative Studio · Creative Studio",
    on_load=[SessionState.load_org, StudioState.load],
)
def studio_page() -> rx.Component:
    return app_shell(
        "studio",
        "Creative Studio",
        "Generate copy, images and video with your team's models.",
        swap_banner(),
        _viewer_note(),
        rx.flex(
            rx.card(
                rx.vstack(
                    rx.heading("Models", size="4", as_="h2"),
                    model_picker(
                        [
                            ("Text", StudioState.text_models),
                            ("Image", StudioState.image_models),
                            ("Video", StudioState.video_models),
                        ],
                        StudioState.selected_key,
                        StudioState.pick_model,
                    ),
                    spacing="3",
                    width="100%",
                ),
                width="100%",
                max_width=rx.breakpoints(initial="100%", md="22rem"),
                flex_shrink="0",
            ),
            _composer(),
            direction=rx.breakpoints(initial="column", md="row"),
            gap="4",
            width="100%",
            align="start",
        ),
        _history(),
        _operator_panel(),
        upgrade_modal(StudioState.offer, StudioState.upgrade_open, StudioState.set_upgrade_open),
    )
