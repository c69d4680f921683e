"""Creative Studio's state: pick a model, write a prompt, see the estimate, run it, follow it live.

Every public handler goes through the org-page skeleton (`state/org_page.py`): runs and retries
need `Action.tool_run` in their project, picking a model or an option needs only what the page
needs (`Action.org_view`), the operator's model controls need `Action.operator_models`. Every
rule lives in services (generations, models_registry, storage); this module holds read models
and their formatting. Runs execute on the run executor (`services/run_engine.py`), not in the
tab: `run` and `retry` commit the queued run, which hands it to the executor. The page follows
its runs with a light poll (`execute_pending`, one step a second while any run it shows is
queued or running), so a run started in another tab or retried by an operator shows its status
changes too, text appears as the worker streams it, and closing the tab never affects a run.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import reflex as rx
from sqlmodel import Session

from core import db
from models.enums import GenerationStatus
from services import credits, generations, policy, pricing, run_engine, storage
from services import models_registry as registry
from services import orgs as org_service
from services.error_codes import Code
from services.errors import (
    DomainError,
    NotFound,
    PlanLimitReached,
    ValidationFailed,
    error_with_code,
)
from state.model_choice import ModelOption, UpgradeOffer, model_option, upgrade_offer
from state.navigation import backend_url
from state.org_page import NOT_FOUND_RELOAD, Acting, OrgPageState, bounded, browser_id

Action = policy.Action

TONES = ["friendly", "professional", "bold", "playful"]
LENGTHS = ["short", "medium", "long"]
ASPECTS = [("1:1", "Square 1:1"), ("16:9", "Landscape 16:9"), ("9:16", "Portrait 9:16")]
SECONDS = ["3", "6", "10"]
# What the option selects may send; anything else is refused without changing the page.
OPTION_CHOICES: dict[str, frozenset[str]] = {
    "tone": frozenset(TONES),
    "length": frozenset(LENGTHS),
    "aspect": frozenset(value for value, _ in ASPECTS),
    "seconds": frozenset(SECONDS),
}
MAX_PROMPT_CHARS = generations.MAX_PROMPT_CHARS  # the prompt field's own limit
HISTORY_PAGE_SIZE = 20
HISTORY_TEXT_MAX_CHARS = 200
HISTORY_FILTER_FIELDS = (
    "history-project",
    "history-person",
    "history-status",
    "history-model",
    "history-text",
)
HISTORY_STATUSES = tuple(status.value for status in GenerationStatus)
# A little over the service's limit, so a too-long prompt is named by its validation message.
PROMPT_INPUT_CHARS = MAX_PROMPT_CHARS + 100
_MODEL_KEY_CHARS = 100
_PUBLIC_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# How often the page re-reads its runs: while one is queued or running, and otherwise (a run
# started in another tab, by the API or by an operator shows up within this).
FOLLOW_INTERVAL_SECONDS = 1.0
FOLLOW_IDLE_SECONDS = 3.0
# A follow chain whose last step is older than this has ended (its tab closed or reloaded).
_FOLLOW_ALIVE_SECONDS = 3 * FOLLOW_IDLE_SECONDS + 5
_MAX_CHAIN = 2**31
_ACTIVE = ("queued", "running")
_IDLE_JITTER = 0.25
MODEL_NOT_LISTED = "That model is not in the list. Reload the page to see the models you can use."
OPTION_NOT_OFFERED = "That option is not offered here. Reload the page and try again."


@dataclass
class ProjectOption:
    id: str = ""
    name: str = ""


@dataclass
class FilterChoice:
    value: str
    label: str


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
    transitions: str = ""
    failure_reason: str = ""
    credits_label: str = ""
    output_text: str = ""
    preview_url: str = ""
    download_url: str = ""
    can_retry: bool = False
    can_run_again: bool = False
    person: str = ""
    note: str = ""


@dataclass
class _RateProbe:
    rate_millicredits: int
    rate_unit: str
    modality: str


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
        transitions=steps + " UTC" if steps else "",
        failure_reason=(
            f"{view.failure_code}: {view.failure_reason}" if view.status == "failed" else ""
        ),
        credits_label=money,
        output_text=(view.output_text or "")[:4000],
        preview_url=preview if view.modality != "text" else "",
        download_url=download,
        can_retry=can_run and view.status == "failed" and not view.retried_by_public_id,
        can_run_again=can_run and view.status not in _ACTIVE,
        person=view.user_name or "",
        note=" ".join(notes),
    )


def _blocker_views(blockers: list[generations.Blocker]) -> list[BlockerView]:
    return [BlockerView(b.code, b.message, b.link_label, b.link_href) for b in blockers]


def _public_id(value: Any) -> str:
    """A generation id from the browser, or "" when it cannot be one."""
    return value if isinstance(value, str) and _PUBLIC_ID.match(value) else ""


class StudioState(OrgPageState, rx.State):
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
    upgrade_open: bool = False
    offer: UpgradeOffer = rx.field(default_factory=UpgradeOffer)
    _can_run: bool = False  # may run in the chosen project (history offers Retry / Run again)
    balance_label: str = ""  # the organization's balance, next to what a run costs
    # History: one page at a time (every run reachable), filtered by project, person, status,
    # model and prompt text ("" = any).
    history_page: int = 0
    history_has_more: bool = False
    filter_project: str = ""
    filter_person: str = ""
    filter_status: str = ""
    filter_model: str = ""
    filter_text: str = ""
    person_choices: list[FilterChoice] = []

    # Backend-only: rates of the model a run would use (swap-aware), per picker key.
    _rates: dict[str, tuple[int, str, str]] = {}
    # The follow chain of this tab: its number and when it last re-read the runs (epoch
    # seconds). One chain per tab; a step of an older chain stops.
    _follow_chain: int = 0
    _followed_at: float = 0.0
    # The organization whose run events (Redis pub/sub) wake the follow step early.
    _org_id: int | None = None
    # The project of each run in history, so a retry is checked against its own project.
    _history_projects: dict[str, int | None] = {}
    # The blockers of a refused run stay on the page instead of being recomputed.
    _blockers_from_refusal: bool = False
    # What blockers depend on (plan, models, credits, runs in progress), read at page open, on a
    # project change and after a run; a pick or an option change is answered from it in memory.
    # Only what is shown depends on it: the run start re-checks everything.
    _blocker_context: generations.BlockerContext | None = None
    # A run started here: credits held and runs in progress changed, so the next follow step
    # reads the context again (off the Run event's path).
    _blocker_context_stale: bool = False
    # What an idle follow step saw last (see _runs_moved); [] until the first look.
    _runs_seen: list = []

    # --- the skeleton's hooks --------------------------------------------------------------

    def _view_action(self) -> policy.Action:
        """Every member (and an operator) may open the studio; running is checked per run."""
        return Action.org_view

    def _refresh(self, acting: Acting) -> None:
        self._org_id = acting.org.id
        self._load_projects(acting)
        self._read_blocker_context(acting)
        self._load_models(acting)
        if self._blockers_from_refusal:
            self._blockers_from_refusal = False
        else:
            self._show_blockers()
        self._refresh_history(acting)
        self._update_estimate()
        self.person_choices = [
            FilterChoice(str(m.user_id), m.name)
            for m in org_service.team_list(session=acting.session, org_id=acting.org.id)
        ]

    def _clear_messages(self) -> None:
        super()._clear_messages()
        self._set_changed("_blockers_from_refusal", False)

    def _show_error(self, session: Session, error: DomainError) -> None:
        super()._show_error(session, error)
        if isinstance(error, generations.GenerationBlocked):
            self.blockers = _blocker_views(error.blockers)
            self._blockers_from_refusal = True
        elif isinstance(error, PlanLimitReached):
            self.error = error.message  # this page has no limit notice: say it next to Run

    # --- read models -----------------------------------------------------------------------

    def _all_models(self) -> list[ModelOption]:
        return [*self.text_models, *self.image_models, *self.video_models]

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

    def _load_projects(self, acting: Acting) -> None:
        visible = org_service.projects_visible(
            session=acting.session, actor=acting.actor, org_id=acting.org.id
        )
        self.projects = [ProjectOption(str(p.id), p.name) for p in visible]
        if self.project_id not in {p.id for p in self.projects}:
            self.project_id = self.projects[0].id if self.projects else ""
        self._can_run = acting.can(Action.tool_run, project_id=self._project_id())

    def _load_models(self, acting: Acting) -> None:
        context = self._blocker_context
        rows = (
            list(context.models.values())
            if context is not None
            else registry.models_for_org(session=acting.session, org_id=acting.org.id)
        )
        by_key = {row.key: row for row in rows}
        options = [model_option(row, operator=acting.user.is_operator) for row in rows]
        self._rates = {}
        for row in rows:
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
            for s in registry.active_swaps(session=acting.session)
        ]

    def _read_blocker_context(self, acting: Acting) -> None:
        self._blocker_context_stale = False
        self._blocker_context = generations.generation_blocker_context(
            session=acting.session,
            user=acting.user,
            org_id=acting.org.id,
            project_id=self._project_id(),
        )

    def _refresh_blockers(self, acting: Acting) -> None:
        """Blockers from a fresh read of what they depend on."""
        self._read_blocker_context(acting)
        self._show_blockers()

    def _show_blockers(self) -> None:
        """Blockers of the selected model and options, from the context (no database)."""
        if not self.selected_key:
            self.blockers = [
                BlockerView("no_model", "No model is available to this organization right now.")
            ]
            return
        if self._blocker_context is None:
            self.blockers = []  # the page has not loaded: Run checks everything anyway
            return
        found = generations.generation_blockers_for(
            self._blocker_context,
            model_key=self.selected_key,
            params=self._params(),
            prompt=self.prompt,
        )
        self._set_changed("blockers", _blocker_views(found))

    # --- who acts --------------------------------------------------------------------------

    async def _acting(
        self,
        session: Session,
        action: policy.Action,
        *,
        project_id: int | None = None,
        recent: bool = False,
    ) -> Acting:
        """Who acts. The page's reads (its view action, no project: a pick, an option, history)
        may use who acts as resolved at most IDENTITY_REVALIDATE_SECONDS ago for this cookie
        and address; everything else resolves it from the database (session, user,
        organization, membership, 2FA, policy)."""
        is_read = action == self._view_action() and project_id is None
        return await super()._acting(
            session, action, project_id=project_id, recent=recent or is_read
        )

    def _refresh_history(self, acting: Acting) -> None:
        views = generations.generations_history(
            session=acting.session,
            user=acting.user,
            org_id=acting.org.id,
            limit=HISTORY_PAGE_SIZE + 1,
            offset=self.history_page * HISTORY_PAGE_SIZE,
            project_id=int(self.filter_project) if self.filter_project else None,
            user_id=int(self.filter_person) if self.filter_person else None,
            status=self.filter_status or None,
            model_key=self.filter_model or None,
            prompt_contains=self.filter_text or None,
        )
        self._set_changed("history_has_more", len(views) > HISTORY_PAGE_SIZE)
        views = views[:HISTORY_PAGE_SIZE]
        items = [_history_item(view, self._can_run) for view in views]
        # A re-read that finds what the page shows sends nothing and redraws nothing (the
        # follow steps re-read every second while a run is in progress).
        self._set_changed("history", items)
        self._history_projects = {view.public_id: view.project_id for view in views}
        self._show_balance(acting)

    def _show_balance(self, acting: Acting) -> None:
        balance = credits.balance_get(session=acting.session, org_id=acting.org.id)
        self._set_changed("balance_label", f"{credits.format_credits(balance.balance)} credits")

    def _open_upgrade(self, acting: Acting, model: ModelOption) -> None:
        self.offer = upgrade_offer(
            session=acting.session,
            org_id=acting.org.id,
            org_slug=acting.org.slug,
            is_owner=acting.is_owner,
            model=model,
            options=self._all_models(),
        )
        self.upgrade_open = True

    async def _look(self, work: Callable[[Acting], Any]) -> None:
        """A read after a browser event (a choice, a blur): checked like any action, but a
        message already on the page stays there when the read succeeds."""
        shown = (self.error, self.error_code)
        if await self._act(self._view_action(), work, refresh=False) is not None:
            self.error, self.error_code = shown

    async def _show_current(self, *, everything: bool) -> None:
        """Background steps: re-read for whoever is acting now (nothing to refuse or to say)."""
        with db.new_session() as session:
            try:
                acting = await self._acting(session, self._view_action())
            except DomainError:
                return
            if everything:
                self._refresh(acting)
            else:
                self._refresh_history(acting)
                if self._blocker_context_stale:
                    self._read_blocker_context(acting)  # the next pick shows the change

    def _begin(self, generation) -> None:
        self.live_id = generation.public_id
        self.live_status = "queued"
        self.running = True

    async def _may_view(self) -> bool:
        with db.new_session() as session:
            try:
                await self._acting(session, self._view_action())
            except DomainError:
                return False
        return True

    def _has_active_runs(self) -> bool:
        return any(item.status in _ACTIVE for item in self.history)

    def _runs_moved(self) -> bool:
        """With no run in progress on the page: whether a run appeared or the balance moved
        since the last look (one statement), so an idle tab re-reads only when it would see
        something new."""
        if self._org_id is None:
            return True
        with db.new_session() as session:
            seen = list(generations.org_runs_fingerprint(session=session, org_id=self._org_id))
        if seen == self._runs_seen:
            return False
        self._runs_seen = seen
        return True

    # --- events ----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        """on_load: the organization (load_org's work) and the page, in one event and one
        unit of work."""
        self.upgrade_open = False
        opened = await self._open()
        if opened.acting is None:
            return opened.elsewhere
        # "Use in Studio" (Assistant, Competitor Intel): ?prompt=... fills the prompt.
        prefill = self.router.url.query_parameters.get("prompt", "")
        if isinstance(prefill, str) and prefill:
            self.prompt = bounded(prefill, PROMPT_INPUT_CHARS)
            self._update_estimate()
        # A new page: the old page's chain (if any) stops, and this page follows its runs. The
        # page was just shown to this person, so its chain starts without asking again.
        self._follow_chain = self._follow_chain % _MAX_CHAIN + 1
        self._followed_at = time.time()
        return StudioState.execute_pending(self._follow_chain)

    def _pick(self, acting: Acting, key: Any) -> ModelOption:
        options = {o.key: o for o in self._all_models()}
        model = options.get(key) if isinstance(key, str) else None
        if model is None:
            raise error_with_code(Code.model_not_found, MODEL_NOT_LISTED, base=NotFound)
        if model.state == registry.LOCKED:
            self._open_upgrade(acting, model)
        elif model.state == registry.AVAILABLE:
            self.selected_key, self.selected_name, self.modality = key, model.name, model.modality
            if self.modality == "video" and self.aspect == "1:1":
                self.aspect = "16:9"
            self._show_blockers()
            self._update_estimate()
        return model

    @rx.event
    async def pick_model(self, key: str):
        """A usable model is selected; a locked one opens the upgrade offer; others say why."""
        model = await self._act(self._view_action(), lambda a: self._pick(a, key), refresh=False)
        if model is None or model.state in (registry.AVAILABLE, registry.LOCKED):
            return
        self.error = model.note
        return rx.toast.warning(model.note)

    @rx.event
    def set_upgrade_open(self, value: bool):
        """Open or close the upgrade offer; on close, focus goes back to the model's row (the
        dialog was opened by the app, so Radix has no trigger to return it to)."""
        self.upgrade_open = bool(value)
        if self.upgrade_open or not self.offer.model_key:
            return None
        key = json.dumps(self.offer.model_key)
        return rx.call_script(
            f"document.querySelector('[data-model-key=' + CSS.escape({key}) + ']')?.focus()"
        )

    def _choose_project(self, acting: Acting, value: Any) -> None:
        project_id = browser_id(value)
        target = policy.target_for(
            session=acting.session, org_id=acting.org.id, project_id=project_id
        )
        policy.require(acting.actor, Action.project_view, target)
        self.project_id = str(project_id)
        self._can_run = acting.can(Action.tool_run, project_id=project_id)
        self._refresh_blockers(acting)

    @rx.event
    async def set_project(self, value: str):
        await self._look(lambda a: self._choose_project(a, value))

    @rx.event
    def set_prompt(self, value: str):
        self.prompt = bounded(value, PROMPT_INPUT_CHARS)
        self._update_estimate()

    @rx.event
    async def check_blockers(self):
        await self._look(lambda _acting: self._show_blockers())

    def _choose_option(self, acting: Acting, name: Any, value: Any) -> None:
        choices = OPTION_CHOICES.get(name) if isinstance(name, str) else None
        value = bounded(value, 16)
        if choices is None or value not in choices:
            raise ValidationFailed(OPTION_NOT_OFFERED)
        setattr(self, name, value)
        self._update_estimate()
        self._show_blockers()

    @rx.event
    async def set_option(self, name: str, value: str):
        await self._look(lambda a: self._choose_option(a, name, value))

    def _start(self, acting: Acting, start: Callable[[], Any]):
        generation = start()
        self._show_started(acting, generation)
        self._blocker_context_stale = True
        return generation

    def _shows(self, generation: Any) -> bool:
        """Whether the newest page of history, as filtered now, lists this new run."""
        text = self.filter_text.casefold()
        return (
            self.history_page == 0
            and self.filter_project in ("", str(generation.project_id))
            and self.filter_person in ("", str(generation.user_id))
            and self.filter_status in ("", generation.status)
            and self.filter_model in ("", generation.model_key)
            and (not text or text in generation.prompt.casefold())
        )

    def _show_started(self, acting: Acting, generation: Any) -> None:
        """A run this page started goes on top of history without re-reading the page.

        A retry changes the run it retries too (its note, its Retry button): the page is read
        again. So it is when the run used a model the picker does not list (a swap's backup).
        """
        names = {option.key: option.name for option in self._all_models()}
        if generation.retry_of_id is not None or generation.model_key not in names:
            self._refresh_history(acting)
            return
        if self._shows(generation):
            projects = {option.id: option.name for option in self.projects}
            view = generations.generation_view_started(
                generation,
                model_name=names[generation.model_key],
                project_name=projects.get(str(generation.project_id), ""),
                user_name=acting.user.name or acting.user.email,
            )
            shown = [_history_item(view, self._can_run), *self.history]
            self.history_has_more = self.history_has_more or len(shown) > HISTORY_PAGE_SIZE
            self.history = shown[:HISTORY_PAGE_SIZE]
            self._history_projects = {
                **self._history_projects,
                generation.public_id: generation.project_id,
            }
        self._show_balance(acting)

    @rx.event
    async def run(self, form_data: dict | None = None):
        """Start a run. The prompt comes with the form, so a pending keystroke is never lost."""
        self._clear_messages()
        if isinstance(form_data, dict) and isinstance(form_data.get("prompt"), str):
            self.prompt = bounded(form_data["prompt"], PROMPT_INPUT_CHARS)
            self._update_estimate()
        if self.running:
            return rx.toast.info("A run is already in progress; it shows its status below.")
        project_id = self._project_id()
        generation = await self._act(
            Action.tool_run,
            lambda a: self._start(
                a,
                lambda: generations.generation_start(
                    session=a.session,
                    user=a.user,
                    org_id=a.org.id,
                    model_key=self.selected_key,
                    prompt=self.prompt,
                    params=self._params(),
                    project_id=project_id,
                ),
            ),
            project_id=project_id,
            refresh=False,
        )
        if generation is None:
            return
        self._begin(generation)
        return StudioState.execute_pending

    @rx.event
    async def retry(self, public_id: str):
        """Retry one failed run from history, checked against that run's project."""
        self._clear_messages()
        if self.running:
            return rx.toast.info("A run is already in progress; wait for it to finish.")
        run_id = _public_id(public_id)
        if run_id not in self._history_projects:
            await self._act(self._view_action(), _not_found, refresh=False)
            return
        generation = await self._act(
            Action.tool_run,
            lambda a: self._start(
                a,
                lambda: generations.generation_retry(
                    session=a.session, user=a.user, org_id=a.org.id, public_id=run_id
                ),
            ),
            project_id=self._history_projects[run_id],
            refresh=False,
        )
        if generation is None:
            return
        self._begin(generation)
        return StudioState.execute_pending

    @rx.event
    async def run_again(self, public_id: str):
        """Start the same run again (model, prompt, options, project) as a new run."""
        self._clear_messages()
        if self.running:
            return rx.toast.info("A run is already in progress; wait for it to finish.")
        run_id = _public_id(public_id)
        if run_id not in self._history_projects:
            await self._act(self._view_action(), _not_found, refresh=False)
            return None
        generation = await self._act(
            Action.tool_run,
            lambda a: self._start(
                a,
                lambda: generations.generation_run_again(
                    session=a.session, user=a.user, org_id=a.org.id, public_id=run_id
                ),
            ),
            project_id=self._history_projects[run_id],
            refresh=False,
        )
        if generation is None:
            return None
        self._begin(generation)
        return StudioState.execute_pending

    def _filters_from(self, form: Any) -> None:
        """Filter values from the browser: each must be one the page offers ("" = any)."""
        form = form if isinstance(form, dict) else {}

        def offered(key: str, values: set[str]) -> str:
            value = bounded(form.get(key, ""), 40)
            if value and value not in values:
                raise ValidationFailed(
                    "That filter value is not offered on this page. Reload and choose again."
                )
            return value

        self.filter_project = offered("project", {p.id for p in self.projects})
        self.filter_person = offered("person", {c.value for c in self.person_choices})
        self.filter_status = offered("status", set(HISTORY_STATUSES))
        self.filter_model = offered("model", {m.key for m in self._all_models()})
        self.filter_text = bounded(form.get("text", ""), HISTORY_TEXT_MAX_CHARS).strip()
        self.history_page = 0

    @rx.event
    async def filter_history(self, form: dict):
        def apply(acting: Acting) -> None:
            self._filters_from(form)
            self._refresh_history(acting)

        await self._act(self._view_action(), apply, refresh=False)

    @rx.event
    async def clear_history_filters(self):
        def clear(acting: Acting) -> None:
            self.filter_project = self.filter_person = self.filter_status = ""
            self.filter_model = self.filter_text = ""
            self.history_page = 0
            self._refresh_history(acting)

        await self._act(self._view_action(), clear, refresh=False)
        return [rx.set_value(field_id, "") for field_id in HISTORY_FILTER_FIELDS]

    @rx.event
    async def history_older(self):
        if not self.history_has_more:
            return

        def older(acting: Acting) -> None:
            self.history_page += 1
            self._refresh_history(acting)

        await self._act(self._view_action(), older, refresh=False)

    @rx.event
    async def history_newer(self):
        def newer(acting: Acting) -> None:
            self.history_page = max(0, self.history_page - 1)
            self._refresh_history(acting)

        await self._act(self._view_action(), newer, refresh=False)

    @rx.var
    def prompt_count_label(self) -> str:
        count = len(self.prompt)
        if count > MAX_PROMPT_CHARS:
            return (
                f"{count:,} / {MAX_PROMPT_CHARS:,} characters: {count - MAX_PROMPT_CHARS:,} over "
                "the limit. Shorten the prompt to run it."
            )
        return f"{count:,} / {MAX_PROMPT_CHARS:,} characters"

    @rx.var
    def prompt_over_limit(self) -> bool:
        return len(self.prompt) > MAX_PROMPT_CHARS

    @rx.var
    def history_page_label(self) -> str:
        first = self.history_page * HISTORY_PAGE_SIZE + 1
        return f"Runs {first}-{first + len(self.history) - 1}" if self.history else ""

    @rx.event(background=True)
    async def execute_pending(self, chain: int = 0):
        """One step of following the page's runs: wait, re-read them, then the next step.

        The executor runs them (`services/run_engine.py`); this only reads the database, so a
        closed tab ends the chain (the browser sends each next step) and never a run. Without
        `chain`, a chain starts unless one is alive; a step of a chain that is not the tab's
        current one stops. The latest run of this tab ends with a toast; its card shows the
        text the worker streams while it runs.
        """
        async with self:
            if not isinstance(chain, int) or isinstance(chain, bool) or chain <= 0:
                if time.time() - self._followed_at < _FOLLOW_ALIVE_SECONDS:
                    return None  # this tab already follows its runs
                if not await self._may_view():
                    return None  # signed out, or not a member: nothing to follow
                self._follow_chain = self._follow_chain % _MAX_CHAIN + 1
                chain = self._follow_chain
            elif chain != self._follow_chain:
                return None
            self._followed_at = time.time()
            busy = self.running or self._has_active_runs()
            # Idle tabs spread out: opened together, they would otherwise all look at once.
            interval = (
                FOLLOW_INTERVAL_SECONDS
                if busy
                else FOLLOW_IDLE_SECONDS * random.uniform(1 - _IDLE_JITTER, 1 + _IDLE_JITTER)
            )
            org_id = self._org_id
        # With Redis, a run event of the organization ends the wait early.
        woken = await run_engine.run_events_wait(org_id=org_id, timeout=interval)
        async with self:
            if chain != self._follow_chain:
                return None
            self._followed_at = time.time()
            if busy or woken or self._runs_moved():
                await self._show_current(everything=False)
            live = next((item for item in self.history if item.public_id == self.live_id), None)
            if live is not None:
                self.live_status = live.status
            toast = None
            if self.running and (live is None or live.status not in _ACTIVE):
                self.running = False
                await self._show_current(everything=True)
                if live is not None and live.status == "succeeded":
                    toast = rx.toast.success(
                        f"{live.public_id} succeeded. The output is in history below."
                    )
                elif live is not None:
                    toast = rx.toast.error(f"{live.public_id} {live.status}. {live.failure_reason}")
        step = StudioState.execute_pending(chain)
        return [toast, step] if toast is not None else step


def _not_found(_acting: Acting) -> None:
    raise NotFound(NOT_FOUND_RELOAD)
