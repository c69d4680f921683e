"""Read models for choosing a model: a picker row (`ModelOption`) and the upgrade offer a locked
row opens (`UpgradeOffer`). The views in `components/model_picker.py` and
`components/upgrade_modal.py` render them; nothing here is a table row or a provider detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlmodel import Session

from core import routes
from models.enums import OrgRole
from services import models_registry as registry
from services import orgs as org_service
from services.catalog import plans_list

_STATE_LABELS = {
    registry.DISABLED: "Turned off",
    registry.NOT_CONFIGURED: "Not configured",
}


@dataclass
class ModelOption:
    """A registry row for the browser (no provider URLs or ids)."""

    key: str = ""
    name: str = ""
    modality: str = ""
    description: str = ""
    rate_label: str = ""
    state: str = "available"  # available | locked | disabled | not_configured
    state_label: str = ""  # "Needs Scale", "Turned off", "Not configured", "" when available
    note: str = ""  # the reason, or the swap notice
    min_plan_name: str = ""
    tier: str = "standard"


@dataclass
class UpgradeOffer:
    model_name: str = ""
    plan_name: str = ""
    price_label: str = ""  # "$399 / month"
    unlocks: list[str] = field(default_factory=list)
    billing_href: str = ""
    model_key: str = ""  # the locked model's row, where focus returns when the offer closes
    is_owner: bool = False
    owner_names: str = ""  # "Olivia Owner"


def model_option(row: registry.ModelAvailability, *, operator: bool = False) -> ModelOption:
    """A picker row: the lock names the plan it needs; other states say why in text. Only a
    platform operator is told which server variable would make a hosted model work."""
    if row.state == registry.LOCKED:
        label = f"Needs {row.min_plan_name}"
        note = f"Available on {row.min_plan_name} and higher."
    elif row.state == registry.NOT_CONFIGURED:
        label = _STATE_LABELS[row.state]
        note = (
            "Not set up on this server (OPENAI_BASE_URL is not set)."
            if operator
            else "Not available yet — contact support."
        )
    else:
        label = _STATE_LABELS.get(row.state, "")
        note = row.reason
    return ModelOption(
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


def upgrade_offer(
    *,
    session: Session,
    org_id: int,
    org_slug: str,
    is_owner: bool,
    model: ModelOption,
    options: list[ModelOption],
) -> UpgradeOffer:
    """The offer a locked row opens: the plan that unlocks `model`, its price, the other models
    it unlocks among `options` (the picker's rows) and its features, and who can upgrade."""
    plan = next((p for p in plans_list(session=session) if p.name == model.min_plan_name), None)
    unlocks = [
        option.name
        for option in options
        if option.state == registry.LOCKED and option.min_plan_name == model.min_plan_name
    ]
    owners = [
        member.name
        for member in org_service.team_list(session=session, org_id=org_id)
        if member.role == OrgRole.owner.value
    ]
    price = f"${plan.price_cents_monthly / 100:,.0f} / month" if plan is not None else "see Billing"
    return UpgradeOffer(
        model_key=model.key,
        model_name=model.name,
        plan_name=model.min_plan_name,
        price_label=price,
        unlocks=[f"Models: {', '.join(unlocks)}", *(plan.features if plan else [])],
        billing_href=routes.org_billing(org_slug),
        is_owner=is_owner,
        owner_names=", ".join(owners) or "the owner",
    )


def focus_model_row_script(model_key: str) -> str:
    """Script that puts focus back on a picker row (after the app-opened upgrade dialog closes,
    Radix has no trigger to return it to)."""
    key = json.dumps(model_key)
    return f"document.querySelector('[data-model-key=' + CSS.escape({key}) + ']')?.focus()"
