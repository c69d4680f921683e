"""Generations: every blocker named before a run; credits held, settled or released exactly once."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlmodel import Session, select

from core.clock import utcnow
from core.settings import reset_settings_cache
from models import (
    AIModel,
    Asset,
    CreditLedgerEntry,
    Generation,
    Organization,
    Subscription,
    UsageEvent,
    User,
)
from models.enums import OrgRole
from services import credits, generations, orgs
from services import models_registry as registry
from services.errors import Conflict, NotFound, ValidationFailed
from services.providers.base import ProviderError, ProviderErrorCode
from services.providers.local import LocalProvider
from tests.factories import make_user


@pytest.fixture(autouse=True)
def _local_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path / "assets"))
    monkeypatch.delenv("STORAGE_BUCKET", raising=False)
    reset_settings_cache()


class World:
    def __init__(self, session: Session, plan: str = "growth", balance: int = 3000):
        self.session = session
        self.owner = make_user(session, f"owner-{plan}@example.com")
        self.org = orgs.org_create(
            session=session, owner=self.owner, name=f"Acme {plan}", plan_key="scale"
        )
        self.org.billing_profile_added_at = utcnow()
        self.spring = orgs.project_create(
            session=session, actor=self.owner, org_id=self.org.id, name="Spring"
        )
        self.autumn = orgs.project_create(
            session=session, actor=self.owner, org_id=self.org.id, name="Autumn"
        )
        self.editor = self.member(f"editor-{plan}@example.com", OrgRole.editor)
        self.viewer = self.member(f"viewer-{plan}@example.com", OrgRole.viewer)
        self.scoped = self.member(f"scoped-{plan}@example.com", OrgRole.editor, [self.spring.id])
        # After adding members (small plans have few seats): the plan that applies.
        self.org.plan_key = plan
        session.add(self.org)
        self.subscription(plan_key=plan)
        if balance:
            credits.credits_grant(
                session=session,
                org_id=self.org.id,
                amount_millicredits=balance * 1000,
                idempotency_key=f"test-grant-{self.org.id}",
            )
        session.commit()

    def subscription(self, **values) -> None:
        row = self.session.exec(
            select(Subscription).where(Subscription.org_id == self.org.id)
        ).first()
        if row is None:
            row = Subscription(org_id=self.org.id, plan_key=self.org.plan_key, status="active")
        for key, value in values.items():
            setattr(row, key, value)
        self.session.add(row)
        self.session.flush()

    def member(self, email, role, project_ids=None) -> User:
        user = make_user(self.session, email)
        orgs.membership_add(
            session=self.session,
            org_id=self.org.id,
            user_id=user.id,
            role=role,
            project_ids=project_ids,
            actor_user_id=self.owner.id,
        )
        return user

    def balance(self) -> int:
        return credits.credits_available(session=self.session, org_id=self.org.id)

    def start(self, user=None, model_key="local-text", prompt="Spring sale", **kwargs):
        generation = generations.generation_start(
            session=self.session,
            user=user or self.editor,
            org_id=self.org.id,
            model_key=model_key,
            prompt=prompt,
            params=kwargs.pop("params", None),
            project_id=kwargs.pop("project_id", self.spring.id),
            **kwargs,
        )
        self.session.commit()
        return generation

    def blockers(self, user=None, model_key="local-text", project_id="spring", **kwargs):
        return generations.generation_blockers(
            session=self.session,
            user=user or self.editor,
            org_id=self.org.id,
            model_key=model_key,
            project_id=self.spring.id if project_id == "spring" else project_id,
            **kwargs,
        )


@pytest.fixture
def world(session) -> World:
    return World(session)


def codes(blockers) -> list[str]:
    return [blocker.code for blocker in blockers]


def ledger(session, generation_id) -> list[tuple[str, str, int]]:
    return [
        (entry.kind, entry.idempotency_key, entry.amount_millicredits)
        for entry in session.exec(
            select(CreditLedgerEntry)
            .where(CreditLedgerEntry.generation_id == generation_id)
            .order_by(CreditLedgerEntry.id)
        )
    ]


# --- blockers ---------------------------------------------------------------------------------


def test_an_editor_on_growth_with_credits_has_no_blockers(world):
    assert world.blockers() == []
    assert world.blockers(model_key="local-image-hd") == []


def test_viewer_is_blocked_by_role(world):
    blockers = world.blockers(user=world.viewer)
    assert codes(blockers) == ["role_forbidden"]
    assert "Viewers" in blockers[0].message


def test_expired_subscription_locks_execution_with_a_billing_link(world, session):
    world.subscription(status="expired")
    session.commit()
    blockers = world.blockers()
    assert codes(blockers) == ["subscription_inactive"]
    assert blockers[0].link_href == f"/org/{world.org.slug}/billing"


def test_viewer_on_expired_subscription_gets_both_blockers(world, session):
    world.subscription(status="canceled")
    session.commit()
    assert codes(world.blockers(user=world.viewer)) == ["role_forbidden", "subscription_inactive"]


def test_free_org_without_billing_profile_needs_one_with_the_way_to_add_it(session):
    world = World(session, plan="free", balance=50)
    world.org.billing_profile_added_at = None
    session.commit()
    owner_blockers = world.blockers(user=world.owner)
    assert codes(owner_blockers) == ["billing_required"]
    assert owner_blockers[0].link_href == f"/org/{world.org.slug}/billing"
    assert "Add one in Billing" in owner_blockers[0].message
    editor_blockers = world.blockers()
    assert "Ask your organization's owner" in editor_blockers[0].message
    world.org.billing_profile_added_at = utcnow()
    session.commit()
    assert world.blockers() == []


def test_unverified_email_is_named(world, session):
    world.editor.email_verified_at = None
    session.commit()
    assert codes(world.blockers()) == ["email_not_verified"]


def test_insufficient_credits_names_need_and_balance_with_top_up_link(session):
    world = World(session, balance=0)
    blockers = world.blockers(model_key="local-image", user=world.owner)
    assert codes(blockers) == ["insufficient_credits"]
    assert blockers[0].details == {"needed_millicredits": 4000, "available_millicredits": 0}
    assert blockers[0].link_label == "Top up credits"
    assert "4 credits" in blockers[0].message


def test_locked_model_names_the_plan_needed(world):
    blockers = world.blockers(model_key="local-video")
    assert codes(blockers) == ["model_locked"]
    assert blockers[0].details == {"plan_needed": "scale"}
    assert "Scale" in blockers[0].message


def test_disabled_and_unconfigured_models_are_named(world, session, monkeypatch):
    operator = make_user(session, "ops@example.com", operator=True)
    registry.model_disable(
        session=session, actor=operator, model_key="local-image", reason="maintenance"
    )
    session.commit()
    blockers = world.blockers(model_key="local-image")
    assert codes(blockers) == ["model_disabled"]
    assert "maintenance" in blockers[0].message
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    reset_settings_cache()
    blockers = world.blockers(model_key="hosted-text")
    assert codes(blockers) == ["model_not_configured"]
    # Said to a customer: not available yet, no server variables.
    assert "not available yet" in blockers[0].message
    assert "OPENAI_BASE_URL" not in blockers[0].message


def test_scoped_editor_outside_its_projects_is_not_found(world):
    assert codes(world.blockers(user=world.scoped, project_id=world.autumn.id)) == [
        "project_not_found"
    ]
    assert world.blockers(user=world.scoped) == []


def test_unknown_model_and_non_member(world, session):
    assert codes(world.blockers(model_key="no-such-model")) == ["model_not_found"]
    stranger = make_user(session, "stranger@example.com")
    with pytest.raises(NotFound):
        world.blockers(user=stranger)


def test_start_refuses_with_every_blocker_and_holds_nothing(world, session):
    world.viewer.email_verified_at = None
    session.commit()
    with pytest.raises(generations.GenerationBlocked) as caught:
        world.start(user=world.viewer, model_key="local-video")
    assert codes(caught.value.blockers) == ["email_not_verified", "role_forbidden", "model_locked"]
    assert caught.value.code == "email_not_verified"
    session.rollback()
    assert session.exec(select(Generation)).all() == []
    assert world.balance() == 3000 * 1000


def test_start_validates_prompt_and_options(world):
    with pytest.raises(ValidationFailed):
        world.start(prompt="   ")
    with pytest.raises(ValidationFailed):
        world.start(params={"tone": "angry"})
    with pytest.raises(ValidationFailed):
        world.start(model_key="local-image", params={"count": 0})


# --- credits through a run --------------------------------------------------------------------


def test_success_holds_then_settles_actual_and_records_usage(world, session):
    generation = world.start(params={"tone": "bold", "length": "short"})
    assert generation.status == "queued"
    held = generation.held_millicredits
    assert ledger(session, generation.id) == [("hold", f"generation:{generation.id}:hold", -held)]
    done = generations.generation_run(session=session, generation_id=generation.id)
    assert done.status == "succeeded"
    assert [step["status"] for step in done.status_history] == ["queued", "running", "succeeded"]
    assert done.output_text and "Spring sale" in done.output_text
    assert 0 < done.charged_millicredits <= held
    entries = ledger(session, generation.id)
    assert entries[1] == (
        "settle",
        f"generation:{generation.id}:settle",
        held - done.charged_millicredits,
    )
    assert world.balance() == 3000 * 1000 - done.charged_millicredits
    usage = session.exec(select(UsageEvent).where(UsageEvent.generation_id == generation.id)).one()
    assert usage.millicredits == done.charged_millicredits
    asset = session.exec(select(Asset).where(Asset.generation_id == generation.id)).one()
    assert asset.kind == "text" and asset.storage_backend == "local"


def test_image_and_video_runs_store_assets_and_charge_per_unit(session):
    world = World(session, plan="scale", balance=1000)
    image = world.start(model_key="local-image-hd", params={"aspect": "16:9"})
    image = generations.generation_run(session=session, generation_id=image.id)
    assert image.status == "succeeded" and image.charged_millicredits == 10_000
    video = world.start(model_key="local-video", params={"seconds": 3})
    video = generations.generation_run(session=session, generation_id=video.id)
    assert video.status == "succeeded" and video.charged_millicredits == 15_000
    kinds = {
        asset.content_type
        for asset in session.exec(select(Asset).where(Asset.org_id == world.org.id))
    }
    assert kinds == {"image/png", "image/gif"}


class FailingProvider(LocalProvider):
    def __init__(self, error):
        self.error = error

    def generate_text(self, **kwargs):
        raise self.error


@pytest.mark.parametrize(
    "code",
    [ProviderErrorCode.provider_error, ProviderErrorCode.timeout, ProviderErrorCode.rate_limited],
)
def test_provider_error_or_timeout_releases_the_hold(world, session, code):
    generation = world.start()
    done = generations.generation_run(
        session=session, generation_id=generation.id, provider=FailingProvider(ProviderError(code))
    )
    assert done.status == "failed"
    assert done.failure_code == code.value
    assert done.failure_reason
    assert done.charged_millicredits == 0
    assert [kind for kind, _, _ in ledger(session, generation.id)] == ["hold", "release"]
    assert ledger(session, generation.id)[1][1] == f"generation:{generation.id}:release"
    assert world.balance() == 3000 * 1000
    (usage,) = session.exec(select(UsageEvent)).all()  # a failed run is usage too, at 0 credits
    assert (usage.generation_id, usage.millicredits, usage.units) == (generation.id, 0, 0)
    assert usage.outcome == ("timed_out" if code == ProviderErrorCode.timeout else "failed")
    assert usage.source == "studio"


def test_an_unexpected_provider_bug_fails_cleanly_and_releases(world, session):
    generation = world.start()
    done = generations.generation_run(
        session=session, generation_id=generation.id, provider=FailingProvider(RuntimeError("boom"))
    )
    assert done.status == "failed" and done.failure_code == "provider_error"
    assert world.balance() == 3000 * 1000


class Crash(BaseException):
    """A process kill between hold and completion (not an Exception: nothing catches it)."""


def test_a_crash_between_hold_and_completion_leaves_it_running_with_the_hold_open(
    world, session, engine
):
    generation = world.start()
    with pytest.raises(Crash):
        generations.generation_run(
            session=session, generation_id=generation.id, provider=FailingProvider(Crash())
        )
    session.rollback()
    with Session(engine) as fresh:
        row = fresh.get(Generation, generation.id)
        assert row.status == "running"
        assert row.started_at is not None
        assert [kind for kind, _, _ in ledger(fresh, generation.id)] == ["hold"]
        assert credits.credits_available(session=fresh, org_id=world.org.id) == (
            3000 * 1000 - generation.held_millicredits
        )


def _sweep_times_out(engine, generation_id: int) -> None:
    """What the 15-minute sweep does (another module): fail + release with the same key."""
    with Session(engine) as other:
        row = other.get(Generation, generation_id)
        credits.credits_release(
            session=other,
            idempotency_key=f"generation:{generation_id}:release",
            generation_id=generation_id,
            reason="timed out",
        )
        row.status = "failed"
        row.failure_code = "timed_out"
        row.status_history = [*row.status_history, {"status": "failed", "at": utcnow().isoformat()}]
        other.add(row)
        other.commit()


class SweptDuringRun(LocalProvider):
    def __init__(self, engine, generation_id):
        self.engine, self.generation_id = engine, generation_id

    def generate_text(self, **kwargs):
        _sweep_times_out(self.engine, self.generation_id)
        return super().generate_text(**kwargs)


def test_a_result_after_the_timeout_sweep_is_kept_as_late_result_and_never_charged(
    world, session, engine
):
    generation = world.start()
    done = generations.generation_run(
        session=session,
        generation_id=generation.id,
        provider=SweptDuringRun(engine, generation.id),
    )
    assert done.status == "failed" and done.failure_code == "timed_out"
    assert done.late_result is not None and "Spring sale" in done.late_result["text"]
    assert done.charged_millicredits == 0
    assert [kind for kind, _, _ in ledger(session, generation.id)] == ["hold", "release"]
    assert world.balance() == 3000 * 1000
    assert session.exec(select(UsageEvent)).all() == []


def test_a_failure_after_the_sweep_does_not_release_twice(world, session, engine):
    generation = world.start()

    class SweptThenFails(LocalProvider):
        def generate_text(self, **kwargs):
            _sweep_times_out(engine, generation.id)
            raise ProviderError(ProviderErrorCode.timeout)

    done = generations.generation_run(
        session=session, generation_id=generation.id, provider=SweptThenFails()
    )
    assert done.failure_code == "timed_out"
    assert [kind for kind, _, _ in ledger(session, generation.id)] == ["hold", "release"]
    assert world.balance() == 3000 * 1000


def test_running_twice_does_not_run_or_charge_twice(world, session):
    generation = world.start()
    first = generations.generation_run(session=session, generation_id=generation.id)
    charged = first.charged_millicredits
    again = generations.generation_run(session=session, generation_id=generation.id)
    assert again.status == "succeeded" and again.charged_millicredits == charged
    assert [kind for kind, _, _ in ledger(session, generation.id)] == ["hold", "settle"]


def test_swapped_model_runs_on_its_backup_at_the_backup_rate(world, session):
    operator = make_user(session, "ops@example.com", operator=True)
    registry.model_swap(session=session, actor=operator, model_key="local-image-hd")
    session.commit()
    generation = world.start(model_key="local-image-hd")
    assert generation.model_key == "local-image"
    assert generation.params["requested_model_key"] == "local-image-hd"
    assert generation.held_millicredits == 4000


# --- retry and history ------------------------------------------------------------------------


def test_retry_of_a_failed_run_starts_a_new_linked_run_once(world, session):
    failed = world.start()
    generations.generation_run(
        session=session,
        generation_id=failed.id,
        provider=FailingProvider(ProviderError(ProviderErrorCode.rate_limited)),
    )
    retry = generations.generation_retry(
        session=session, user=world.editor, org_id=world.org.id, public_id=failed.public_id
    )
    session.commit()
    assert retry.retry_of_id == failed.id and retry.prompt == failed.prompt
    done = generations.generation_run(session=session, generation_id=retry.id)
    assert done.status == "succeeded"
    with pytest.raises(Conflict):
        generations.generation_retry(
            session=session, user=world.editor, org_id=world.org.id, public_id=failed.public_id
        )
    with pytest.raises(Conflict):
        generations.generation_retry(
            session=session, user=world.editor, org_id=world.org.id, public_id=done.public_id
        )
    history = generations.generations_history(
        session=session, user=world.editor, org_id=world.org.id
    )
    by_id = {view.public_id: view for view in history}
    assert by_id[failed.public_id].retried_by_public_id == retry.public_id
    assert by_id[retry.public_id].retry_of_public_id == failed.public_id
    assert [step.status for step in by_id[failed.public_id].steps] == [
        "queued",
        "running",
        "failed",
    ]


def test_history_is_filtered_by_project_scope(world, session):
    in_spring = world.start()
    in_autumn = world.start(project_id=world.autumn.id)
    scoped = generations.generations_history(
        session=session, user=world.scoped, org_id=world.org.id
    )
    assert [view.public_id for view in scoped] == [in_spring.public_id]
    everyone = generations.generations_history(
        session=session, user=world.viewer, org_id=world.org.id
    )
    assert {view.public_id for view in everyone} == {in_spring.public_id, in_autumn.public_id}
    with pytest.raises(NotFound):
        generations.generations_history(
            session=session, user=world.scoped, org_id=world.org.id, project_id=world.autumn.id
        )
    with pytest.raises(NotFound):
        generations.generation_view(
            session=session, user=world.scoped, org_id=world.org.id, public_id=in_autumn.public_id
        )


def test_other_orgs_generations_are_not_visible(world, session):
    mine = world.start()
    other = World(session, plan="starter", balance=10)
    with pytest.raises(NotFound):
        generations.generation_view(
            session=session, user=other.owner, org_id=other.org.id, public_id=mine.public_id
        )
    assert (
        generations.generations_history(session=session, user=other.owner, org_id=other.org.id)
        == []
    )


def test_organization_model_row_is_untouched_by_runs(world, session):
    world.start()
    assert session.exec(select(AIModel).where(AIModel.key == "local-text")).one().status == "active"
    assert session.get(Organization, world.org.id).plan_key == "growth"


def test_monthly_spend_cap_blocks_a_run_that_would_pass_it(world, session):
    first = world.start()
    done = generations.generation_run(session=session, generation_id=first.id)
    assert done.charged_millicredits > 0
    world.org.monthly_spend_cap_credits = 1
    session.add(world.org)
    session.commit()
    blockers = world.blockers(model_key="local-image")  # 4 credits per image > 1 credit cap
    assert codes(blockers) == ["spend_cap_reached"]
    assert "monthly spend cap of 1 credits" in blockers[0].message
    assert blockers[0].details["spent_millicredits"] == done.charged_millicredits
    assert blockers[0].details["cap_millicredits"] == 1000
    world.org.monthly_spend_cap_credits = 50
    session.add(world.org)
    session.commit()
    assert world.blockers(model_key="local-image") == []


# --- concurrent-run caps ----------------------------------------------------------------------


def test_a_fourth_run_of_one_person_is_refused_by_name_until_one_finishes(world, session):
    running = [world.start(prompt=f"Run {n}") for n in range(3)]  # the default cap is 3
    balance = world.balance()
    assert codes(world.blockers()) == ["concurrent_run_limit"]  # shown before Run is pressed
    with pytest.raises(generations.GenerationBlocked) as caught:
        world.start(prompt="One too many")
    session.rollback()
    refusal = caught.value
    assert (refusal.code, refusal.http_status) == ("concurrent_run_limit", 429)
    assert "You already have 3 runs queued or running" in refusal.message
    assert "at most 3 at once" in refusal.message
    assert "Start this one when one of them finishes." in refusal.message
    assert refusal.blockers[0].details == {"scope": "user", "limit": 3, "in_progress": 3}
    assert world.balance() == balance  # nothing held for the refused run
    assert len(session.exec(select(Generation)).all()) == 3
    # Another member of the same organization is not held back by this person's runs.
    assert world.blockers(user=world.owner) == []

    generations.generation_run(session=session, generation_id=running[0].id)
    assert world.blockers() == []
    assert world.start(prompt="Now it fits").status == "queued"


def test_the_organization_cap_counts_every_member_and_names_the_organization(
    world, session, monkeypatch
):
    monkeypatch.setenv("CONCURRENT_RUNS_PER_ORG", "3")
    reset_settings_cache()
    first = world.start(user=world.owner)
    world.start()
    world.start(user=world.scoped)
    with pytest.raises(generations.GenerationBlocked) as caught:
        world.start(user=world.owner, prompt="A fourth run in Acme")
    session.rollback()
    assert caught.value.code == "concurrent_run_limit"
    assert f"{world.org.name} already has 3 runs queued or running" in caught.value.message
    assert "an organization can have at most 3 at once" in caught.value.message
    assert caught.value.blockers[0].details["scope"] == "org"

    generations.generation_run(
        session=session,
        generation_id=first.id,
        provider=FailingProvider(ProviderError(ProviderErrorCode.provider_error)),
    )  # a failed run frees its place too
    assert world.start(user=world.owner, prompt="A fourth run in Acme").status == "queued"


def test_the_person_cap_counts_runs_in_every_organization(world, session, monkeypatch):
    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "1")
    reset_settings_cache()
    other = World(session, plan="starter", balance=100)
    orgs.membership_add(
        session=session,
        org_id=other.org.id,
        user_id=world.editor.id,
        role=OrgRole.editor,
        actor_user_id=other.owner.id,
    )
    session.commit()
    world.start()
    blockers = other.blockers(user=world.editor, project_id=None)
    assert codes(blockers) == ["concurrent_run_limit"]
    assert "(in any organization)" in blockers[0].message


# --- usage figures a provider gets wrong ------------------------------------------------------


class ReportsUnits(LocalProvider):
    """The local provider's output, with the usage figure a misbehaving provider reports."""

    def __init__(self, units):
        self.units = units

    def generate_text(self, **kwargs):
        made = super().generate_text(**kwargs)
        return replace(made, units=self.units, provider_units=self.units)


@pytest.mark.parametrize(
    "units, charged",
    [
        (10**9, "hold"),  # far above the estimate: capped at the hold
        (10**30, "hold"),  # not even a database integer
        (True, "hold"),  # not a figure: charged as the estimate, not as 1 token
        (-5, "hold"),
        ("12", "hold"),
        (3.7, "hold"),
        (None, "hold"),
        (40, 40),  # a sane figure: 40 tokens at 1 credit per 1K tokens = 40 millicredits
        (0, 0),
    ],
)
def test_usage_figures_are_clamped_and_the_run_succeeds_with_an_exact_charge(
    world, session, units, charged
):
    generation = world.start()
    held = generation.held_millicredits
    done = generations.generation_run(
        session=session, generation_id=generation.id, provider=ReportsUnits(units)
    )
    expected = held if charged == "hold" else charged
    assert done.status == "succeeded" and "Spring sale" in done.output_text
    assert done.charged_millicredits == expected
    assert sum(amount for _, _, amount in ledger(session, generation.id)) == -expected
    usage = session.exec(select(UsageEvent).where(UsageEvent.generation_id == generation.id)).one()
    assert usage.millicredits == expected
    assert usage.provider_units in (None, 0, 40, 10_000_000)
    assert world.balance() == 3000 * 1000 - expected
    assert credits.ledger_sum(session=session, org_id=world.org.id) == world.balance()


def test_usage_of_every_outcome_is_rolled_up_per_day_and_source(world, session):
    from datetime import timedelta

    from models import AnalyticsRollup
    from services.analytics.rollup import analytics_rollup_day

    succeeded = world.start(prompt="Kept")
    generations.generation_run(session=session, generation_id=succeeded.id)
    failed = world.start(prompt="Lost")
    generations.generation_run(
        session=session,
        generation_id=failed.id,
        provider=FailingProvider(ProviderError(ProviderErrorCode.provider_error)),
    )
    charged = session.exec(select(UsageEvent).where(UsageEvent.generation_id == succeeded.id)).one()
    # A run that came in through the API, the same day, model, project and person.
    session.add(
        UsageEvent(
            org_id=world.org.id,
            project_id=world.spring.id,
            user_id=world.editor.id,
            source="api",
            model_key="local-text",
            modality="text",
            units=10,
            millicredits=10,
            request_id="req_api_1",
            occurred_at=charged.occurred_at,
        )
    )
    session.flush()

    day = charged.occurred_at.date()
    analytics_rollup_day(session=session, day=day, now=charged.occurred_at + timedelta(days=1))

    rows = {
        row.source: (row.runs, row.failures, row.units, row.millicredits)
        for row in session.exec(select(AnalyticsRollup))
    }
    assert rows == {
        "studio": (2, 1, charged.units, charged.millicredits),  # the failed run counts, at 0
        "api": (1, 0, 10, 10),
    }


def test_new_runs_never_share_their_options_or_status_history():
    """Each new row gets its own empty options and history (defaults are made per row)."""
    first = Generation(public_id="gen_a", org_id=1, model_key="local-text", modality="text")
    second = Generation(public_id="gen_b", org_id=1, model_key="local-text", modality="text")

    first.params["tone"] = "bold"
    first.status_history.append({"status": "queued"})

    assert (second.params, second.status_history) == ({}, [])
    assert first.params is not second.params
