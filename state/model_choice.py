"""Read models for choosing a model: a picker row (`ModelOption`) and the upgrade offer a locked
row opens (`UpgradeOffer`). The views in `components/model_picker.py` and
`components/upgrade_modal.py` render them; nothing here is a table row or a provider detail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services import models_registry as registry

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
