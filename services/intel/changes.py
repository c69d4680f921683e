"""What changed since the last report on a competitor: structured fields, not raw pages.

Two reports are compared field by field (headline, pricing tiers, value propositions,
positioning, channels), with text folded (case, spacing, punctuation) before comparing. Raw
HTML and page hashes are never compared, so a rotating testimonial, a new cookie banner or a
re-ordered footer is not a change; a new price tier or a changed headline is.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Change:
    kind: str  # added | removed | changed
    field: str  # "Headline", "Pricing tier", ...
    text: str  # for people: "New pricing tier: Scale at $99 per month"

    def as_dict(self) -> dict:
        return asdict(self)


def _fold(text: str) -> str:
    return re.sub(r"[^\w$€£%]+", " ", str(text or "").casefold()).strip()


def _texts(report: dict, field: str) -> dict[str, str]:
    return {_fold(item.get("text", "")): item.get("text", "") for item in report.get(field) or []}


def _tier_line(tier: dict) -> str:
    period = f" {tier.get('period')}" if tier.get("period") else ""
    return f"{tier.get('name')} at {tier.get('price') or 'no listed price'}{period}"


def report_changes(previous: dict, current: dict) -> list[Change]:
    """Changes from `previous` to `current` (both `ReportData` dicts), in a stable order."""
    changes: list[Change] = []
    old_head = (previous.get("headline") or {}).get("text", "")
    new_head = (current.get("headline") or {}).get("text", "")
    if _fold(old_head) != _fold(new_head) and (old_head or new_head):
        changes.append(
            Change("changed", "Headline", f"Headline changed from “{old_head}” to “{new_head}”.")
        )
    old_tiers = {_fold(t.get("name", "")): t for t in previous.get("pricing_tiers") or []}
    new_tiers = {_fold(t.get("name", "")): t for t in current.get("pricing_tiers") or []}
    for key, tier in new_tiers.items():
        if key not in old_tiers:
            changes.append(
                Change("added", "Pricing tier", f"New pricing tier: {_tier_line(tier)}.")
            )
        elif (_fold(tier.get("price", "")), _fold(tier.get("period", ""))) != (
            _fold(old_tiers[key].get("price", "")),
            _fold(old_tiers[key].get("period", "")),
        ):
            changes.append(
                Change(
                    "changed",
                    "Pricing tier",
                    f"Price changed: {_tier_line(old_tiers[key])} → {_tier_line(tier)}.",
                )
            )
    for key, tier in old_tiers.items():
        if key not in new_tiers:
            changes.append(
                Change("removed", "Pricing tier", f"Pricing tier gone: {_tier_line(tier)}.")
            )
    for field, label in (
        ("value_propositions", "Value proposition"),
        ("positioning", "Positioning"),
        ("channels", "Channel"),
    ):
        old, new = _texts(previous, field), _texts(current, field)
        for key, text in new.items():
            if key not in old:
                changes.append(Change("added", label, f"New {label.lower()}: {text}"))
        for key, text in old.items():
            if key not in new:
                changes.append(Change("removed", label, f"No longer there: {text}"))
    return changes


__all__ = ["Change", "report_changes"]
