"""The report as typed data, and the validator that keeps every claim tied to a stored source.

Every claim (and pricing tier, and recommended action) carries ``sources``: the keys ("S1",
"S2", ...) of the report's stored sources it comes from. `report_validate` checks the data
against the schema *and* that each cited key names one of the report's usable sources, so a
model (or a bug) cannot invent a source: a report citing "S9" when only S1-S3 exist is
rejected, and the run fails with ``intel_report_invalid`` and gives its credits back.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from services.error_codes import Code
from services.errors import ValidationFailed, error_with_code

SOURCE_KEY = re.compile(r"^S\d{1,2}$")
MAX_ITEMS = 12
MAX_CLAIM_CHARS = 600
FOCUSES = ("positioning", "pricing", "messaging", "ads")
FOCUS_LABELS = {
    "positioning": "Positioning",
    "pricing": "Pricing",
    "messaging": "Messaging",
    "ads": "Ads and social",
}

# (field, heading) of the claim lists, in the order a report page shows them.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("positioning", "Positioning"),
    ("value_propositions", "Value propositions"),
    ("channels", "Channels"),
    ("messaging_themes", "Messaging themes"),
    ("strengths", "Strengths"),
    ("weaknesses", "Weaknesses"),
    ("opportunities", "Opportunities"),
    ("risks", "Risks"),
)
SWOT_PARTS: tuple[tuple[str, str], ...] = (
    ("strengths", "Strengths"),
    ("weaknesses", "Weaknesses"),
    ("opportunities", "Opportunities"),
    ("threats", "Threats"),
)


def _check_sources(value: list[str], info: ValidationInfo) -> list[str]:
    known = (info.context or {}).get("source_keys")
    if known is None:
        raise ValueError("the report's source keys are needed to check its citations")
    cleaned: list[str] = []
    for key in value:
        if not isinstance(key, str) or not SOURCE_KEY.match(key):
            raise ValueError(f"{key!r} is not a source key (S1, S2, ...)")
        if key not in known:
            raise ValueError(f"cites {key}, which is not one of this report's sources")
        if key not in cleaned:
            cleaned.append(key)
    return cleaned


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Claim(_Strict):
    text: str = Field(min_length=1, max_length=MAX_CLAIM_CHARS)
    sources: list[str] = Field(min_length=1, max_length=6)

    _sources = field_validator("sources")(_check_sources)


class PricingTier(_Strict):
    name: str = Field(min_length=1, max_length=80)
    price: str = Field(default="", max_length=60)  # as the page says it: "$49", "Contact sales"
    period: str = Field(default="", max_length=40)  # "per month", "per year", ""
    features: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    sources: list[str] = Field(min_length=1, max_length=6)

    _sources = field_validator("sources")(_check_sources)

    @field_validator("features")
    @classmethod
    def _short_features(cls, value: list[str]) -> list[str]:
        return [str(item).strip()[:200] for item in value if str(item).strip()]


class RecommendedAction(_Strict):
    text: str = Field(min_length=1, max_length=MAX_CLAIM_CHARS)
    prompt: str = Field(min_length=1, max_length=1500)  # what "Create in Studio" fills in
    tool: str = Field(default="ad-copy", max_length=64)
    sources: list[str] = Field(min_length=1, max_length=6)

    _sources = field_validator("sources")(_check_sources)


class Swot(_Strict):
    strengths: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    weaknesses: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    opportunities: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    threats: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)


class ReportData(_Strict):
    """One competitor report. Lists may be empty when the sources say nothing about them."""

    competitor: str = Field(min_length=1, max_length=200)
    focus: str = "positioning"
    us: str = Field(default="", max_length=200)  # the brand kit the report compares with
    headline: Claim | None = None  # the competitor's main promise, as its home page puts it
    summary: list[Claim] = Field(min_length=1, max_length=MAX_ITEMS)
    positioning: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    value_propositions: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    pricing_tiers: list[PricingTier] = Field(default_factory=list, max_length=MAX_ITEMS)
    channels: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    messaging_themes: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    strengths: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    weaknesses: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    swot: Swot = Field(default_factory=Swot)
    opportunities: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    risks: list[Claim] = Field(default_factory=list, max_length=MAX_ITEMS)
    recommended_actions: list[RecommendedAction] = Field(default_factory=list, max_length=8)

    @field_validator("focus")
    @classmethod
    def _known_focus(cls, value: str) -> str:
        if value not in FOCUSES:
            raise ValueError(f"focus must be one of {', '.join(FOCUSES)}")
        return value


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def report_validate(data: Any, source_keys: set[str] | frozenset[str]) -> ReportData:
    """The report as `ReportData`, if it matches the schema and cites only `source_keys`.

    Raises:
        ValidationFailed (``intel_report_invalid``): names the first problem, e.g.
            "summary.0.sources: cites S9, which is not one of this report's sources".
    """
    try:
        if isinstance(data, (str, bytes)):
            return ReportData.model_validate_json(
                data, context={"source_keys": frozenset(source_keys)}
            )
        return ReportData.model_validate(data, context={"source_keys": frozenset(source_keys)})
    except ValidationError as error:
        raise error_with_code(
            Code.intel_report_invalid,
            f"The report was not accepted: {_first_problem(error)}.",
            base=ValidationFailed,
        ) from None


def report_json_schema() -> dict:
    """The JSON schema a hosted model is asked to answer in."""
    return ReportData.model_json_schema()


__all__ = [
    "FOCUSES",
    "FOCUS_LABELS",
    "SECTIONS",
    "SWOT_PARTS",
    "Claim",
    "PricingTier",
    "RecommendedAction",
    "ReportData",
    "Swot",
    "report_json_schema",
    "report_validate",
]
