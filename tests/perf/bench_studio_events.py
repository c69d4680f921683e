"""Benchmark: server-side work of the studio's main events, as ratios to a trivial event.

Not a pass/fail test; it only prints. Each "event" below is the service work its Reflex
handler does in `state/studio.py` (same calls, same order), measured
in-process on a seeded SQLite database:

  * open page   (StudioState.load): projects, policy, the blocker context (plan, models,
                 credits, runs in progress, read once; the picker is built from it), history
                 with fresh signed asset URLs;
  * pick model  (StudioState.pick_model): blockers for the new model computed in memory from
                 the context read at page open (identity is cached for reads: no database);
  * pick model, before: what the handler did until the context existed (identity re-read and
                 every blocker re-queried), printed for comparison in the same run;
  * start run   (StudioState.run): who acts, resolved in full as for any write (session,
                 organization, membership, 2FA, policy), then generation_start (validate,
                 check, estimate, hold), then the commit; the new run goes on top of the
                 history the page shows (no re-read). The three parts are printed under it;
  * trivial     a counter event: open a DB session and increment a number (the baseline).

Reflex's own websocket/serialization overhead is the same for every event and is not
included. Run: `python -m tests.perf.bench_studio_events` (or under pytest: small size).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable

from sqlmodel import Session, SQLModel

import models  # noqa: F401
from core import db
from core.clock import utcnow
from core.settings import reset_settings_cache
from models import Organization, User
from models.enums import OrgRole
from services import auth, credits, generations, orgs, policy, run_engine, sso, storage
from services import models_registry as registry
from services.catalog import catalog_sync
from tests.factories import signed_in_cookie


def _seed(engine):
    with Session(engine, expire_on_commit=False) as session:
        catalog_sync(session=session)
        owner = User(email="owner@bench.test", name="Owner", email_verified_at=utcnow())
        editor = User(email="editor@bench.test", name="Editor", email_verified_at=utcnow())
        session.add(owner)
        session.add(editor)
        session.flush()
        org = orgs.org_create(session=session, owner=owner, name="Bench", plan_key="growth")
        org.billing_profile_added_at = utcnow()
        project = orgs.project_create(session=session, actor=owner, org_id=org.id, name="P")
        orgs.membership_add(session=session, org_id=org.id, user_id=editor.id, role=OrgRole.editor)
        credits.credits_grant(
            session=session,
            org_id=org.id,
            amount_millicredits=10**9,
            idempotency_key="bench-grant",
        )
        session.commit()
        for index in range(20):  # some history to render
            generation = generations.generation_start(
                session=session,
                user=editor,
                org_id=org.id,
                model_key="local-image" if index % 2 else "local-text",
                prompt=f"History item {index}",
                project_id=project.id,
            )
            session.commit()
            generations.generation_run(session=session, generation_id=generation.id)
        return editor.id, org.id, project.id


# Where start run's time goes (the three add up to it).
RUN_PARTS = ("  who acts, in full", "  check and record", "  commit")


def _who_acts(session: Session, token: str, slug: str, project_id: int) -> User:
    """What StudioState.run resolves before it starts a run (OrgPageState._acting for a
    write): the session behind the cookie, the organization and membership, the 2FA gate, the
    policy target of the project, and the policy's answer."""
    resolved = auth.session_resolve(session=session, token=token)
    assert resolved is not None, "the benchmark's session no longer counts"
    user = resolved[0]
    org, membership = orgs.org_and_membership(session=session, slug=slug, user_id=user.id)
    actor = policy.actor_with_membership(
        session=session, user=user, org_id=org.id, membership=membership
    )
    sso.two_factor_gate(session=session, user=user, org=org)
    target = policy.target_for(session=session, org_id=org.id, project_id=project_id)
    policy.require(actor, policy.Action.tool_run, target)
    return user


def _timed(fn: Callable[[], None], repeat: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(repeat: int = 30) -> dict[str, float]:
    workdir = tempfile.mkdtemp(prefix="bench-studio-")
    os.environ.setdefault("STORAGE_LOCAL_DIR", os.path.join(workdir, "assets"))
    # Every timed start stays queued: lift the concurrent-run caps while the benchmark runs.
    caps = {"CONCURRENT_RUNS_PER_USER": "1000000", "CONCURRENT_RUNS_PER_ORG": "1000000"}
    saved_caps = {name: os.environ.get(name) for name in caps}
    os.environ.update(caps)
    reset_settings_cache()
    # The timed starts are only recorded, not executed: worker threads running them would share
    # the CPU with what is measured (and outlive the benchmark's database).
    executor = run_engine.inline_executor()
    was_paused, executor.paused = executor.paused, True
    engine = db.make_engine(f"sqlite:///{workdir}/bench.db")
    SQLModel.metadata.create_all(engine)
    db.set_engine(engine)
    user_id, org_id, project_id = _seed(engine)
    counter = {"value": 0}

    def trivial():
        with Session(engine) as session:
            session.get(User, user_id)
        counter["value"] += 1

    def open_page():
        with Session(engine, expire_on_commit=False) as session:
            user = session.get(User, user_id)
            actor = policy.actor_for(session=session, user=user, org_id=org_id)
            orgs.projects_visible(session=session, actor=actor, org_id=org_id)
            policy.can(
                actor,
                policy.Action.tool_run,
                policy.target_for(session=session, org_id=org_id, project_id=project_id),
            )
            context = generations.generation_blocker_context(
                session=session, user=user, org_id=org_id, project_id=project_id
            )
            contexts["open"] = context
            registry.active_swaps(session=session)
            generations.generation_blockers_for(context, model_key="local-text")
            for view in generations.generations_history(
                session=session, user=user, org_id=org_id, limit=20
            ):
                for asset in view.assets:
                    storage.asset_link_sign(asset.public_id)

    contexts: dict[str, generations.BlockerContext] = {}

    def pick_model():
        generations.generation_blockers_for(
            contexts["open"], model_key="local-image", params={"aspect": "1:1", "count": 1}
        )
        counter["value"] += 1

    def pick_model_before():
        with Session(engine, expire_on_commit=False) as session:
            user = session.get(User, user_id)
            session.get(Organization, org_id)
            generations.generation_blockers(
                session=session,
                user=user,
                org_id=org_id,
                model_key="local-image",
                project_id=project_id,
            )

    parts: dict[str, list[float]] = {name: [] for name in RUN_PARTS}

    def start_run():
        with Session(engine, expire_on_commit=False) as session:
            started = time.perf_counter()
            user = _who_acts(session, token, org_slug, project_id)
            resolved = time.perf_counter()
            generations.generation_start(
                session=session,
                user=user,
                org_id=org_id,
                model_key="local-text",
                prompt="Benchmark prompt",
                project_id=project_id,
            )
            credits.balance_get(session=session, org_id=org_id)  # the balance shown
            recorded = time.perf_counter()
            session.commit()
            committed = time.perf_counter()
        for name, seconds in zip(
            RUN_PARTS, (resolved - started, recorded - resolved, committed - recorded), strict=True
        ):
            parts[name].append(seconds)

    with Session(engine, expire_on_commit=False) as session:
        org_slug = session.get(Organization, org_id).slug
        token = signed_in_cookie(session, session.get(User, user_id)).split("=", 1)[1]
    results = {
        "trivial counter": _timed(trivial, repeat),
        "open page (load)": _timed(open_page, repeat),
        "pick model": _timed(pick_model, repeat),
        "pick, before": _timed(pick_model_before, repeat),
        "start run": _timed(start_run, repeat),
    }
    results |= {name: statistics.median(samples[1:]) for name, samples in parts.items()}
    baseline = results["trivial counter"]
    print(f"\nStudio events, server-side median over {repeat} runs (SQLite):")
    for name, seconds in results.items():
        print(f"  {name:<22} {seconds * 1000:8.2f} ms   x{seconds / baseline:6.1f} of trivial")
    db.set_engine(None)
    engine.dispose()
    for name, value in saved_caps.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    reset_settings_cache()
    executor.paused = was_paused
    return results


def test_bench_studio_events_small():
    run(repeat=5)


if __name__ == "__main__":
    run()
