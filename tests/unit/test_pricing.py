"""Pricing: estimates before a run, standard tool runs, actual charges (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from models import AIModel, Tool
from services.errors import ValidationFailed
from services.pricing import (
    MAX_IMAGE_COUNT,
    MAX_TEXT_TOKENS,
    MAX_VIDEO_SECONDS,
    actual_credits,
    estimate_credits,
    estimate_text_tokens,
    tool_standard_credits,
)


@dataclass
class FakeModel:
    rate_millicredits: int
    rate_unit: str
    modality: str


@dataclass
class FakeTool:
    standard_params: dict


TEXT = FakeModel(1000, "per_1k_tokens", "text")  # 1 credit per 1K tokens
CHEAP_TEXT = FakeModel(3, "per_1k_tokens", "text")  # 0.003 credit per 1K tokens
IMAGE = FakeModel(4000, "per_asset", "image")
VIDEO = FakeModel(20_000, "per_second", "video")


def test_text_per_1k_tokens_rounds_up_to_whole_millicredit():
    assert estimate_credits(TEXT, {"tokens": 1000}) == 1000
    assert estimate_credits(TEXT, {"tokens": 750}) == 750
    assert estimate_credits(TEXT, {"tokens": 1}) == 1
    assert estimate_credits(CHEAP_TEXT, {"tokens": 1}) == 1  # 0.003 millicredit -> 1
    assert estimate_credits(CHEAP_TEXT, {"tokens": 1000}) == 3
    assert estimate_credits(CHEAP_TEXT, {"tokens": 1001}) == 4
    assert estimate_credits(FakeModel(2000, "per_1k_tokens", "text"), {"tokens": "1500"}) == 3000


def test_text_without_tokens_is_estimated_from_prompt_and_length():
    assert estimate_text_tokens(prompt="", length="short") == 500
    assert estimate_text_tokens(prompt="x" * 9, length=None) == 3 + 750
    assert estimate_credits(TEXT, {"prompt": "a" * 400, "length": "long"}) == 100 + 1500
    assert estimate_credits(TEXT, {}) == 750
    with pytest.raises(ValidationFailed, match="Length must be one of short, medium, long"):
        estimate_credits(TEXT, {"length": "epic"})


def test_image_counts_assets_and_video_seconds():
    assert estimate_credits(IMAGE, {"count": 3}) == 12_000
    assert estimate_credits(IMAGE, {}) == 4000
    assert estimate_credits(VIDEO, {"seconds": 8}) == 160_000
    assert estimate_credits(VIDEO, {"seconds": 6.0}) == 120_000
    assert estimate_credits(VIDEO, {}) == 120_000  # default 6 s


@pytest.mark.parametrize(
    ("model", "params", "field"),
    [
        (TEXT, {"tokens": 0}, "tokens"),
        (TEXT, {"tokens": -5}, "tokens"),
        (TEXT, {"tokens": MAX_TEXT_TOKENS + 1}, "tokens"),
        (TEXT, {"tokens": 1.5}, "tokens"),
        (TEXT, {"tokens": "lots"}, "tokens"),
        (TEXT, {"tokens": True}, "tokens"),
        (TEXT, {"prompt": "x" * (4 * MAX_TEXT_TOKENS)}, "prompt"),
        (IMAGE, {"count": 0}, "count"),
        (IMAGE, {"count": MAX_IMAGE_COUNT + 1}, "count"),
        (IMAGE, {"count": -1}, "count"),
        (VIDEO, {"seconds": 0}, "seconds"),
        (VIDEO, {"seconds": 2.5}, "seconds"),
        (VIDEO, {"seconds": MAX_VIDEO_SECONDS + 1}, "seconds"),
        (VIDEO, {"seconds": None}, "seconds"),
    ],
)
def test_bad_parameters_are_refused_with_a_clear_message(model, params, field):
    with pytest.raises(ValidationFailed) as error:
        estimate_credits(model, params)
    assert error.value.field == field
    assert error.value.code == "validation_failed"
    assert error.value.message.endswith(".")


def test_bad_model_rate_is_refused():
    with pytest.raises(ValidationFailed):
        estimate_credits(FakeModel(-1, "per_asset", "image"), {})
    with pytest.raises(ValidationFailed):
        estimate_credits(FakeModel(1000, "per_minute", "video"), {})


def test_actual_credits():
    assert actual_credits(TEXT, 1234) == 1234
    assert actual_credits(CHEAP_TEXT, 1) == 1
    assert actual_credits(CHEAP_TEXT, 0) == 0
    assert actual_credits(IMAGE, 2) == 8000
    assert actual_credits(VIDEO, 5) == 100_000
    with pytest.raises(ValidationFailed):
        actual_credits(IMAGE, -1)


@given(tokens=st.integers(1, MAX_TEXT_TOKENS), rate=st.integers(0, 100_000))
def test_text_estimate_is_the_exact_ceiling(tokens, rate):
    model = FakeModel(rate, "per_1k_tokens", "text")
    cost = estimate_credits(model, {"tokens": tokens})
    assert cost * 1000 >= tokens * rate > (cost - 1) * 1000 or (rate == 0 and cost == 0)
    assert actual_credits(model, tokens) == cost


def test_catalog_tools_show_standard_run_credits(session):
    models = {m.key: m for m in session.exec(select(AIModel))}
    tools = {t.key: t for t in session.exec(select(Tool))}
    standard = {
        key: tool_standard_credits(tool, models[tool.default_model_key])
        for key, tool in tools.items()
    }
    assert standard == {
        "ad-copy": 750,  # 750 tokens at 1 credit / 1K tokens
        "social-post": 500,
        "social-image": 4000,  # 1 image at 4 credits
        "promo-video": 30_000,  # 6 s at 5 credits / s
        "competitor-report": 5000,  # 5K tokens at 1 credit / 1K tokens
    }
    assert tool_standard_credits(FakeTool({}), IMAGE) == 4000
