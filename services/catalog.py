"""Plan, model and tool catalogs: data files loaded idempotently into the database."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlmodel import Session, select

from core import db
from core.clock import utcnow
from core.settings import PROJECT_ROOT
from models import AIModel, Plan, Tool
from models.enums import Modality, RateUnit

CATALOG_DIR = PROJECT_ROOT / "catalog"

_RATE_UNIT_FOR_MODALITY = {
    Modality.text: RateUnit.per_1k_tokens,
    Modality.image: RateUnit.per_asset,
    Modality.video: RateUnit.per_second,
}


class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file, entry and field."""


@dataclass(frozen=True)
class CatalogSyncResult:
    plans_added: int
    plans_updated: int
    models_added: int
    models_updated: int
    tools_added: int
    tools_updated: int

    @property
    def changed(self) -> bool:
        return any(
            (
                self.plans_added,
                self.plans_updated,
                self.models_added,
                self.models_updated,
                self.tools_added,
                self.tools_updated,
            )
        )


def _limit(value: int | None) -> int | None:
    return None if value is None or value < 0 else int(value)


def credits_to_millicredits(value: int | float | str | Decimal) -> int:
    """Exact conversion of a catalog credit figure (up to 3 decimals) to millicredits."""
    amount = Decimal(str(value)) * 1000
    if amount != amount.to_integral_value():
        raise CatalogError(f"credit figure {value!r} has more than 3 decimals")
    return int(amount)


def _load(path: Path, table: str) -> list[dict]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path.name}: cannot be read: {exc}") from exc
    entries = data.get(table, [])
    keys = [entry.get("key") for entry in entries]
    if any(not key for key in keys):
        raise CatalogError(f"{path.name}: every [[{table}]] needs a key")
    if len(set(keys)) != len(keys):
        raise CatalogError(f"{path.name}: duplicate keys in [[{table}]]")
    return entries


def _apply(row, values: dict) -> bool:
    changed = False
    for field, value in values.items():
        if getattr(row, field) != value:
            setattr(row, field, value)
            changed = True
    return changed


def catalog_sync(*, session: Session, catalog_dir: Path = CATALOG_DIR) -> CatalogSyncResult:
    """Insert or update plans, models and tools from the catalog files. Safe to run repeatedly.

    Operator-managed model state (status, reason) is never overwritten by the catalog.
    The caller commits.
    """
    plan_entries = _load(catalog_dir / "plans.toml", "plan")
    model_entries = _load(catalog_dir / "models.toml", "model")
    tool_entries = _load(catalog_dir / "tools.toml", "tool")
    counts = dict.fromkeys(
        (
            "plans_added",
            "plans_updated",
            "models_added",
            "models_updated",
            "tools_added",
            "tools_updated",
        ),
        0,
    )

    plans = {plan.key: plan for plan in session.exec(select(Plan))}
    for entry in plan_entries:
        values = {
            "name": entry["name"],
            "rank": int(entry.get("rank", 0)),
            "price_cents_monthly": int(entry.get("price_cents_monthly", 0)),
            "monthly_credits": int(entry.get("monthly_credits", 0)),
            "max_orgs_owned": _limit(entry.get("max_orgs_owned")),
            "max_projects": _limit(entry.get("max_projects")),
            "max_seats": _limit(entry.get("max_seats")),
            "max_pending_invites": _limit(entry.get("max_pending_invites")),
            "assistant_messages_per_day": _limit(entry.get("assistant_messages_per_day")),
            "competitor_reports_per_day": _limit(entry.get("competitor_reports_per_day")),
            "tool_runs_per_day": _limit(entry.get("tool_runs_per_day")),
            "features": list(entry.get("features", [])),
            "is_public": bool(entry.get("is_public", True)),
        }
        if "stripe_price_id" in entry:
            values["stripe_price_id"] = entry["stripe_price_id"]
        plan = plans.get(entry["key"])
        if plan is None:
            session.add(Plan(key=entry["key"], **values))
            counts["plans_added"] += 1
        elif _apply(plan, values):
            plan.updated_at = utcnow()
            counts["plans_updated"] += 1
    session.flush()
    plan_keys = {entry["key"] for entry in plan_entries} | set(plans)

    models = {model.key: model for model in session.exec(select(AIModel))}
    model_keys = {entry["key"] for entry in model_entries}
    for entry in model_entries:
        where = f"models.toml [{entry['key']}]"
        try:
            modality = Modality(entry["modality"])
            rate_unit = RateUnit(entry.get("rate_unit", _RATE_UNIT_FOR_MODALITY[modality]))
        except (KeyError, ValueError) as exc:
            raise CatalogError(f"{where}: bad modality or rate_unit") from exc
        if rate_unit != _RATE_UNIT_FOR_MODALITY[modality]:
            raise CatalogError(
                f"{where}: {modality} models are rated {_RATE_UNIT_FOR_MODALITY[modality]}"
            )
        if entry.get("min_plan") not in plan_keys:
            raise CatalogError(f"{where}: unknown min_plan {entry.get('min_plan')!r}")
        backup = entry.get("backup")
        if backup is not None and backup not in model_keys:
            raise CatalogError(f"{where}: unknown backup model {backup!r}")
        values = {
            "display_name": entry["display_name"],
            "modality": modality.value,
            "provider": entry["provider"],
            "provider_model_id": entry["provider_model_id"],
            "min_plan_key": entry["min_plan"],
            "tier": entry.get("tier", "standard"),
            "rate_millicredits": credits_to_millicredits(entry["rate"]),
            "rate_unit": rate_unit.value,
            "backup_model_key": backup,
            "description": entry.get("description", ""),
            "provider_base_url": entry.get("provider_base_url"),
            "sort_order": int(entry.get("sort_order", 0)),
        }
        model = models.get(entry["key"])
        if model is None:
            session.add(AIModel(key=entry["key"], **values))
            counts["models_added"] += 1
        elif _apply(model, values):
            model.updated_at = utcnow()
            counts["models_updated"] += 1

    tools = {tool.key: tool for tool in session.exec(select(Tool))}
    for entry in tool_entries:
        if entry.get("default_model") not in model_keys:
            raise CatalogError(f"tools.toml [{entry['key']}]: unknown default_model")
        values = {
            "name": entry["name"],
            "modality": Modality(entry["modality"]).value,
            "default_model_key": entry["default_model"],
            "standard_params": dict(entry.get("standard_params", {})),
            "description": entry.get("description", ""),
            "sort_order": int(entry.get("sort_order", 0)),
        }
        tool = tools.get(entry["key"])
        if tool is None:
            session.add(Tool(key=entry["key"], **values))
            counts["tools_added"] += 1
        elif _apply(tool, values):
            counts["tools_updated"] += 1
    session.flush()
    return CatalogSyncResult(**counts)


_PLANS = select(Plan)  # built once: its cache key is computed once, not per read


def plans_by_key(*, session: Session) -> dict[str, Plan]:
    """Every plan by key (a handful of rows), read once per unit of work: a page asks for the
    org's plan and for the plans that unlock each model."""
    return db.read_once(
        session, ("plans",), lambda: {plan.key: plan for plan in session.exec(_PLANS)}
    )


def plan_get(*, session: Session, key: str) -> Plan:
    plan = plans_by_key(session=session).get(key)
    if plan is None:
        raise CatalogError(f"plan {key!r} is not in the catalog")
    return plan


def plans_list(*, session: Session) -> list[Plan]:
    return list(session.exec(select(Plan).order_by(Plan.rank)))
