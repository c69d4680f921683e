"""The /v1 API on PostgreSQL, over a real HTTP server in this process.

* 50 chat requests at once on a balance that pays for 20: exactly 20 succeed, 30 are refused
  with ``insufficient_credits``, and the balance equals the sum of the ledger.
* A streamed chat whose client goes away mid-way: its hold is settled exactly once, for less
  than was held, and nothing is left open.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import Session, select

from core.settings import reset_settings_cache
from creative_studio.api import v1
from models import CreditLedgerEntry, Generation, RequestLog
from services import credits
from tests.conftest import requires_postgres
from tests.unit.api_support import ApiWorld, FakeProvider, point_model_at, serve_v1

pytestmark = [requires_postgres, pytest.mark.postgres]

SAFETY_SECONDS = 120  # a bound so a regression fails instead of hanging; never asserted on
PARALLEL = 50
PAID_FOR = 20


@pytest.fixture(autouse=True)
def _settings(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path / "assets"))
    monkeypatch.delenv("STORAGE_BUCKET", raising=False)
    monkeypatch.setenv("CONCURRENT_RUNS_PER_USER", "100")
    monkeypatch.setenv("CONCURRENT_RUNS_PER_ORG", "100")
    monkeypatch.setenv("API_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("PROVIDER_CONCURRENCY", "16")
    reset_settings_cache()
    v1.reset_rate_limiter()
    yield
    reset_settings_cache()


def _chat_body(**extra) -> dict:
    return {"model": "hosted-text", "messages": [{"role": "user", "content": "Hi"}], **extra}


def test_fifty_parallel_chats_on_credits_for_twenty(pg_engine):
    fake = FakeProvider("big_usage")  # every run is charged exactly its hold
    try:
        with Session(pg_engine, expire_on_commit=False) as session:
            world = ApiWorld(session, balance=0)
            point_model_at(session, "hosted-text", fake.url)
            estimate = 2 * (1 + 750)  # 2 credits per 1K tokens: "Hi" (1) + a medium answer
            credits.credits_grant(
                session=session,
                org_id=world.org.id,
                amount_millicredits=PAID_FOR * estimate,
                idempotency_key="pg-api-grant",
            )
            session.commit()
            secret = world.key()
            org_id = world.org.id
        with serve_v1() as base, httpx.Client(timeout=SAFETY_SECONDS) as http:
            headers = {"Authorization": f"Bearer {secret}"}
            with ThreadPoolExecutor(PARALLEL) as pool:
                responses = list(
                    pool.map(
                        lambda _: http.post(
                            f"{base}/chat/completions", json=_chat_body(), headers=headers
                        ),
                        range(PARALLEL),
                    )
                )
        statuses = sorted(r.status_code for r in responses)
        codes = [r.json()["error"]["code"] for r in responses if r.status_code != 200]
        assert statuses.count(200) == PAID_FOR, [
            r.text[:200] for r in responses if r.status_code not in (200, 402)
        ]
        assert codes == ["insufficient_credits"] * (PARALLEL - PAID_FOR)
        assert all(r.headers["x-request-id"].startswith("req_") for r in responses)
        with Session(pg_engine) as session:
            balance = credits.balance_get(session=session, org_id=org_id).balance
            assert balance == 0
            assert credits.ledger_sum(session=session, org_id=org_id) == balance
            succeeded = session.exec(
                select(Generation).where(Generation.status == "succeeded")
            ).all()
            assert len(succeeded) == PAID_FOR
            assert all(g.charged_millicredits == g.held_millicredits for g in succeeded)
            logged = session.exec(select(RequestLog).where(RequestLog.org_id == org_id)).all()
            assert len(logged) == PARALLEL
    finally:
        fake.close()


def test_a_stream_killed_midway_settles_once_for_what_was_produced(pg_engine):
    fake = FakeProvider("slow_stream")
    try:
        with Session(pg_engine, expire_on_commit=False) as session:
            world = ApiWorld(session)
            point_model_at(session, "hosted-text", fake.url)
            secret = world.key()
            org_id = world.org.id
        with serve_v1() as base:
            with (
                httpx.Client(timeout=SAFETY_SECONDS) as http,
                http.stream(
                    "POST",
                    f"{base}/chat/completions",
                    json=_chat_body(stream=True),
                    headers={"Authorization": f"Bearer {secret}"},
                ) as response,
            ):
                request_id = response.headers["x-request-id"]
                pieces = 0
                for line in response.iter_lines():
                    if line.startswith("data: ") and "word" in line:
                        pieces += 1
                    if pieces >= 5:
                        break  # the client goes away mid-stream
            deadline = time.monotonic() + SAFETY_SECONDS
            while time.monotonic() < deadline:
                with Session(pg_engine) as session:
                    generation = session.exec(
                        select(Generation).where(Generation.request_id == request_id)
                    ).first()
                    if generation is not None and generation.status in ("succeeded", "failed"):
                        break
                time.sleep(0.1)
        assert fake.pieces_sent < 400  # the provider stopped being read
        with Session(pg_engine) as session:
            entries = session.exec(
                select(CreditLedgerEntry).where(CreditLedgerEntry.generation_id == generation.id)
            ).all()
            kinds = sorted(e.kind for e in entries)
            assert kinds in (["hold", "settle"], ["hold", "release"])
            assert generation.status == "succeeded"
            assert 0 < generation.charged_millicredits < generation.held_millicredits
            assert (
                credits.ledger_sum(session=session, org_id=org_id)
                == credits.balance_get(session=session, org_id=org_id).balance
            )
            deadline = time.monotonic() + SAFETY_SECONDS
            row = None
            while row is None and time.monotonic() < deadline:
                row = session.exec(
                    select(RequestLog).where(RequestLog.request_id == request_id)
                ).first()
                session.commit()
                time.sleep(0.05)
            assert row.stream and row.millicredits == generation.charged_millicredits
    finally:
        fake.close()


def test_idempotency_key_creates_one_video_when_retried_at_once(pg_engine):
    with Session(pg_engine, expire_on_commit=False) as session:
        world = ApiWorld(session, plan="scale")
        secret = world.key()
    with serve_v1() as base, httpx.Client(timeout=SAFETY_SECONDS) as http:
        headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "same-video"}
        body = {"model": "local-video", "prompt": "Waves", "seconds": 3}
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: http.post(f"{base}/videos", json=body, headers=headers), range(8)
                )
            )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    with Session(pg_engine) as session:
        holds = session.exec(
            select(CreditLedgerEntry).where(CreditLedgerEntry.kind == "hold")
        ).all()
        assert len(holds) == 1
