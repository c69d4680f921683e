"""Studio text runs are written with the brand kit (project kit, else organization kit), and the
run records which kit it used."""

from __future__ import annotations

import pytest

from core.settings import reset_settings_cache
from services import generations
from services.brand_kits import BrandKitInput, brand_kit_save
from tests.unit.test_generations import World


@pytest.fixture(autouse=True)
def _local(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path / "assets"))
    monkeypatch.setenv("LOCAL_CHAT_CHUNK_SECONDS", "0")
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_a_text_run_uses_the_project_kit_and_records_it(session):
    world = World(session)
    brand_kit_save(
        session=session,
        user=world.owner,
        org_id=world.org.id,
        project_id=None,
        data=BrandKitInput(name="Acme voice", voice=["warm"]),
    )
    brand_kit_save(
        session=session,
        user=world.owner,
        org_id=world.org.id,
        project_id=world.spring.id,
        data=BrandKitInput(name="Spring voice", voice=["playful"]),
    )
    session.commit()
    run = generations.generation_start(
        session=session,
        user=world.owner,
        org_id=world.org.id,
        model_key="local-text",
        prompt="Spring sale",
        project_id=world.spring.id,
    )
    session.commit()
    assert run.brand_kit_label == "Spring voice (project kit)"
    done = generations.generation_run(session=session, generation_id=run.id)
    assert done.status == "succeeded"
    assert "playful voice of the Spring voice brand kit" in done.output_text


def test_a_text_run_without_any_kit_is_unchanged(session):
    world = World(session)
    run = generations.generation_start(
        session=session,
        user=world.owner,
        org_id=world.org.id,
        model_key="local-text",
        prompt="Spring sale",
    )
    session.commit()
    assert run.brand_kit_label is None
    done = generations.generation_run(session=session, generation_id=run.id)
    assert "brand kit" not in done.output_text
