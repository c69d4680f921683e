"""The plan/model/tool catalogs load from data files, idempotently, and reject bad data."""

import shutil

import pytest
from sqlmodel import select

from models import AIModel, Plan, Tool
from services.catalog import CATALOG_DIR, CatalogError, catalog_sync, credits_to_millicredits


def test_catalog_has_the_four_plans_with_design_limits(session):
    plans = {plan.key: plan for plan in session.exec(select(Plan))}
    assert [p.key for p in sorted(plans.values(), key=lambda p: p.rank)] == [
        "free",
        "starter",
        "growth",
        "scale",
    ]
    assert (plans["free"].monthly_credits, plans["free"].max_seats, plans["free"].max_projects) == (
        50,
        2,
        2,
    )
    assert plans["starter"].price_cents_monthly == 1900 and plans["starter"].max_orgs_owned == 2
    assert plans["growth"].competitor_reports_per_day is None  # unlimited
    assert plans["scale"].max_projects is None and plans["scale"].max_seats == 100


def test_sync_twice_changes_nothing_the_second_time(session):
    before = {(m.key, m.rate_millicredits) for m in session.exec(select(AIModel))}
    result = catalog_sync(session=session)
    session.commit()
    assert not result.changed
    assert {(m.key, m.rate_millicredits) for m in session.exec(select(AIModel))} == before
    assert len(session.exec(select(Plan)).all()) == 4
    assert len(session.exec(select(Tool)).all()) >= 1


def test_sync_keeps_operator_model_status(session):
    model = session.exec(select(AIModel).where(AIModel.key == "hosted-image")).one()
    model.status = "swapped"
    session.commit()
    catalog_sync(session=session)
    session.commit()
    session.refresh(model)
    assert model.status == "swapped"


def test_sync_updates_a_changed_price(session, tmp_path):
    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, catalog)
    text = (
        (catalog / "plans.toml")
        .read_text()
        .replace("price_cents_monthly = 1900", "price_cents_monthly = 2900")
    )
    (catalog / "plans.toml").write_text(text)
    result = catalog_sync(session=session, catalog_dir=catalog)
    assert result.plans_updated == 1
    assert session.exec(select(Plan).where(Plan.key == "starter")).one().price_cents_monthly == 2900


def test_bad_catalog_names_the_problem(session, tmp_path):
    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, catalog)
    text = (
        (catalog / "models.toml")
        .read_text()
        .replace('min_plan = "scale"', 'min_plan = "platinum"', 1)
    )
    (catalog / "models.toml").write_text(text)
    with pytest.raises(CatalogError, match="unknown min_plan 'platinum'"):
        catalog_sync(session=session, catalog_dir=catalog)


def test_credit_rates_are_exact_millicredits():
    assert credits_to_millicredits("0.125") == 125
    assert credits_to_millicredits(4) == 4000
    with pytest.raises(CatalogError):
        credits_to_millicredits("0.0001")
