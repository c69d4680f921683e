"""Model registry: effective availability per plan, operator disable/enable/swap with audit."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.settings import reset_settings_cache
from models import AuditLogEntry
from services import models_registry as registry
from services.catalog import plan_get
from services.errors import Conflict, PermissionDenied, ValidationFailed
from tests.factories import make_user


@pytest.fixture(autouse=True)
def _no_openai(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    reset_settings_cache()


def states(session, plan_key: str) -> dict[str, str]:
    plan = plan_get(session=session, key=plan_key)
    return {m.key: m.state for m in registry.models_for_plan(session=session, plan=plan)}


def test_every_model_is_listed_with_its_state_per_plan(session):
    assert states(session, "free") == {
        "local-text": "available",
        "hosted-text": "not_configured",
        "local-image": "available",
        "local-image-hd": "locked",
        "hosted-image": "locked",
        "local-video": "locked",
        "veo-3.1": "locked",
    }
    growth = states(session, "growth")
    assert growth["local-image-hd"] == "available"
    assert growth["hosted-image"] == "not_configured"
    assert growth["local-video"] == "locked"
    assert states(session, "scale")["local-video"] == "available"


def test_locked_rows_name_the_plan_and_rates_are_labelled(session):
    plan = plan_get(session=session, key="growth")
    rows = {m.key: m for m in registry.models_for_plan(session=session, plan=plan)}
    assert rows["local-video"].min_plan_name == "Scale"
    assert "needs the Scale plan" in rows["local-video"].reason
    assert rows["local-text"].rate_label == "1 credit per 1K tokens"
    assert rows["local-image"].rate_label == "4 credits per image"
    assert rows["local-video"].rate_label == "5 credits per second"


def test_configured_endpoint_makes_hosted_models_available(session, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    reset_settings_cache()
    assert states(session, "growth")["hosted-image"] == "available"


def test_operator_disable_enable_and_swap_are_audited(session):
    operator = make_user(session, "ops@example.com", operator=True)
    registry.model_disable(
        session=session, actor=operator, model_key="local-image", reason="incident 42"
    )
    row = {
        m.key: m
        for m in registry.models_for_plan(
            session=session, plan=plan_get(session=session, key="growth")
        )
    }
    assert row["local-image"].state == "disabled" and "incident 42" in row["local-image"].reason
    registry.model_enable(session=session, actor=operator, model_key="local-image")
    registry.model_swap(session=session, actor=operator, model_key="local-image-hd", reason="GPU")
    swapped = {
        m.key: m
        for m in registry.models_for_plan(
            session=session, plan=plan_get(session=session, key="growth")
        )
    }["local-image-hd"]
    assert swapped.state == "available" and swapped.resolved_key == "local-image"
    assert swapped.swapped_to_name == "Studio Local Image"
    swaps = registry.active_swaps(session=session)
    assert [(s.model_name, s.backup_name) for s in swaps] == [
        ("Studio Local Image HD", "Studio Local Image")
    ]
    actions = [e.action for e in session.exec(select(AuditLogEntry).order_by(AuditLogEntry.id))]
    assert actions == ["model.disabled", "model.enabled", "model.swapped"]


def test_a_swapped_model_stays_locked_for_plans_below_it(session):
    operator = make_user(session, "ops@example.com", operator=True)
    registry.model_swap(session=session, actor=operator, model_key="local-image-hd")
    assert states(session, "free")["local-image-hd"] == "locked"


def test_swap_needs_a_backup_that_is_active(session):
    operator = make_user(session, "ops@example.com", operator=True)
    with pytest.raises(ValidationFailed):
        registry.model_swap(session=session, actor=operator, model_key="local-text")
    registry.model_disable(session=session, actor=operator, model_key="local-image")
    with pytest.raises(Conflict):
        registry.model_swap(session=session, actor=operator, model_key="local-image-hd")


def test_only_operators_change_models(session):
    member = make_user(session, "member@example.com")
    with pytest.raises(PermissionDenied) as caught:
        registry.model_disable(session=session, actor=member, model_key="local-image")
    assert caught.value.code == "operator_only"
