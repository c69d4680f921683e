"""Credit prices of runs: pure functions of a model's rate and the run's parameters.

Rates are integer millicredits per rate unit (text: per 1K tokens, image: per asset,
video: per second). Text costs are rounded UP to a whole millicredit, so a run is never
priced below its exact cost. No database access here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from models.enums import RateUnit
from services.errors import ValidationFailed

# Output-length presets for text runs when the caller does not give a token budget.
TEXT_LENGTH_TOKENS = {"short": 500, "medium": 750, "long": 1500}
DEFAULT_TEXT_LENGTH = "medium"
CHARS_PER_TOKEN = 4  # a common rough ratio for English prompts
MAX_TEXT_TOKENS = 100_000
MAX_IMAGE_COUNT = 10
DEFAULT_IMAGE_COUNT = 1
MAX_VIDEO_SECONDS = 60
DEFAULT_VIDEO_SECONDS = 6
MAX_ACTUAL_UNITS = 10_000_000


class RatedModel(Protocol):
    """What pricing needs from an AI model (an `AIModel` row or any look-alike)."""

    rate_millicredits: int
    rate_unit: str
    modality: str


class ToolLike(Protocol):
    standard_params: dict


def _whole_number(value: Any, *, field: str, label: str, minimum: int, maximum: int) -> int:
    """An integer parameter in [minimum, maximum]; integral floats and digit strings accepted."""
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    if number is None or not minimum <= number <= maximum:
        raise ValidationFailed(
            f"{label} must be a whole number from {minimum:,} to {maximum:,} (got {value!r}).",
            field=field,
        )
    return number


def _rate(model: RatedModel) -> tuple[int, RateUnit]:
    rate = model.rate_millicredits
    if isinstance(rate, bool) or not isinstance(rate, int) or rate < 0:
        raise ValidationFailed("This model has no valid credit rate.", field="model")
    try:
        unit = RateUnit(model.rate_unit)
    except ValueError:
        raise ValidationFailed(
            f"This model has an unknown rate unit {model.rate_unit!r}.", field="model"
        ) from None
    return rate, unit


def estimate_text_tokens(*, prompt: str = "", length: str | None = None) -> int:
    """Tokens of a text run without an explicit budget: prompt (~4 chars/token) + output preset."""
    preset = DEFAULT_TEXT_LENGTH if length in (None, "") else length
    if preset not in TEXT_LENGTH_TOKENS:
        choices = ", ".join(TEXT_LENGTH_TOKENS)
        raise ValidationFailed(f"Length must be one of {choices} (got {length!r}).", field="length")
    if not isinstance(prompt, str):
        raise ValidationFailed("The prompt must be text.", field="prompt")
    return math.ceil(len(prompt) / CHARS_PER_TOKEN) + TEXT_LENGTH_TOKENS[preset]


def run_units(model: RatedModel, params: Mapping[str, Any]) -> int:
    """The units a run will be priced on (tokens, assets or seconds), validated."""
    _, unit = _rate(model)
    if not isinstance(params, Mapping):
        raise ValidationFailed("Run parameters must be a mapping.", field="params")
    if unit == RateUnit.per_1k_tokens:
        if params.get("tokens") is not None:
            return _whole_number(
                params["tokens"], field="tokens", label="Tokens", minimum=1, maximum=MAX_TEXT_TOKENS
            )
        tokens = estimate_text_tokens(
            prompt=params.get("prompt") or "", length=params.get("length")
        )
        if tokens > MAX_TEXT_TOKENS:
            raise ValidationFailed(
                f"This prompt is too long: about {tokens:,} tokens, the limit is "
                f"{MAX_TEXT_TOKENS:,}. Shorten it and try again.",
                field="prompt",
            )
        return tokens
    if unit == RateUnit.per_asset:
        return _whole_number(
            params.get("count", DEFAULT_IMAGE_COUNT),
            field="count",
            label="Image count",
            minimum=1,
            maximum=MAX_IMAGE_COUNT,
        )
    return _whole_number(
        params.get("seconds", DEFAULT_VIDEO_SECONDS),
        field="seconds",
        label="Video length in seconds",
        minimum=1,
        maximum=MAX_VIDEO_SECONDS,
    )


def _price(rate: int, unit: RateUnit, units: int) -> int:
    if unit == RateUnit.per_1k_tokens:
        return -(-units * rate // 1000)  # ceiling division, exact on integers
    return units * rate


def estimate_credits(model: RatedModel, params: Mapping[str, Any]) -> int:
    """Millicredits a run is expected to cost (held before it starts).

    Text: ``params["tokens"]`` or, without it, the prompt length plus the ``length``
    preset (short/medium/long); per 1K tokens, rounded up to a whole millicredit.
    Image: ``params["count"]`` assets (default 1). Video: ``params["seconds"]`` (default 6).

    Raises:
        ValidationFailed: a missing, negative, zero, fractional or too large parameter.
    """
    rate, unit = _rate(model)
    return _price(rate, unit, run_units(model, params))


def tool_standard_credits(tool: ToolLike, model: RatedModel) -> int:
    """Millicredits of one standard run of a tool (its `standard_params`) on a model."""
    return estimate_credits(model, tool.standard_params or {})


def actual_credits(model: RatedModel, units: int) -> int:
    """Millicredits for what a run actually used (tokens, assets or seconds)."""
    rate, unit = _rate(model)
    units = _whole_number(
        units, field="units", label="Units used", minimum=0, maximum=MAX_ACTUAL_UNITS
    )
    return _price(rate, unit, units)


def reported_units(value: Any) -> int | None:
    """Units a provider reported, if they are a usable figure; None when they are not.

    Usable: a whole number of 0 or more (``int``, never ``bool``), capped at
    `MAX_ACTUAL_UNITS`. Not usable: ``True``/``False``, fractions, text such as "12", negative
    numbers, None. A figure we cannot trust is treated as "not reported", never as a count.
    """
    if type(value) is not int or value < 0:
        return None
    return min(value, MAX_ACTUAL_UNITS)


def charge_credits(model: RatedModel, units: Any, *, held_millicredits: int) -> int:
    """Millicredits to charge for a finished run: never above its hold, never negative.

    The price of the units it used (`reported_units`), capped at the hold (the estimate shown
    before it started). Units that are not a usable figure charge the hold: without a figure
    we can trust, the estimate is the charge.
    """
    held = max(0, held_millicredits)
    usable = reported_units(units)
    if usable is None:
        return held
    return min(actual_credits(model, usable), held)
