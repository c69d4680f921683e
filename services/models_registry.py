"""The model registry as an organization sees it, and the operator controls over it.

Every model of the catalog is listed for every org with its *effective availability*:

* ``disabled``       an operator turned it off (no one may run it);
* ``not_configured`` an ``openai_compatible`` model while neither OPENAI_BASE_URL nor a
                     per-model base URL is set (the reason says so);
* ``locked``         the org's plan ranks below the model's minimum plan (upgrade modal);
* ``available``      runnable; when an operator swapped it for its backup, runs resolve to
                     the backup (``resolved_key``) and the studio shows a banner.

Operator actions (``model_disable``/``model_enable``/``model_swap``) require
``Action.operator_models`` and write an audit entry. They flush; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core import db
from core.clock import utcnow
from core.settings import get_settings
from models import AIModel, Plan, User
from models.enums import Modality, ModelStatus, RateUnit
from services import policy
from services.audit import audit_record
from services.catalog import plans_by_key
from services.credits import format_credits
from services.error_codes import Code
from services.errors import Conflict, NotFound, ValidationFailed, error_with_code
from services.plan_limits import org_plan

AVAILABLE = "available"
LOCKED = "locked"
DISABLED = "disabled"
NOT_CONFIGURED = "not_configured"

MODALITY_ORDER = (Modality.text.value, Modality.image.value, Modality.video.value)
_RATE_UNIT_LABEL = {
    RateUnit.per_1k_tokens.value: "per 1K tokens",
    RateUnit.per_asset.value: "per image",
    RateUnit.per_second.value: "per second",
}


@dataclass(frozen=True)
class ModelAvailability:
    """One registry row as a given org may use it (a read model; safe to show)."""

    key: str
    display_name: str
    modality: str
    provider: str
    tier: str
    description: str
    rate_millicredits: int
    rate_unit: str
    rate_label: str  # "4 credits per image"
    min_plan_key: str
    min_plan_name: str
    status: str  # registry status: active | disabled | swapped
    state: str  # available | locked | disabled | not_configured
    reason: str  # "" when available and not swapped; otherwise for a person
    resolved_key: str  # the model a run actually uses (the backup while swapped)
    swapped_to_key: str | None = None
    swapped_to_name: str | None = None

    @property
    def usable(self) -> bool:
        return self.state == AVAILABLE


@dataclass(frozen=True)
class ModelSwap:
    model_key: str
    model_name: str
    backup_key: str
    backup_name: str
    since: datetime | None
    reason: str


def rate_label(model: AIModel) -> str:
    unit = _RATE_UNIT_LABEL.get(model.rate_unit, model.rate_unit)
    amount = format_credits(model.rate_millicredits)
    noun = "credit" if model.rate_millicredits == 1000 else "credits"
    return f"{amount} {noun} {unit}"


def model_is_configured(model: AIModel) -> bool:
    """Local models always are; OpenAI-compatible ones need a base URL (global or per model)."""
    if model.provider != "openai_compatible":
        return True
    return bool(model.provider_base_url or get_settings().openai_base_url)


def _not_configured_reason(model: AIModel) -> str:
    # Said to customers: no server variables (operators find those in the picker and README).
    return (
        f"{model.display_name} is not available yet. Pick a Studio Local model, or contact "
        "support if you need it."
    )


_MODELS = select(AIModel).order_by(col(AIModel.sort_order), col(AIModel.key))  # built once


def _all_models(session: Session) -> list[AIModel]:
    """The registry in catalog order, read once per unit of work (the picker, the swap banner
    and the blockers of one event ask for it)."""
    return list(db.read_once(session, ("ai_models",), lambda: list(session.exec(_MODELS))))


def _plans(session: Session) -> dict[str, Plan]:
    return plans_by_key(session=session)


def _availability(
    model: AIModel, *, plan: Plan, plans: dict[str, Plan], by_key: dict[str, AIModel]
) -> ModelAvailability:
    min_plan = plans.get(model.min_plan_key)
    min_rank = min_plan.rank if min_plan is not None else 0
    min_name = min_plan.name if min_plan is not None else model.min_plan_key
    state, reason, resolved = AVAILABLE, "", model.key
    swapped_to: AIModel | None = None
    if model.status == ModelStatus.disabled.value:
        state = DISABLED
        reason = (
            f"{model.display_name} is temporarily turned off by the platform team"
            + (f" ({model.status_reason})" if model.status_reason else "")
            + ". Pick another model."
        )
    elif plan.rank < min_rank:
        state = LOCKED
        reason = (
            f"{model.display_name} needs the {min_name} plan or higher; this organization is "
            f"on {plan.name}. Upgrade in Billing to use it."
        )
    elif model.status == ModelStatus.swapped.value:
        swapped_to = by_key.get(model.backup_model_key or "")
        if (
            swapped_to is None
            or swapped_to.status != ModelStatus.active.value
            or not model_is_configured(swapped_to)
        ):
            state = DISABLED
            reason = (
                f"{model.display_name} is temporarily replaced, and its backup is unavailable. "
                "Pick another model."
            )
        else:
            resolved = swapped_to.key
            reason = (
                f"{model.display_name} is temporarily replaced by {swapped_to.display_name}; "
                f"runs use {swapped_to.display_name} at its rate ({rate_label(swapped_to)})."
            )
    elif not model_is_configured(model):
        state = NOT_CONFIGURED
        reason = _not_configured_reason(model)
    return ModelAvailability(
        key=model.key,
        display_name=model.display_name,
        modality=model.modality,
        provider=model.provider,
        tier=model.tier,
        description=model.description,
        rate_millicredits=model.rate_millicredits,
        rate_unit=model.rate_unit,
        rate_label=rate_label(model),
        min_plan_key=model.min_plan_key,
        min_plan_name=min_name,
        status=model.status,
        state=state,
        reason=reason,
        resolved_key=resolved,
        swapped_to_key=swapped_to.key if swapped_to is not None and resolved != model.key else None,
        swapped_to_name=(
            swapped_to.display_name if swapped_to is not None and resolved != model.key else None
        ),
    )


def models_for_plan(*, session: Session, plan: Plan) -> list[ModelAvailability]:
    """Every registry model with its availability under `plan`, in catalog order."""
    models = _all_models(session)
    plans = _plans(session)
    by_key = {model.key: model for model in models}
    return [_availability(m, plan=plan, plans=plans, by_key=by_key) for m in models]


def models_for_org(*, session: Session, org_id: int) -> list[ModelAvailability]:
    """Every registry model with its availability for the org's current plan."""
    return models_for_plan(session=session, plan=org_plan(session=session, org_id=org_id))


def model_availability(*, session: Session, org_id: int, model_key: str) -> ModelAvailability:
    """One model's availability for the org.

    Raises:
        NotFound: (code ``model_not_found``) no such model in the registry.
    """
    for item in models_for_org(session=session, org_id=org_id):
        if item.key == model_key:
            return item
    raise error_with_code(
        Code.model_not_found,
        f"There is no model called {model_key!r}. Pick one from the model list.",
        base=NotFound,
    )


def model_get(*, session: Session, key: str) -> AIModel:
    model = session.exec(select(AIModel).where(AIModel.key == key)).first()
    if model is None:
        raise error_with_code(
            Code.model_not_found,
            f"There is no model called {key!r}. Pick one from the model list.",
            base=NotFound,
        )
    return model


def active_swaps(*, session: Session) -> list[ModelSwap]:
    """Models currently swapped for their backup, naming both (for the studio banner)."""
    models = _all_models(session)
    by_key = {model.key: model for model in models}
    swaps = []
    for model in models:
        if model.status != ModelStatus.swapped.value:
            continue
        backup = by_key.get(model.backup_model_key or "")
        swaps.append(
            ModelSwap(
                model_key=model.key,
                model_name=model.display_name,
                backup_key=backup.key if backup else "",
                backup_name=backup.display_name if backup else "(no backup)",
                since=model.status_changed_at,
                reason=model.status_reason,
            )
        )
    return swaps


# --- operator actions -------------------------------------------------------------------------


def _require_operator(session: Session, actor: User) -> None:
    policy.require(
        policy.actor_for(session=session, user=actor, org_id=None),
        policy.Action.operator_models,
        policy.Target(),
    )


def _set_status(
    session: Session, actor: User, model: AIModel, status: ModelStatus, reason: str, action: str
) -> AIModel:
    previous = model.status
    model.status = status.value
    model.status_reason = (reason or "").strip()[:300]
    model.status_changed_at = utcnow()
    model.updated_at = utcnow()
    session.add(model)
    audit_record(
        session=session,
        action=action,
        actor_user_id=actor.id,
        target_type="ai_model",
        target_id=model.key,
        details={
            "from": previous,
            "to": status.value,
            "reason": model.status_reason,
            "backup": model.backup_model_key if status == ModelStatus.swapped else None,
        },
    )
    session.flush()
    return model


def model_disable(*, session: Session, actor: User, model_key: str, reason: str = "") -> AIModel:
    """Turn a model off for everyone (operators only). Flushes; the caller commits.

    Raises:
        PermissionDenied: (``operator_only``) the actor is not platform staff.
        NotFound: no such model.
    """
    _require_operator(session, actor)
    model = model_get(session=session, key=model_key)
    return _set_status(session, actor, model, ModelStatus.disabled, reason, "model.disabled")


def model_enable(*, session: Session, actor: User, model_key: str, reason: str = "") -> AIModel:
    """Put a disabled or swapped model back in service (operators only)."""
    _require_operator(session, actor)
    model = model_get(session=session, key=model_key)
    return _set_status(session, actor, model, ModelStatus.active, reason, "model.enabled")


def model_swap(*, session: Session, actor: User, model_key: str, reason: str = "") -> AIModel:
    """Route a model's runs to its backup model (operators only); the studio shows a banner.

    Raises:
        ValidationFailed: the model has no backup.
        Conflict: the backup itself is not active.
    """
    _require_operator(session, actor)
    model = model_get(session=session, key=model_key)
    if not model.backup_model_key:
        raise ValidationFailed(
            f"{model.display_name} has no backup model in the catalog, so it cannot be swapped. "
            "Disable it instead.",
            field="model",
        )
    backup = model_get(session=session, key=model.backup_model_key)
    if backup.status != ModelStatus.active.value:
        raise Conflict(
            f"The backup {backup.display_name} is {backup.status}; enable it first, "
            f"then swap {model.display_name}.",
        )
    return _set_status(session, actor, model, ModelStatus.swapped, reason, "model.swapped")
