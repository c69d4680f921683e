"""The official `openai` SDK, unchanged, against a real server of the /v1 routes.

Models, chat (plain and streamed), images and videos succeed with credits held, settled and
logged; every error code reaches the SDK as its typed exception carrying the request id.
"""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import httpx
import openai
import pytest
from sqlmodel import select

from core import clock
from core.clock import utcnow
from models import CreditLedgerEntry, Generation, RequestLog, UsageEvent
from services import api_keys, credits, run_engine
from tests.unit.api_support import ApiWorld, FakeProvider, point_model_at, serve_v1
from tests.unit.test_generations import _local_assets  # noqa: F401  (autouse fixture)


@pytest.fixture
def world(session):
    return ApiWorld(session)


@pytest.fixture
def base_url(engine):
    with serve_v1() as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_limiter():
    from creative_studio.api import v1

    v1.reset_rate_limiter()
    yield
    v1.reset_rate_limiter()


def client(base_url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=secret, max_retries=0, timeout=60)


def _logs(session) -> list[RequestLog]:
    """The request log as the server has committed it. The read transaction ends at once: on
    SQLite every transaction takes the write lock, and holding it while polling would keep the
    server from writing the row being waited for."""
    session.commit()
    rows = list(session.exec(select(RequestLog).order_by(RequestLog.id)))
    for row in rows:
        session.expunge(row)  # read as loaded, never refreshed inside a new transaction
    session.commit()
    return rows


def test_models_list_and_retrieve(world, base_url):
    sdk = client(base_url, world.key())
    ids = [m.id for m in sdk.models.list()]
    assert "local-text" in ids and "local-image" in ids
    assert "veo-3.1" not in ids  # Scale only: absent from a Growth org's list
    model = sdk.models.retrieve("local-text")
    assert model.id == "local-text"
    assert model.model_extra["credit_rate"] == {
        "credits": 1.0,
        "unit": "per_1k_tokens",
        "label": "1 credit per 1K tokens",
    }


def test_chat_completion_holds_settles_and_is_logged_as_api_usage(world, base_url, session):
    before = world.balance()
    sdk = client(base_url, world.key())
    raw = sdk.chat.completions.with_raw_response.create(
        model="local-text", messages=[{"role": "user", "content": "Spring sale for sneakers"}]
    )
    answer = raw.parse()
    assert "Spring sale for sneakers" in answer.choices[0].message.content
    assert answer.usage.total_tokens > 0
    request_id = raw.headers["x-request-id"]
    assert request_id.startswith("req_")
    session.commit()
    generation = session.exec(select(Generation).where(Generation.request_id == request_id)).one()
    assert generation.status == "succeeded" and generation.api_key_id is not None
    kinds = [
        e.kind
        for e in session.exec(
            select(CreditLedgerEntry).where(CreditLedgerEntry.generation_id == generation.id)
        )
    ]
    assert kinds == ["hold", "settle"]
    assert world.balance() == before - generation.charged_millicredits
    assert answer.model_extra["credits_charged"] == generation.charged_millicredits / 1000
    usage = session.exec(select(UsageEvent).where(UsageEvent.generation_id == generation.id)).one()
    assert (usage.source, usage.request_id) == ("api", request_id)
    row = [r for r in _logs(session) if r.request_id == request_id][0]
    assert (row.status_code, row.generation_id, row.stream) == (200, generation.id, False)
    assert row.millicredits == generation.charged_millicredits


def test_streamed_chat_ends_with_usage_and_credits(world, base_url, session):
    sdk = client(base_url, world.key())
    with sdk.chat.completions.with_streaming_response.create(
        model="local-text",
        messages=[{"role": "user", "content": "Autumn launch"}],
        stream=True,
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Autumn launch" in text
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage.total_tokens > 0 and last.model_extra["credits_charged"] > 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = [r for r in _logs(session) if r.request_id == request_id]
        if rows:
            break
        time.sleep(0.05)
    assert rows[0].stream is True and rows[0].status_code == 200 and rows[0].millicredits > 0


def test_images_generate_b64_and_url(world, base_url, session):
    secret = world.key()
    sdk = client(base_url, secret)
    result = sdk.images.generate(model="local-image", prompt="A sneaker on a beach")
    png = base64.b64decode(result.data[0].b64_json)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    by_url = sdk.images.generate(model="local-image", prompt="A hat", response_format="url")
    fetched = httpx.get(by_url.data[0].url, headers={"Authorization": f"Bearer {secret}"})
    assert fetched.status_code == 200 and fetched.content[:4] == b"\x89PNG"
    assert httpx.get(by_url.data[0].url).status_code == 401  # the file needs the key


def test_video_create_poll_and_download_with_idempotency(world, base_url, session):
    world.org.plan_key = "scale"
    world.subscription(plan_key="scale")
    session.commit()
    run_engine.inline_executor().paused = False
    try:
        sdk = client(base_url, world.key())
        video = sdk.videos.create(
            model="local-video",
            prompt="Waves",
            seconds="4",
            extra_headers={"Idempotency-Key": "v-1"},
        )
        again = sdk.videos.create(
            model="local-video",
            prompt="Waves",
            seconds="4",
            extra_headers={"Idempotency-Key": "v-1"},
        )
        assert again.id == video.id  # a retried create is the same run, held once
        deadline = time.monotonic() + 60
        while video.status not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            video = sdk.videos.retrieve(video.id)
        assert video.status == "completed"
        content = sdk.videos.download_content(video.id)
        assert content.content[:3] == b"GIF"
    finally:
        run_engine.inline_executor().paused = True
    session.commit()
    holds = session.exec(select(CreditLedgerEntry).where(CreditLedgerEntry.kind == "hold")).all()
    assert len(holds) == 1


def test_usage_reports_api_runs(world, base_url):
    sdk = client(base_url, world.key())
    sdk.chat.completions.create(model="local-text", messages=[{"role": "user", "content": "Hi"}])
    usage = sdk.get("/usage", cast_to=object)
    assert usage["object"] == "usage"
    api_rows = [d for d in usage["data"] if d["source"] == "api"]
    assert api_rows and api_rows[0]["runs"] == 1 and api_rows[0]["model"] == "local-text"


# --- every error code as the SDK's typed exception, with the request id ------------------------


def _error(exc_info) -> dict:
    error = exc_info.value
    body = error.body
    assert body["request_id"] == error.response.headers["x-request-id"] == error.request_id
    assert body["doc_url"].startswith("http") and "/help/" in body["doc_url"]
    assert body["type"] and body["message"]
    return body


def _chat(sdk, **kwargs):
    return sdk.chat.completions.create(
        model=kwargs.pop("model", "local-text"),
        messages=[{"role": "user", "content": "Spring sale"}],
        **kwargs,
    )


def test_invalid_api_key(world, base_url):
    with pytest.raises(openai.AuthenticationError) as caught:
        client(base_url, "cs_not-a-real-key").models.list()
    assert _error(caught)["code"] == "invalid_api_key"


def test_revoked_key_fails_on_the_next_call(world, base_url, session):
    secret = world.key()
    sdk = client(base_url, secret)
    sdk.models.list()
    key = session.exec(select(api_keys.ApiKey)).one()
    api_keys.api_key_revoke(
        session=session, actor_user=world.owner, org_id=world.org.id, key_id=key.id
    )
    session.commit()
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk.models.list()
    body = _error(caught)
    assert body["code"] == "invalid_api_key" and "revoked" in body["message"]


def test_key_expired(world, base_url):
    sdk = client(base_url, world.key(expires_at=utcnow() + timedelta(days=1)))
    sdk.models.list()
    clock.freeze(utcnow() + timedelta(days=2))
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk.models.list()
    assert _error(caught)["code"] == "key_expired"


def test_scope_missing(world, base_url):
    sdk = client(base_url, world.key(scopes=["models:read"]))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _chat(sdk)
    body = _error(caught)
    assert body["code"] == "scope_missing" and body["details"]["scope"] == "chat:write"


def test_api_disabled(world, base_url, session):
    sdk = client(base_url, world.key())
    api_keys.api_controls_update(
        session=session,
        actor_user=world.owner,
        org_id=world.org.id,
        api_enabled=False,
        allowed_model_keys=[],
    )
    session.commit()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk.models.list()
    assert _error(caught)["code"] == "api_disabled"


def test_billing_required(world, base_url, session):
    sdk = client(base_url, world.key())
    world.org.plan_key = "free"
    world.org.billing_profile_added_at = None
    world.subscription(plan_key="free")
    session.add(world.org)
    session.commit()
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(sdk)
    assert caught.value.status_code == 402 and _error(caught)["code"] == "billing_required"


def test_email_not_verified_of_the_keys_creator(world, base_url, session):
    sdk = client(base_url, world.key(user=world.admin))
    world.admin.email_verified_at = None
    session.add(world.admin)
    session.commit()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _chat(sdk)
    assert _error(caught)["code"] == "email_not_verified"


def test_model_not_available_names_the_plan(world, base_url):
    sdk = client(base_url, world.key())
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.models.retrieve("veo-3.1")
    body = _error(caught)
    assert body["code"] == "model_not_available"
    assert body["details"]["plan_needed"] == "scale" and "Scale" in body["message"]
    with pytest.raises(openai.NotFoundError) as caught:
        _chat(sdk, model="veo-3.1")
    assert _error(caught)["code"] == "model_not_available"


def test_model_outside_the_orgs_allowed_list(world, base_url, session):
    sdk = client(base_url, world.key())
    api_keys.api_controls_update(
        session=session,
        actor_user=world.owner,
        org_id=world.org.id,
        api_enabled=True,
        allowed_model_keys=["local-image"],
    )
    session.commit()
    assert [m.id for m in sdk.models.list()] == ["local-image"]
    with pytest.raises(openai.NotFoundError) as caught:
        _chat(sdk)
    assert _error(caught)["code"] == "model_not_available"


def test_insufficient_credits(session, base_url):
    world = ApiWorld(session, balance=0)
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(client(base_url, world.key()))
    assert caught.value.status_code == 402 and _error(caught)["code"] == "insufficient_credits"


def test_spend_cap_reached(world, base_url, session):
    world.org.monthly_spend_cap_credits = 0
    session.add(world.org)
    session.commit()
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(client(base_url, world.key()))
    assert _error(caught)["code"] == "spend_cap_reached"


def test_daily_cap_reached(world, base_url):
    sdk = client(base_url, world.key(daily_cap_credits=1))
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(sdk, max_tokens=1500)  # a long answer is held at about 1.5 credits
    body = _error(caught)
    assert body["code"] == "daily_cap_reached" and body["details"]["cap_millicredits"] == 1000


def test_rate_limited_with_retry_after(world, base_url):
    sdk = client(base_url, world.key(rate_limit_per_minute=2))
    first = sdk.models.with_raw_response.list()
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    sdk.models.list()
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.models.list()
    assert _error(caught)["code"] == "rate_limited"
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_invalid_request(world, base_url):
    sdk = client(base_url, world.key())
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="local-text", messages=[])
    body = _error(caught)
    assert (body["code"], body["param"]) == ("invalid_request", "messages")


def test_provider_error_releases_the_hold(world, base_url, session):
    fake = FakeProvider("fail")
    try:
        point_model_at(session, "hosted-text", fake.url)
        before = world.balance()
        with pytest.raises(openai.InternalServerError) as caught:
            _chat(client(base_url, world.key()), model="hosted-text")
        body = _error(caught)
        assert body["code"] == "provider_error" and body["details"]["generation_id"]
        session.commit()
        assert world.balance() == before
    finally:
        fake.close()


def test_a_stream_that_fails_after_the_first_byte_sends_an_error_then_done(
    world, base_url, session
):
    fake = FakeProvider("stream_break")
    try:
        point_model_at(session, "hosted-text", fake.url)
        before = world.balance()
        sdk = client(base_url, world.key())
        received = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in _chat(sdk, model="hosted-text", stream=True):
                received.append(chunk)
        assert received  # the first byte went out before the failure
        assert caught.value.body["code"] == "provider_error"
        assert caught.value.body["request_id"].startswith("req_")
        session.commit()
        assert world.balance() == before  # released
        assert credits.ledger_sum(session=session, org_id=world.org.id) == world.balance()
    finally:
        fake.close()
