"""Generations: blockers before a run, start (estimate + hold), run, retry and history.

Credits never get lost:

* ``generation_start`` creates the ``queued`` generation and holds its estimate with key
  ``generation:<id>:hold`` in the caller's transaction (the caller commits both or neither);
  when that transaction commits, the run is handed to the run executor
  (`services.run_engine`), which claims it and calls ``generation_execute``.
* ``generation_run`` marks it ``running`` (commit), calls the provider *outside* any
  transaction, stores the output files, then re-reads the generation under a row lock
  (``SELECT ... FOR UPDATE``; SQLite serializes writers with ``BEGIN IMMEDIATE``):
    - still ``running`` and the provider succeeded: settle the actual cost (never above the
      hold) with key ``generation:<id>:settle``, record a usage event, ``succeeded``;
    - still ``running`` and the provider failed: release with key
      ``generation:<id>:release``, ``failed`` with ``failure_code``/``failure_reason``;
    - already ``failed`` (the 15-minute sweep timed it out and released it with the same
      release key): keep the output in ``late_result`` and never charge.
* A crash between the hold and completion leaves it ``running`` with the hold open; the
  sweep job fails and releases it exactly once.
* The charge is what the provider reports it used, priced by the model's rate, never above
  the hold and never below zero (`pricing.charge_credits`): a figure that is not a whole
  number (a boolean, a fraction, text, a negative number) charges the hold instead (the
  OpenAI-compatible adapter already replaces such a figure by its own token estimate). If the
  completion cannot be written as it came back (the database refuses the output), it is
  written again with what the database can hold, so a run with output never stays
  ``running`` and its charge always equals its ledger entries.

Provider calls never run on the event loop's default executor or in a transaction: each goes
to its provider's bounded pool (`services.providers.limits`) with a total deadline, queueing
included; a call past its deadline fails the run with code ``timeout`` through the same
release path, once. The database steps of a run started from the event loop
(`generation_run_async`) run on a small pool of their own.

Concurrent runs are capped (``CONCURRENT_RUNS_PER_USER`` queued or running per person, in any
organization; ``CONCURRENT_RUNS_PER_ORG`` per organization). The cap is a blocker like the
others; `generation_start` takes the user's and the organization's run-start locks first
(PostgreSQL advisory locks; SQLite serializes writers with ``BEGIN IMMEDIATE``), so two
starts racing for the last slot cannot both pass.

Transactions: ``generation_start``, blockers, retry and history work inside the caller's
transaction. The run owns its units of work (it is called from background tasks and the API,
never inside the org-page skeleton's transaction): ``generation_mark_running`` commits the
``running`` step; ``generation_execute`` commits before calling the provider (no transaction
and no lock while it works) and again when it completes (``_complete``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import String, bindparam, cast, func, text
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from core import db, routes
from core.clock import as_utc, utcnow
from core.settings import get_settings
from models import (
    AIModel,
    Asset,
    CompetitorReport,
    CreditAccount,
    Generation,
    Organization,
    Project,
    UsageEvent,
    User,
)
from models.enums import GenerationStatus, OrgRole
from services import credits, notifications, policy, pricing
from services import models_registry as registry
from services.billing.overview import spend_this_cycle
from services.brand_kits import brand_kit_context, brand_kit_for, brand_kit_label
from services.error_codes import Code
from services.errors import (
    Conflict,
    DomainError,
    InsufficientCredits,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    error_with_code,
)
from services.generation_keys import hold_key, release_key, settle_key
from services.plan_limits import org_plan
from services.providers.base import (
    IMAGE_ASPECTS,
    TEXT_TONES,
    Provider,
    ProviderError,
    ProviderErrorCode,
    ProviderResult,
    TextDelta,
)
from services.providers.factory import provider_for, provider_run
from services.providers.limits import deadline_for, deadline_passed, provider_pool, timeout_error
from services.storage import default_backend_name, storage_for

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 4000
VIDEO_SECONDS_CHOICES = (3, 6, 10)
TIMED_OUT_CODE = Code.timed_out.value
ACTIVE_STATUSES = (GenerationStatus.queued.value, GenerationStatus.running.value)
# PostgreSQL advisory lock classes (first key) of the run-start locks; the second key is the id.
_USER_RUN_START_LOCK = 73_001
_ORG_RUN_START_LOCK = 73_002
# How long past its deadline a run waits for its provider thread before it stops waiting.
# The thread itself ends at the deadline (its HTTP calls are bounded by it); this is for
# adapters that block elsewhere.
_DEADLINE_GRACE_SECONDS = 2.0

T = TypeVar("T")


# --- blockers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blocker:
    """One reason a run cannot start, written for the person, with the way forward."""

    code: str
    message: str
    link_label: str = ""
    link_href: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class GenerationBlocked(DomainError):
    """A run was refused; `blockers` names every reason. `code` is the first one's."""

    http_status = 403
    _STATUS = {
        Code.insufficient_credits: 402,
        Code.billing_required: 402,
        Code.project_not_found: 404,
        Code.model_not_found: 404,
        Code.model_locked: 402,
        Code.concurrent_run_limit: 429,
    }

    def __init__(self, blockers: list[Blocker]):
        first = blockers[0]
        super().__init__(first.message, blockers=[b.code for b in blockers])
        self.code = first.code
        self.http_status = self._STATUS.get(first.code, 403)
        self.blockers = blockers


def _member_role(actor: policy.Actor) -> OrgRole | None:
    return OrgRole(actor.role) if actor.role is not None else None


def _policy_blockers(
    session: Session, actor: policy.Actor, org: Organization, project_id: int | None
) -> list[Blocker]:
    """Role, project scope and subscription, each named (policy.can stops at the first)."""
    blockers: list[Blocker] = []
    try:
        target = policy.target_for(session=session, org_id=org.id, project_id=project_id)
    except NotFound as error:
        return [Blocker(error.code, error.message)]
    decision = policy.can(
        actor, policy.Action.tool_run, replace(target, subscription_executable=True)
    )
    if not decision:
        blockers.append(Blocker(decision.code, decision.message))
    if not target.subscription_executable:
        # Ask the policy for its subscription wording as a member allowed to run would get it.
        as_runner = replace(
            actor,
            role=actor.role if actor.role in (OrgRole.owner, OrgRole.admin) else OrgRole.editor,
            project_scoped=False,
        )
        sub = policy.can(as_runner, policy.Action.tool_run, target)
        if not sub:
            blockers.append(
                Blocker(sub.code, sub.message, "Open Billing", routes.org_billing(org.slug))
            )
    return blockers


@dataclass(frozen=True)
class BlockerContext:
    """What one person's blockers in one org and project depend on, read once.

    `generation_blockers_for` turns it into blockers for any model, options and prompt without
    touching the database, so a page can answer a model pick from memory. It is a snapshot:
    `generation_start` re-reads everything, so a stale context only changes what is shown.
    """

    fixed: tuple[Blocker, ...]  # email, role/project/subscription, billing profile
    models: dict[str, registry.ModelAvailability]
    available_millicredits: int
    spent_millicredits: int | None  # None: no monthly spend cap
    cap_millicredits: int
    run_slots: tuple[Blocker, ...]
    is_owner: bool
    billing_href: str


def generation_blocker_context(
    *, session: Session, user: User, org_id: int, project_id: int | None = None
) -> BlockerContext:
    """Read what `generation_blockers_for` needs (a bounded number of queries).

    Raises:
        NotFound: the org does not exist or the user is neither a member nor an operator.
    """
    org = session.get(Organization, org_id)
    if org is None or org.deleted_at is not None:
        raise NotFound("This organization does not exist or was deleted.")
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    if actor.role is None and not actor.is_operator:
        raise NotFound("There is no organization at this address that you belong to.")
    is_owner = actor.role == OrgRole.owner
    billing = routes.org_billing(org.slug)
    fixed: list[Blocker] = []

    if user.email_verified_at is None:
        fixed.append(
            Blocker(
                Code.email_not_verified,
                f"Verify your email address ({user.email}) to use models: open the link we "
                "sent you, or request a new one.",
                "Send a new link",
                "/verify-email",
            )
        )
    fixed += _policy_blockers(session, actor, org, project_id)

    plan = org_plan(session=session, org_id=org_id)
    if plan.key == "free" and org.billing_profile_added_at is None:
        fixed.append(
            Blocker(
                Code.billing_required,
                "The Free plan needs a billing profile before models can be used (nothing is "
                "charged until you buy credits or upgrade). "
                + (
                    "Add one in Billing."
                    if is_owner
                    else "Ask your organization's owner to add one in Billing."
                ),
                "Add a billing profile" if is_owner else "Open Billing",
                billing,
            )
        )
    models = {item.key: item for item in registry.models_for_plan(session=session, plan=plan)}
    capped = org.monthly_spend_cap_credits is not None
    return BlockerContext(
        fixed=tuple(fixed),
        models=models,
        available_millicredits=credits.credits_available(
            session=session, org_id=org_id, project_id=project_id
        ),
        spent_millicredits=spend_this_cycle(session=session, org_id=org.id) if capped else None,
        cap_millicredits=(org.monthly_spend_cap_credits or 0) * 1000,
        run_slots=tuple(_run_slot_blockers(session, user, org)),
        is_owner=is_owner,
        billing_href=billing,
    )


def generation_blockers_for(
    context: BlockerContext,
    *,
    model_key: str,
    params: dict[str, Any] | None = None,
    prompt: str = "",
) -> list[Blocker]:
    """The blockers of a run of `model_key` with these options, from `context` alone."""
    blockers = list(context.fixed)
    model_blocker, model = _model_blocker_from(context, model_key)
    if model_blocker is not None:
        blockers.append(model_blocker)
    if model is not None:
        try:
            estimate = pricing.estimate_credits(
                model, {**normalize_params(model.modality, params or {}), "prompt": prompt}
            )
        except ValidationFailed:
            estimate = None  # reported by generation_start's validation instead
        if estimate is not None:
            available = context.available_millicredits
            if estimate > available:
                blockers.append(
                    Blocker(
                        Code.insufficient_credits,
                        f"This run needs about {credits.format_credits(estimate)} credits; "
                        f"{credits.format_credits(max(available, 0))} are available. "
                        + (
                            "Top up in Billing."
                            if context.is_owner
                            else "Ask your organization's owner to top up in Billing."
                        ),
                        "Top up credits" if context.is_owner else "Open Billing",
                        context.billing_href,
                        {"needed_millicredits": estimate, "available_millicredits": available},
                    )
                )
            cap_blocker = (
                _spend_cap_over(
                    context.spent_millicredits,
                    context.cap_millicredits,
                    estimate,
                    context.is_owner,
                    context.billing_href,
                )
                if context.spent_millicredits is not None
                else None
            )
            if cap_blocker is not None:
                blockers.append(cap_blocker)
    blockers += context.run_slots
    return blockers


def generation_blockers(
    *,
    session: Session,
    user: User,
    org_id: int,
    model_key: str,
    project_id: int | None = None,
    params: dict[str, Any] | None = None,
    prompt: str = "",
) -> list[Blocker]:
    """Every reason `user` cannot run `model_key` in this org/project now ([] = may run).

    Checks, each named with what to do: email not verified; role (viewers); project outside
    a scoped editor's access; expired subscription; Free plan without a billing profile
    (``billing_required``); the model (unknown, locked by plan, disabled, not configured);
    not enough credits for the estimate (``insufficient_credits``, with a top-up link); the
    monthly spend cap; and too many runs in progress (``concurrent_run_limit``).

    Raises:
        NotFound: the org does not exist or the user is neither a member nor an operator.
    """
    context = generation_blocker_context(
        session=session, user=user, org_id=org_id, project_id=project_id
    )
    return generation_blockers_for(context, model_key=model_key, params=params, prompt=prompt)


def _active_count(table: Any, column: Any, param: str) -> Any:
    return (
        select(func.count())
        .select_from(table)
        .where(col(table.status).in_(ACTIVE_STATUSES), column == bindparam(param))
        .scalar_subquery()
    )


# Runs queued or running of a person (in any organization) and of an organization: Studio
# generations and Competitor Intel reports alike (both hold credits and a worker; one limit
# covers both). Built once: the statement's cache key is then computed once, not per read.
_ACTIVE_RUNS = select(
    _active_count(Generation, Generation.user_id, "user_id")
    + _active_count(CompetitorReport, CompetitorReport.user_id, "user_id"),
    _active_count(Generation, Generation.org_id, "org_id")
    + _active_count(CompetitorReport, CompetitorReport.org_id, "org_id"),
)


def _active_runs(session: Session, *, user_id: int, org_id: int) -> tuple[int, int]:
    """(the person's runs in progress, the organization's), in one statement."""
    mine, in_org = session.execute(_ACTIVE_RUNS, {"user_id": user_id, "org_id": org_id}).one()
    return int(mine), int(in_org)


def _runs_phrase(count: int) -> str:
    return f"{count} run{'' if count == 1 else 's'}"


def _run_slot_blockers(session: Session, user: User, org: Organization) -> list[Blocker]:
    """Too many runs queued or running: the person's own, and the organization's."""
    settings = get_settings()
    blockers: list[Blocker] = []
    per_user = settings.concurrent_runs_per_user
    mine, in_org = _active_runs(session, user_id=user.id, org_id=org.id)
    if mine >= per_user:
        blockers.append(
            Blocker(
                Code.concurrent_run_limit,
                f"You already have {_runs_phrase(mine)} queued or running; one person can have "
                f"at most {per_user} at once (in any organization). Studio runs and Competitor "
                "Intel reports count together. Start this one when one of them finishes.",
                details={"scope": "user", "limit": per_user, "in_progress": mine},
            )
        )
    per_org = settings.concurrent_runs_per_org
    if in_org >= per_org:
        blockers.append(
            Blocker(
                Code.concurrent_run_limit,
                f"{org.name} already has {_runs_phrase(in_org)} queued or running; an "
                f"organization can have at most {per_org} at once. Studio runs and Competitor "
                "Intel reports count together. Start this one when one of them finishes.",
                details={"scope": "org", "limit": per_org, "in_progress": in_org},
            )
        )
    return blockers


def _lock_run_starts(
    session: Session, *, user_id: int, org_id: int, reserve_generation_id: bool = False
) -> int | None:
    """Hold the user's and the org's run-start locks until the transaction ends.

    Run starts of one person or one organization then count the runs in progress and insert
    theirs one after the other. PostgreSQL: transaction-level advisory locks, always user
    first, then org (no other code takes them, so they cannot deadlock with row locks), in one
    round trip: the second lock is taken in a subquery that runs only once the first is held.
    With `reserve_generation_id`, the same round trip reserves the new generation's id, so its
    insert needs no answer and travels with its credit hold (`generation_start`).
    SQLite opens every transaction with ``BEGIN IMMEDIATE``, which already serializes it.
    """
    if not db.is_postgres(session):
        return None
    reserved = "nextval(pg_get_serial_sequence('generations', 'id'))"
    return session.execute(
        text(
            "SELECT pg_advisory_xact_lock(CAST(:org_class AS integer), CAST(:org_id AS integer)), "
            f"{reserved if reserve_generation_id else 'NULL'} "
            "FROM (SELECT pg_advisory_xact_lock("
            "CAST(:user_class AS integer), CAST(:user_id AS integer))) AS user_lock"
        ),
        {
            "user_class": _USER_RUN_START_LOCK,
            "user_id": user_id,
            "org_class": _ORG_RUN_START_LOCK,
            "org_id": org_id,
        },
    ).one()[1]


def _spend_cap_blocker(
    session: Session, org: Organization, estimate: int, is_owner: bool, billing: str
) -> Blocker | None:
    """The owner's monthly spend cap (Billing > Spend controls) stops runs that would pass it."""
    if org.monthly_spend_cap_credits is None:
        return None
    spent = spend_this_cycle(session=session, org_id=org.id)
    return _spend_cap_over(spent, org.monthly_spend_cap_credits * 1000, estimate, is_owner, billing)


def _spend_cap_over(
    spent: int, cap: int, estimate: int, is_owner: bool, billing: str
) -> Blocker | None:
    if spent + estimate <= cap:
        return None
    return Blocker(
        Code.spend_cap_reached,
        f"This run (about {credits.format_credits(estimate)} credits) would pass the monthly spend "
        f"cap of {credits.format_credits(cap)} credits; {credits.format_credits(spent)} are "
        "already spent this cycle. "
        + (
            "Raise or remove the cap in Billing > Spend controls."
            if is_owner
            else "Ask your organization's owner to raise the cap in Billing."
        ),
        "Open spend controls" if is_owner else "Open Billing",
        billing,
        {"spent_millicredits": spent, "cap_millicredits": cap, "needed_millicredits": estimate},
    )


def _model_blocker_from(
    context: BlockerContext, model_key: str
) -> tuple[Blocker | None, registry.ModelAvailability | None]:
    """The blocker for the model (if any) and the model a run would use (the backup if swapped)."""
    availability = context.models.get(model_key) if isinstance(model_key, str) else None
    if availability is None:
        return (
            Blocker(
                Code.model_not_found,
                f"There is no model called {model_key!r}. Pick one from the model list.",
            ),
            None,
        )
    resolved = context.models.get(availability.resolved_key, availability)
    billing = context.billing_href
    if availability.state == registry.LOCKED:
        return (
            Blocker(
                Code.model_locked,
                availability.reason,
                "See plans in Billing",
                billing,
                {"plan_needed": availability.min_plan_key},
            ),
            resolved,
        )
    if availability.state == registry.DISABLED:
        return Blocker(Code.model_disabled, availability.reason), resolved
    if availability.state == registry.NOT_CONFIGURED:
        return Blocker(Code.model_not_configured, availability.reason), resolved
    return None, resolved


# --- parameters -------------------------------------------------------------------------------


def normalize_params(modality: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the options of the modality, validated, with defaults filled in.

    Raises:
        ValidationFailed: an option outside its choices.
    """
    params = dict(params or {})
    if modality == "text":
        tone = params.get("tone") or "friendly"
        length = params.get("length") or "medium"
        if tone not in TEXT_TONES:
            raise ValidationFailed(f"Tone must be one of {', '.join(TEXT_TONES)}.", field="tone")
        if length not in pricing.TEXT_LENGTH_TOKENS:
            raise ValidationFailed("Length must be short, medium or long.", field="length")
        return {"tone": tone, "length": length}
    aspect = params.get("aspect") or ("1:1" if modality == "image" else "16:9")
    if aspect not in IMAGE_ASPECTS:
        raise ValidationFailed(f"Aspect must be one of {', '.join(IMAGE_ASPECTS)}.", field="aspect")
    if modality == "image":
        count = pricing.run_units(
            _RateProbe("per_asset", "image"), {"count": params.get("count", 1)}
        )
        return {"aspect": aspect, "count": count}
    seconds = pricing.run_units(
        _RateProbe("per_second", "video"), {"seconds": params.get("seconds", 6)}
    )
    return {"aspect": aspect, "seconds": seconds}


@dataclass
class _RateProbe:
    rate_unit: str
    modality: str
    rate_millicredits: int = 0


def prompt_is_blank(prompt: str) -> bool:
    """True when nothing visible is written: only spaces, zero-width and other format or
    control characters (U+200B, U+FEFF, U+2060...), which `str.strip` keeps."""
    return not any(
        not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc", "Zs", "Zl", "Zp")
        for ch in prompt
    )


def _validate_prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or prompt_is_blank(prompt):
        raise ValidationFailed(
            "Write a prompt first: describe what you want to create. (Spaces and invisible "
            "characters alone are not a prompt.)",
            field="prompt",
        )
    prompt = prompt.strip()
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValidationFailed(
            f"The prompt is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}. "
            "Shorten it and try again.",
            field="prompt",
        )
    return prompt


# --- start ------------------------------------------------------------------------------------


def _new_public_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(12).replace('-', 'x').replace('_', 'y')}"


def _push_status(generation: Generation, status: GenerationStatus, **extra: Any) -> None:
    now = utcnow()
    generation.status = status.value
    entry = {"status": status.value, "at": now.isoformat()}
    entry.update({key: value for key, value in extra.items() if value})
    generation.status_history = [*(generation.status_history or []), entry]


def generation_start(
    *,
    session: Session,
    user: User,
    org_id: int,
    model_key: str,
    prompt: str,
    params: dict[str, Any] | None = None,
    project_id: int | None = None,
    retry_of_id: int | None = None,
    api_key_id: int | None = None,
    request_id: str | None = None,
) -> Generation:
    """Validate, check every blocker, estimate, create the queued generation, hold credits.

    Flushes; the caller commits (the generation and its hold land together or not at all).

    Raises:
        ValidationFailed: bad prompt or options.
        GenerationBlocked: any blocker (its `blockers` name them all).
    """
    prompt = _validate_prompt(prompt)
    reserved_id = _lock_run_starts(
        session, user_id=user.id, org_id=org_id, reserve_generation_id=True
    )
    # Read once, under the run-start locks: the blockers and the model come from one snapshot.
    context = generation_blocker_context(
        session=session, user=user, org_id=org_id, project_id=project_id
    )
    blockers = generation_blockers_for(context, model_key=model_key, params=params, prompt=prompt)
    if blockers:
        raise GenerationBlocked(blockers)
    requested = context.models[model_key]  # no blocker: the model exists and may run
    model = context.models.get(requested.resolved_key) or registry.model_get(
        session=session, key=requested.resolved_key
    )
    clean = normalize_params(model.modality, params or {})
    estimate = pricing.estimate_credits(model, {**clean, "prompt": prompt})
    if requested.resolved_key != model_key:
        clean["requested_model_key"] = model_key
    generation = Generation(
        public_id=_new_public_id("gen"),
        org_id=org_id,
        project_id=project_id,
        user_id=user.id,
        api_key_id=api_key_id,
        model_key=model.key,
        modality=model.modality,
        prompt=prompt,
        params=clean,
        estimate_millicredits=estimate,
        held_millicredits=estimate,
        retry_of_id=retry_of_id,
        request_id=request_id,
        created_at=utcnow(),
    )
    _push_status(generation, GenerationStatus.queued)
    if model.modality == "text":  # text runs are written in the brand kit's voice
        kit = brand_kit_for(session=session, org_id=org_id, project_id=project_id)
        generation.brand_kit_id = kit.id if kit else None
        generation.brand_kit_label = brand_kit_label(kit) if kit else None
    if reserved_id is not None:  # PostgreSQL: the insert travels with the hold
        generation.id = reserved_id
    else:
        session.add(generation)
        session.flush()
    try:
        credits.credits_hold(
            session=session,
            org_id=org_id,
            amount_millicredits=estimate,
            idempotency_key=hold_key(generation.id),
            project_id=project_id,
            generation_id=generation.id,
            actor_user_id=user.id,
            memo=f"{generation.public_id} on {model.display_name}",
            insert_with=generation if reserved_id is not None else None,
        )
    except InsufficientCredits as error:  # spent by someone else since the check
        org = session.get(Organization, org_id)
        raise GenerationBlocked(
            [Blocker(error.code, error.message, "Open Billing", routes.org_billing(org.slug))]
        ) from None
    from services import run_engine  # the executor imports this module

    # Handed to the executor when the caller commits; a rolled-back start sends nothing.
    run_engine.run_enqueue_after_commit(session=session, generation_id=generation.id)
    return generation


# --- run --------------------------------------------------------------------------------------


def _lock_generation(session: Session, generation_id: int) -> Generation:
    generation = session.exec(
        select(Generation)
        .where(Generation.id == generation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if generation is None:
        raise NotFound("This generation does not exist.")
    return generation


def generation_mark_running(
    *,
    session: Session,
    generation_id: int,
    worker_id: str | None = None,
    lease_seconds: float | None = None,
) -> bool:
    """Move a queued generation to running and commit. False if it was not queued.

    This is the claim of the run executor (`services.run_engine`): the status is re-read under
    the row lock, so of two deliveries of one task only the first moves it (the second sees
    ``running`` and returns False). With `worker_id`, the worker's lease starts now.
    """
    generation = _lock_generation(session, generation_id)
    if generation.status != GenerationStatus.queued.value:
        session.rollback()
        return False
    generation.started_at = utcnow()
    if worker_id is not None:
        generation.worker_id = worker_id[:120]
        generation.lease_expires_at = generation.started_at + timedelta(
            seconds=lease_seconds or get_settings().run_lease_seconds
        )
    _push_status(generation, GenerationStatus.running)
    session.add(generation)
    session.commit()
    return True


def _store_files(generation: Generation | _RunPlan, result: ProviderResult) -> list[dict[str, Any]]:
    """Write output files to storage (outside any transaction); describe them for Asset rows."""
    backend_name = default_backend_name()
    backend = storage_for(backend_name)
    stored = []
    for index, output in enumerate(result.files):
        public_id = _new_public_id("ast")
        key = f"orgs/{generation.org_id}/{generation.public_id}/{public_id}.{output.extension}"
        backend.put(key, output.data, output.content_type)
        stored.append(
            {
                "public_id": public_id,
                "storage_backend": backend_name,
                "storage_key": key,
                "content_type": output.content_type,
                "size_bytes": len(output.data),
                "filename": f"{generation.public_id}"
                + (f"-{index + 1}" if len(result.files) > 1 else "")
                + f".{output.extension}",
            }
        )
    return stored


def _add_assets(session: Session, generation: Generation, stored: list[dict[str, Any]]) -> None:
    for item in stored:
        session.add(
            Asset(
                org_id=generation.org_id,
                project_id=generation.project_id,
                generation_id=generation.id,
                kind=generation.modality,
                created_at=utcnow(),
                **item,
            )
        )


@dataclass(frozen=True)
class _ModelSnapshot:
    """What a run needs of its model, read once when the provider call starts."""

    key: str
    display_name: str
    provider: str
    provider_base_url: str | None
    provider_model_id: str
    modality: str
    rate_millicredits: int
    rate_unit: str

    @classmethod
    def of(cls, model: AIModel) -> _ModelSnapshot:
        return cls(
            key=model.key,
            display_name=model.display_name,
            provider=model.provider,
            provider_base_url=model.provider_base_url,
            provider_model_id=model.provider_model_id,
            modality=model.modality,
            rate_millicredits=model.rate_millicredits,
            rate_unit=model.rate_unit,
        )


@dataclass(frozen=True)
class _RunPlan:
    """A `running` generation about to call its provider (plain values, no session)."""

    generation_id: int
    public_id: str
    org_id: int
    modality: str
    prompt: str
    params: dict[str, Any]
    model: _ModelSnapshot
    brand_context: str = ""  # the brand kit as a system instruction (text runs with a kit)


@dataclass
class _Outcome:
    """What came back from the provider: a result with its stored files, or a failure."""

    result: ProviderResult | None = None
    failure: ProviderError | None = None
    stored: list[dict[str, Any]] = field(default_factory=list)


def _plan(session: Session, generation_id: int) -> _RunPlan | Generation:
    """The plan of a `running` generation (commits), or the generation if it is not running."""
    generation = session.get(Generation, generation_id)
    if generation is None:
        raise NotFound("This generation does not exist.")
    if generation.status != GenerationStatus.running.value:
        return generation
    model = registry.model_get(session=session, key=generation.model_key)
    plan = _RunPlan(
        generation_id=generation.id,
        public_id=generation.public_id,
        org_id=generation.org_id,
        modality=generation.modality,
        prompt=generation.prompt,
        params=dict(generation.params or {}),
        model=_ModelSnapshot.of(model),
        brand_context=_brand_context(session, generation),
    )
    session.commit()  # no transaction (and no lock) is held while the provider works
    return plan


def _brand_context(session: Session, generation: Generation) -> str:
    if generation.modality != "text" or not generation.brand_kit_id:
        return ""
    from models import BrandKit

    return brand_kit_context(session.get(BrandKit, generation.brand_kit_id))


def _text_with_brand_kit(plan: _RunPlan, adapter: Provider, on_delta: TextDelta | None):
    """A text run as a chat whose system turn carries the brand kit."""
    tone = plan.params.get("tone") or "friendly"
    length = plan.params.get("length") or "medium"
    system = (
        f"You are a marketing copywriter. Write in a {tone} tone, {length} length. Answer with "
        f"the copy only.\n\n{plan.brand_context}"
    )
    return adapter.chat(
        model_id=plan.model.provider_model_id,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": plan.prompt}],
        max_tokens=plan.params.get("max_tokens"),
        on_delta=on_delta,
    )


def _call(plan: _RunPlan, adapter: Provider, on_delta: TextDelta | None) -> _Outcome:
    """On the provider's pool, under the call's deadline: call it, store what it made."""
    try:
        if plan.brand_context and plan.modality == "text":
            result = _text_with_brand_kit(plan, adapter, on_delta)
        else:
            result = provider_run(
                adapter,
                modality=plan.modality,
                model_id=plan.model.provider_model_id,
                prompt=plan.prompt,
                params=plan.params,
                on_delta=on_delta,
            )
        if result.modality != "text" and not result.files:
            raise ProviderError(ProviderErrorCode.malformed_response, "No output was returned.")
        return _Outcome(result=result, stored=_store_files(plan, result))
    except ProviderError as error:
        # Cut off at the deadline, however the adapter noticed: one message for every case.
        failure = timeout_error(deadline_for(plan.modality)) if deadline_passed() else error
        return _Outcome(failure=failure)
    except Exception as error:  # noqa: BLE001 - any bug in a provider fails the run cleanly
        if deadline_passed():
            return _Outcome(failure=timeout_error(deadline_for(plan.modality)))
        log.exception("generation %s: provider crashed", plan.public_id)
        return _Outcome(
            failure=ProviderError(
                ProviderErrorCode.provider_error,
                f"The run failed unexpectedly ({type(error).__name__}). Your credits were "
                "returned.",
            )
        )


@dataclass
class _Submitted:
    future: Future | None
    outcome: _Outcome | None
    deadline: float
    seconds: float

    def waiting_time(self) -> float:
        return max(0.0, self.deadline - time.monotonic()) + _DEADLINE_GRACE_SECONDS


def _submit(plan: _RunPlan, provider: Provider | None, on_delta: TextDelta | None) -> _Submitted:
    """Queue the provider call on its provider's pool; its deadline starts now."""
    seconds = deadline_for(plan.modality)
    deadline = time.monotonic() + seconds
    try:
        adapter = provider or provider_for(plan.model)
        pool = provider_pool(adapter)
    except ProviderError as error:
        return _Submitted(None, _Outcome(failure=error), deadline, seconds)
    future = pool.submit(_call, plan, adapter, on_delta, deadline=deadline)
    return _Submitted(future, None, deadline, seconds)


def _keep_late_result(plan: _RunPlan, future: Future) -> None:
    """After a run was failed at its deadline, keep what its provider still sends (no charge)."""

    def done(finished: Future) -> None:
        if finished.cancelled() or finished.exception() is not None:
            return
        outcome = finished.result()
        if outcome.result is not None:
            _BOOKKEEPING.submit(_complete_in_new_session, plan, outcome)

    future.add_done_callback(done)


def _complete(session: Session, plan: _RunPlan, outcome: _Outcome) -> Generation:
    """Settle or release under the generation's row lock; commits.

    If writing a success fails (the database refuses what the provider sent), it is written
    again with figures and text the database can hold, with the same charge.
    """
    try:
        return _complete_once(session, plan, outcome, safe=False)
    except Exception:
        if outcome.failure is not None or outcome.result is None:
            raise
        session.rollback()
        log.exception("generation %s: completion refused; written again", plan.public_id)
        return _complete_once(session, plan, outcome, safe=True)


def _complete_in_new_session(plan: _RunPlan, outcome: _Outcome) -> Generation:
    with db.new_session() as session:
        return _complete(session, plan, outcome)


def _safe_text(value: str | None) -> str | None:
    """Text any database column holds (PostgreSQL refuses NUL characters)."""
    return value.replace("\x00", "") if isinstance(value, str) else None


def _estimated_units(plan: _RunPlan) -> int:
    try:
        return pricing.run_units(plan.model, {**plan.params, "prompt": plan.prompt})
    except ValidationFailed:
        return 0


def _complete_once(
    session: Session, plan: _RunPlan, outcome: _Outcome, *, safe: bool
) -> Generation:
    generation = _lock_generation(session, plan.generation_id)
    result, stored = outcome.result, outcome.stored
    now = utcnow()
    if generation.status != GenerationStatus.running.value:
        # Failed meanwhile (the sweep timed it out and released its hold, or the run was
        # stopped at its deadline): keep what came back so it is not lost; never charge.
        if result is not None and generation.late_result is None:
            generation.late_result = {
                "received_at": now.isoformat(),
                "units": pricing.reported_units(result.units),
                "text": _safe_text(result.text),
                "asset_public_ids": [item["public_id"] for item in stored],
            }
            _add_assets(session, generation, stored)
            session.add(generation)
        session.commit()
        return generation
    if outcome.failure is not None or result is None:
        failure = outcome.failure or ProviderError(ProviderErrorCode.provider_error)
        credits.credits_release(
            session=session,
            idempotency_key=release_key(generation.id),
            generation_id=generation.id,
            reason=f"{failure.code.value}: {failure.message}"[:300],
        )
        generation.failure_code = failure.code.value
        generation.failure_reason = failure.message[:1000]
        generation.finished_at = now
        generation.lease_expires_at = None
        _push_status(generation, GenerationStatus.failed, code=failure.code.value)
        session.add(generation)
        session.add(
            usage_event_for(
                generation,
                outcome="timed_out" if failure.code == ProviderErrorCode.timeout else "failed",
                units=0,
                millicredits=0,
                provider_units=None,
                at=now,
            )
        )
        session.commit()
        _after_completion(session, generation, failed=True)
        return generation
    # Never above the hold (the estimate shown before it started), never a boolean or a
    # negative figure: see pricing.charge_credits.
    units = pricing.reported_units(result.units)
    actual = pricing.charge_credits(
        plan.model, result.units, held_millicredits=generation.held_millicredits
    )
    recorded_units = units if units is not None else _estimated_units(plan)
    credits.credits_settle(
        session=session,
        actual_millicredits=actual,
        idempotency_key=settle_key(generation.id),
        generation_id=generation.id,
        memo=f"{generation.public_id}: {recorded_units} units"
        + ("" if units is not None else " (estimated: no usable usage figure)"),
    )
    _add_assets(session, generation, stored)
    generation.output_text = _safe_text(result.text) if safe else result.text
    generation.charged_millicredits = actual
    generation.finished_at = now
    generation.lease_expires_at = None
    _push_status(generation, GenerationStatus.succeeded)
    session.add(generation)
    session.add(
        usage_event_for(
            generation,
            outcome="succeeded",
            units=recorded_units,
            millicredits=actual,
            provider_units=None if safe else pricing.reported_units(result.provider_units),
            at=now,
        )
    )
    session.commit()
    _after_completion(session, generation, failed=False)
    return generation


def _after_completion(session: Session, generation: Generation, *, failed: bool) -> None:
    """Mail what the completion caused, after its commit (no row lock is held while mail goes
    out). Only the completion that found the run still running gets here, so a failed run is
    mailed once; the low-balance check is a conditional update of its own (once per crossing).
    A crash right after the commit loses the mail, never duplicates it; the minute job still
    catches the low balance. Mail trouble never fails the run."""
    try:
        if failed:
            notifications.run_failed_notify(session=session, generation=generation)
        notifications.low_balance_check(session=session, org_id=generation.org_id)
        session.commit()
    except Exception:  # noqa: BLE001 - the run is complete; the mail is secondary
        session.rollback()
        log.exception("generation %s: completion mail not sent", generation.public_id)


def usage_event_for(
    generation: Generation,
    *,
    outcome: str,
    units: int,
    millicredits: int,
    provider_units: int | None,
    at: datetime,
) -> UsageEvent:
    """The one usage event of a finished run, whatever its outcome (credits 0 unless charged).

    `source` says which surface started it (``api`` for runs with an API key, else
    ``studio``; ``assistant`` and ``intel`` when they run on the executor).
    """
    return UsageEvent(
        org_id=generation.org_id,
        project_id=generation.project_id,
        user_id=generation.user_id,
        generation_id=generation.id,
        source="api" if generation.api_key_id else "studio",
        model_key=generation.model_key,
        modality=generation.modality,
        units=units,
        millicredits=millicredits,
        provider_units=provider_units,
        outcome=outcome,
        request_id=generation.request_id,
        occurred_at=at,
    )


def generation_execute(
    *,
    session: Session,
    generation_id: int,
    provider: Provider | None = None,
    on_delta: TextDelta | None = None,
) -> Generation:
    """Call the provider for a `running` generation and complete it (settle or release).

    The call runs on its provider's pool with a total deadline; this thread waits for it.
    Commits. Exceptions that are not `Exception` (a crash, a kill) propagate and leave the
    generation `running` with its hold open for the timeout sweep.
    """
    plan = _plan(session, generation_id)
    if isinstance(plan, Generation):
        return plan
    submitted = _submit(plan, provider, on_delta)
    outcome, late = submitted.outcome, False
    if submitted.future is not None:
        try:
            outcome = submitted.future.result(timeout=submitted.waiting_time())
        except FutureTimeout:
            submitted.future.cancel()  # still queued: it never starts
            outcome, late = _Outcome(failure=timeout_error(submitted.seconds)), True
        except ProviderError as error:  # dequeued after its deadline: it never started
            outcome = _Outcome(failure=error)
    generation = _complete(session, plan, outcome)
    if late:
        _keep_late_result(plan, submitted.future)
    return generation


def generation_run(
    *,
    session: Session,
    generation_id: int,
    provider: Provider | None = None,
    on_delta: TextDelta | None = None,
) -> Generation:
    """queued -> running -> succeeded | failed, committing each step (see module docstring)."""
    generation_mark_running(session=session, generation_id=generation_id)
    return generation_execute(
        session=session, generation_id=generation_id, provider=provider, on_delta=on_delta
    )


def generation_run_in_new_session(
    generation_id: int, *, provider: Provider | None = None, mark_running: bool = True
) -> Generation:
    """For background threads: run with a session of their own (blocks this thread)."""
    with db.new_session() as session:  # each step commits itself
        if mark_running:
            generation_mark_running(session=session, generation_id=generation_id)
        return generation_execute(session=session, generation_id=generation_id, provider=provider)


# --- run from the event loop ------------------------------------------------------------------

# The database steps of runs started from the event loop: short, and never queued behind
# provider calls or other work on the loop's default executor.
_BOOKKEEPING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="run-bookkeeping")


async def _bookkeeping(work: Callable[..., T], /, *args: Any) -> T:
    return await asyncio.wrap_future(_BOOKKEEPING.submit(work, *args))


def _mark_running_in_new_session(generation_id: int) -> bool:
    with db.new_session() as session:
        return generation_mark_running(session=session, generation_id=generation_id)


def _plan_in_new_session(generation_id: int, mark_running: bool) -> _RunPlan | Generation:
    with db.new_session() as session:
        if mark_running:
            generation_mark_running(session=session, generation_id=generation_id)
        return _plan(session, generation_id)


async def generation_mark_running_async(generation_id: int) -> bool:
    """`generation_mark_running` in a session of its own, without blocking the event loop."""
    return await _bookkeeping(_mark_running_in_new_session, generation_id)


async def generation_run_async(
    generation_id: int, *, provider: Provider | None = None, mark_running: bool = True
) -> Generation:
    """Run a generation from the event loop: no thread of the loop's default executor waits.

    The database steps run on the run-bookkeeping pool; the provider call on its provider's
    pool with its deadline; this coroutine only awaits them. A run past its deadline is failed
    with code ``timeout`` and its hold released, even if its provider thread is still stuck.
    """
    plan = await _bookkeeping(_plan_in_new_session, generation_id, mark_running)
    if isinstance(plan, Generation):
        return plan
    submitted = _submit(plan, provider, None)
    outcome, late = submitted.outcome, False
    if submitted.future is not None:
        try:
            outcome = await asyncio.wait_for(
                asyncio.wrap_future(submitted.future), timeout=submitted.waiting_time()
            )
        except TimeoutError:
            outcome, late = _Outcome(failure=timeout_error(submitted.seconds)), True
        except ProviderError as error:  # dequeued after its deadline: it never started
            outcome = _Outcome(failure=error)
    generation = await _bookkeeping(_complete_in_new_session, plan, outcome)
    if late:
        _keep_late_result(plan, submitted.future)
    return generation


# --- retry and history ------------------------------------------------------------------------


def _visible_generation(
    session: Session, user: User, org_id: int, public_id: str
) -> tuple[Generation, policy.Actor]:
    """The generation if the user may see it (out-of-scope or other org: NotFound)."""
    generation = session.exec(
        select(Generation).where(Generation.public_id == public_id, Generation.org_id == org_id)
    ).first()
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    if generation is None:
        raise NotFound("This generation does not exist or you do not have access to it.")
    try:
        policy.require(
            actor,
            policy.Action.asset_view,
            policy.target_for(session=session, org_id=org_id, project_id=generation.project_id),
        )
    except (NotFound, PermissionDenied):
        raise NotFound("This generation does not exist or you do not have access to it.") from None
    return generation, actor


def generation_retry(*, session: Session, user: User, org_id: int, public_id: str) -> Generation:
    """Start a new run with the same model, prompt, options and project as a failed one.

    Flushes; the caller commits and then runs it. A failed run can be retried once.

    Raises:
        NotFound: not visible to the user.
        Conflict: the run did not fail, or it was already retried.
        GenerationBlocked: as for `generation_start`.
    """
    original, _ = _visible_generation(session, user, org_id, public_id)
    if original.status != GenerationStatus.failed.value:
        raise error_with_code(
            Code.not_retryable,
            f"Only failed runs can be retried; {original.public_id} is {original.status}.",
            base=Conflict,
        )
    already = session.exec(select(Generation).where(Generation.retry_of_id == original.id)).first()
    if already is not None:
        raise error_with_code(
            Code.already_retried,
            f"{original.public_id} was already retried as {already.public_id}; see that run.",
            base=Conflict,
        )
    params = dict(original.params or {})
    model_key = params.pop("requested_model_key", None) or original.model_key
    return generation_start(
        session=session,
        user=user,
        org_id=org_id,
        model_key=model_key,
        prompt=original.prompt,
        params=params,
        project_id=original.project_id,
        retry_of_id=original.id,
    )


def generation_run_again(
    *, session: Session, user: User, org_id: int, public_id: str
) -> Generation:
    """Start a new run with the same model, prompt, options and project as any earlier run
    the user may see (a finished one, or one still running). Unlike a retry, it is not linked
    to the original and may be done any number of times; each is a run of its own, charged as
    one. Flushes; the caller commits and then runs it.

    Raises:
        NotFound: not visible to the user. GenerationBlocked: as for `generation_start`.
    """
    original, _ = _visible_generation(session, user, org_id, public_id)
    params = dict(original.params or {})
    model_key = params.pop("requested_model_key", None) or original.model_key
    return generation_start(
        session=session,
        user=user,
        org_id=org_id,
        model_key=model_key,
        prompt=original.prompt,
        params=params,
        project_id=original.project_id,
    )


@dataclass(frozen=True)
class StatusStep:
    status: str
    at: datetime | None
    code: str = ""


@dataclass(frozen=True)
class AssetRef:
    public_id: str
    kind: str
    content_type: str
    filename: str


@dataclass(frozen=True)
class GenerationView:
    """A generation as its viewers may see it (read model for the UI and the API)."""

    public_id: str
    status: str
    model_key: str
    model_name: str
    requested_model_key: str | None
    modality: str
    project_id: int | None
    project_name: str
    user_name: str
    prompt: str
    params: dict[str, Any]
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    steps: tuple[StatusStep, ...]
    failure_code: str | None
    failure_reason: str | None
    estimate_millicredits: int
    charged_millicredits: int
    output_text: str | None
    assets: tuple[AssetRef, ...]
    late_result: bool
    retry_of_public_id: str | None
    retried_by_public_id: str | None


def _steps(history: list) -> tuple[StatusStep, ...]:
    steps = []
    for item in history or []:
        try:
            at = as_utc(datetime.fromisoformat(item.get("at", "")))
        except (TypeError, ValueError):
            at = None
        steps.append(StatusStep(item.get("status", ""), at, item.get("code", "")))
    return tuple(steps)


def _view_of(
    row: Any,
    *,
    model_name: str,
    project_name: str,
    user_name: str,
    assets: tuple[AssetRef, ...] = (),
    retry_of_public_id: str | None = None,
    retried_by_public_id: str | None = None,
) -> GenerationView:
    params = dict(row.params or {})
    return GenerationView(
        public_id=row.public_id,
        status=row.status,
        model_key=row.model_key,
        model_name=model_name,
        requested_model_key=params.get("requested_model_key"),
        modality=row.modality,
        project_id=row.project_id,
        project_name=project_name,
        user_name=user_name,
        prompt=row.prompt,
        params=params,
        created_at=as_utc(row.created_at),
        started_at=as_utc(row.started_at),
        finished_at=as_utc(row.finished_at),
        steps=_steps(row.status_history),
        failure_code=row.failure_code,
        failure_reason=row.failure_reason,
        estimate_millicredits=row.estimate_millicredits,
        charged_millicredits=row.charged_millicredits,
        output_text=row.output_text,
        assets=assets,
        late_result=bool(row.has_late_result)
        if hasattr(row, "has_late_result")
        else row.late_result is not None,
        retry_of_public_id=retry_of_public_id,
        retried_by_public_id=retried_by_public_id,
    )


def generation_view_started(
    generation: Generation, *, model_name: str, project_name: str, user_name: str
) -> GenerationView:
    """A generation `generation_start` just returned, as its starter sees it, from memory.

    Nothing is read: a new run has no assets, no retries and no result yet, and the names come
    from what the caller already shows (the picker, the project list, the person acting).
    """
    return _view_of(
        generation, model_name=model_name, project_name=project_name, user_name=user_name
    )


# Built once: creating an alias costs far more than the rest of the statement (about 1 ms each).
_RETRY_OF = aliased(Generation)
_RETRY = aliased(Generation)
_RETRIED_BY = (
    select(func.max(_RETRY.public_id)).where(_RETRY.retry_of_id == Generation.id)
).scalar_subquery()
# What a view shows of a generation, read as plain rows (building ORM objects for a page of
# history cost more than the query).
_VIEW_COLUMNS = (
    Generation.id,
    Generation.public_id,
    Generation.status,
    Generation.model_key,
    Generation.modality,
    Generation.project_id,
    Generation.user_id,
    Generation.prompt,
    Generation.params,
    Generation.created_at,
    Generation.started_at,
    Generation.finished_at,
    Generation.status_history,
    Generation.failure_code,
    Generation.failure_reason,
    Generation.estimate_millicredits,
    Generation.charged_millicredits,
    Generation.output_text,
    # A JSON column holds JSON null, not SQL NULL, when there is no late result.
    (func.coalesce(cast(Generation.late_result, String), "null") != "null").label(
        "has_late_result"
    ),
)


def _joined_views(query: Any) -> Any:
    """The page of generations `query` selects (filtered and paged), newest first, with their
    model, project, person and retry links, as one joined statement of plain columns."""
    page = query.with_only_columns(Generation.id).subquery()
    retry_of = _RETRY_OF
    return (
        select(
            *_VIEW_COLUMNS,
            AIModel.display_name.label("model_name"),
            Project.name.label("project_name"),
            User.name.label("user_name"),
            User.email.label("user_email"),
            retry_of.public_id.label("retry_of_public_id"),
            _RETRIED_BY.label("retried_by_public_id"),
        )
        .join(page, page.c.id == Generation.id)
        .outerjoin(AIModel, AIModel.key == Generation.model_key)
        .outerjoin(Project, Project.id == Generation.project_id)
        .outerjoin(User, User.id == Generation.user_id)
        .outerjoin(retry_of, retry_of.id == Generation.retry_of_id)
        .order_by(col(Generation.created_at).desc(), col(Generation.id).desc())
    )


# The assets of a page of generations, in one batch (built once).
_PAGE_ASSETS = (
    select(Asset)
    .where(col(Asset.generation_id).in_(bindparam("generation_ids", expanding=True)))
    .order_by(col(Asset.id))
)


def _views(
    session: Session, joined: Any, params: dict[str, Any] | None = None
) -> list[GenerationView]:
    """The generations of a `_joined_views` statement, as views: that one query for the rows,
    one batch for their assets."""
    rows = session.exec(joined, params=params or {}).all()
    if not rows:
        return []
    assets: dict[int, list[AssetRef]] = {}
    for asset in session.exec(_PAGE_ASSETS, params={"generation_ids": [row.id for row in rows]}):
        assets.setdefault(asset.generation_id, []).append(
            AssetRef(asset.public_id, asset.kind, asset.content_type, asset.filename)
        )
    return [
        _view_of(
            row,
            model_name=row.model_name or row.model_key,
            project_name=row.project_name or "",
            user_name=(row.user_name or row.user_email or "") if row.user_id else "",
            assets=tuple(assets.get(row.id, [])),
            retry_of_public_id=row.retry_of_public_id,
            retried_by_public_id=row.retried_by_public_id,
        )
        for row in rows
    ]


@functools.lru_cache(maxsize=64)
def _history_statement(
    project: bool, scoped: bool, person: bool, status: bool, model: bool, prompt: bool
) -> Any:
    """A page of history with these filters, built once per combination: the values are bound
    parameters, so the statement (and its cache key) is not rebuilt on every read."""
    query = select(Generation).where(Generation.org_id == bindparam("org_id"))
    if project:
        query = query.where(Generation.project_id == bindparam("project_id"))
    elif scoped:
        query = query.where(
            col(Generation.project_id).in_(bindparam("project_ids", expanding=True))
        )
    if person:
        query = query.where(Generation.user_id == bindparam("user_id"))
    if status:
        query = query.where(Generation.status == bindparam("status"))
    if model:
        query = query.where(Generation.model_key == bindparam("model_key"))
    if prompt:
        query = query.where(func.lower(Generation.prompt).like(bindparam("needle"), escape="\\"))
    return _joined_views(
        query.order_by(col(Generation.created_at).desc(), col(Generation.id).desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )


def generations_history(
    *,
    session: Session,
    user: User,
    org_id: int,
    project_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    user_id: int | None = None,
    status: str | None = None,
    model_key: str | None = None,
    prompt_contains: str | None = None,
) -> list[GenerationView]:
    """Generations the user may see, newest first (scoped editors: their projects only).

    Args:
        limit, offset: one page of the list (every run is reachable by paging).
        user_id, status, model_key: only runs of that person, in that status, on that model.
        prompt_contains: only runs whose prompt contains it (case-insensitive).

    Raises:
        NotFound: not a member (and not an operator), or `project_id` outside the scope.
    """
    actor = policy.actor_for(session=session, user=user, org_id=org_id)
    # Listing: project_view (a scoped editor may list; the query keeps to its projects).
    # Each item shown is an asset of a project the actor may see.
    policy.require(
        actor,
        policy.Action.asset_view if project_id is not None else policy.Action.project_view,
        policy.target_for(session=session, org_id=org_id, project_id=project_id),
    )
    scoped = (
        project_id is None
        and actor.project_scoped
        and actor.role is not None
        and not actor.is_operator
    )
    if scoped and not actor.project_ids:
        return []
    needle = (prompt_contains or "").strip()
    params: dict[str, Any] = {
        "org_id": org_id,
        "project_id": project_id,
        "project_ids": sorted(actor.project_ids) if scoped else [],
        "user_id": user_id,
        "status": status,
        "model_key": model_key,
        "needle": "%"
        + needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        + "%",
        "offset": max(0, offset),
        "limit": max(1, min(limit, 200)),
    }
    statement = _history_statement(
        project_id is not None,
        scoped,
        user_id is not None,
        bool(status),
        bool(model_key),
        bool(needle),
    )
    return _views(session, statement, params)  # a shape without a filter ignores its value


_ONE_VIEW = _joined_views(select(Generation).where(Generation.id == bindparam("generation_id")))


def generation_view(*, session: Session, user: User, org_id: int, public_id: str) -> GenerationView:
    """One generation by its public id, if visible to the user (else NotFound)."""
    generation, _ = _visible_generation(session, user, org_id, public_id)
    return _views(session, _ONE_VIEW, {"generation_id": generation.id})[0]


def org_runs_fingerprint(*, session: Session, org_id: int) -> tuple[Any, ...]:
    """What moves when a new run of the organization appears or its balance changes: its newest
    generation and its balance with the time of its last movement. One statement on indexes.

    A page with no run in progress compares it with what it saw last and reads its history again
    only when it differs (a run started elsewhere, a retry or requeue, a top-up, a refund).
    """
    newest = (
        select(Generation.id)
        .where(Generation.org_id == org_id)
        .order_by(col(Generation.created_at).desc(), col(Generation.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    account = CreditAccount.org_id == org_id
    balance = select(CreditAccount.balance_millicredits).where(account).scalar_subquery()
    moved_at = select(CreditAccount.updated_at).where(account).scalar_subquery()
    return tuple(session.exec(select(newest, balance, moved_at)).one())


def generations_count(*, session: Session, org_id: int) -> int:
    return session.exec(
        select(func.count()).select_from(Generation).where(Generation.org_id == org_id)
    ).one()
