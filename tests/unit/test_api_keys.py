"""API keys: privileges (a key never does more than its creator), revocation, fuzzed bodies,
the request log (search by id on any date, filters, CSV) and its retention job."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from core import clock
from core.clock import utcnow
from models import ApiKey, Membership, RequestLog
from services import api_keys, api_requests
from services.errors import DomainError, NotFound, ValidationFailed
from tests.unit.api_support import ApiWorld, serve_v1
from tests.unit.test_generations import _local_assets  # noqa: F401  (autouse fixture)


@pytest.fixture
def world(session):
    return ApiWorld(session)


@pytest.fixture(autouse=True)
def _no_rate_limit(monkeypatch):
    from core.settings import reset_settings_cache
    from creative_studio.api import v1

    monkeypatch.setenv("API_RATE_LIMIT_PER_MINUTE", "0")
    reset_settings_cache()
    v1.reset_rate_limiter()


# --- privileges -------------------------------------------------------------------------------


def test_the_secret_is_shown_once_and_only_its_hash_is_stored(world, session):
    created = api_keys.api_key_create(
        session=session,
        actor_user=world.owner,
        org_id=world.org.id,
        name="CI",
        scopes=["chat:write"],
    )
    session.commit()
    row = session.get(ApiKey, created.key.id)
    assert created.secret.startswith("cs_") and created.secret not in row.key_hash
    assert row.prefix == created.secret[:11]
    views = api_keys.api_keys_list(session=session, actor_user=world.owner, org_id=world.org.id)
    assert all(created.secret not in repr(v) for v in views)


@pytest.mark.parametrize("member", ["viewer", "editor", "scoped"])
def test_only_owners_and_admins_mint_keys(world, session, member):
    with pytest.raises(DomainError) as caught:
        api_keys.api_key_create(
            session=session,
            actor_user=getattr(world, member),
            org_id=world.org.id,
            name="Mine",
            scopes=["models:read"],
        )
    assert caught.value.code == "role_forbidden"


def test_scopes_and_projects_are_checked_when_a_key_is_made(world, session):
    created = api_keys.api_key_create(
        session=session,
        actor_user=world.admin,
        org_id=world.org.id,
        name="Admin key",
        scopes=["usage:read", "chat:write", "chat:write"],
    )
    assert created.key.scopes == ["chat:write", "usage:read"]
    for scopes in (["admin:all"], [], "chat:write"):
        with pytest.raises(ValidationFailed):
            api_keys.api_key_create(
                session=session,
                actor_user=world.admin,
                org_id=world.org.id,
                name="x",
                scopes=scopes,
            )
    with pytest.raises(NotFound):
        api_keys.api_key_create(
            session=session,
            actor_user=world.admin,
            org_id=world.org.id,
            name="x",
            scopes=["chat:write"],
            project_id=999_999,
        )


def test_a_key_cannot_exceed_its_creator_when_made(world, session, monkeypatch):
    """An admin whose subscription-independent rights lack a scope's action cannot grant it."""
    from services import policy

    rules = dict(policy.ROLE_RULES)
    rules[policy.Action.analytics_view] = frozenset({policy.OrgRole.owner})
    monkeypatch.setattr(policy, "ROLE_RULES", rules)
    with pytest.raises(DomainError) as caught:
        api_keys.api_key_create(
            session=session,
            actor_user=world.admin,
            org_id=world.org.id,
            name="Usage",
            scopes=["usage:read"],
        )
    assert caught.value.code == "role_forbidden" and "usage:read" in caught.value.message


def test_a_demoted_creator_takes_the_keys_write_power_on_the_next_request(world, session, engine):
    secret = world.key(user=world.admin)
    membership = session.exec(select(Membership).where(Membership.user_id == world.admin.id)).one()
    session.commit()  # SQLite: a read opens a writing transaction here; let the server write
    with serve_v1() as base:
        headers = {"Authorization": f"Bearer {secret}"}
        body = {"model": "local-text", "messages": [{"role": "user", "content": "Hi"}]}
        assert (
            httpx.post(
                f"{base}/chat/completions", json=body, headers=headers, timeout=30
            ).status_code
            == 200
        )
        membership.role = "viewer"
        session.add(membership)
        session.commit()
        refused = httpx.post(f"{base}/chat/completions", json=body, headers=headers, timeout=30)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "role_forbidden"
        # Reading models is still within a viewer's rights; usage (analytics) is not.
        assert httpx.get(f"{base}/models", headers=headers).status_code == 200
        assert (
            httpx.get(f"{base}/usage", headers=headers).json()["error"]["code"] == "role_forbidden"
        )
        session.delete(membership)
        session.commit()
        gone = httpx.get(f"{base}/models", headers=headers)
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_api_key"


def test_a_project_key_of_a_scoped_project_runs_in_that_project(world, session, engine):
    secret = world.key(project_id=world.spring.id)
    with serve_v1() as base:
        answer = httpx.post(
            f"{base}/chat/completions",
            json={"model": "local-text", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=30,
        )
    assert answer.status_code == 200
    session.commit()
    from models import Generation

    generation = session.exec(select(Generation)).one()
    assert generation.project_id == world.spring.id


def test_expired_keys_stop_and_revoking_twice_changes_nothing(world, session):
    secret = world.key(expires_at=utcnow() + timedelta(hours=1))
    principal = api_keys.api_key_authenticate(session=session, secret=secret)
    clock.freeze(utcnow() + timedelta(hours=2))
    with pytest.raises(DomainError) as caught:
        api_keys.api_key_authenticate(session=session, secret=secret)
    assert caught.value.code == "key_expired"
    first = api_keys.api_key_revoke(
        session=session, actor_user=world.owner, org_id=world.org.id, key_id=principal.key_id
    )
    revoked_at = first.revoked_at
    second = api_keys.api_key_revoke(
        session=session, actor_user=world.admin, org_id=world.org.id, key_id=principal.key_id
    )
    assert second.revoked_at == revoked_at and second.revoked_by_user_id == world.owner.id


def test_models_list_fails_closed_by_scope(world, session):
    secret = world.key(scopes=["models:read", "images:write"])
    principal = api_keys.api_key_authenticate(session=session, secret=secret)
    listed = api_requests.models_list(session=session, principal=principal)
    assert {m["modality"] for m in listed["data"]} == {"image"}


# --- fuzzed bodies ----------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": _json_values,
        "messages": _json_values
        | st.lists(
            st.fixed_dictionaries({"role": _json_values, "content": _json_values}), max_size=3
        ),
        "stream": _json_values,
        "max_tokens": _json_values,
        "n": _json_values,
        "surprise": _json_values,
    },
)


@pytest.fixture
def fuzz_server(world, engine):
    with serve_v1() as base:
        yield base, {"Authorization": f"Bearer {world.key()}"}


def _assert_clear_refusal_or_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.headers["x-request-id"].startswith("req_")
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"] and error["request_id"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_chat_bodies)
def test_fuzzed_chat_bodies_never_get_a_500(fuzz_server, body):
    base, headers = fuzz_server
    body.pop("stream", None)  # streamed answers are covered elsewhere
    response = httpx.post(f"{base}/chat/completions", json=body, headers=headers, timeout=30)
    _assert_clear_refusal_or_answer(response)
    if "surprise" in body:
        assert response.json()["error"]["code"] == "invalid_request"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_broken_bytes_are_invalid_request(fuzz_server, raw):
    base, headers = fuzz_server
    for route in ("/chat/completions", "/images/generations", "/videos"):
        response = httpx.post(f"{base}{route}", content=raw, headers=headers, timeout=30)
        _assert_clear_refusal_or_answer(response)
        try:
            valid_object = isinstance(json.loads(raw), dict)
        except ValueError:
            valid_object = False
        if not valid_object:
            assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "local-text", "messages": "hi"}, "messages"),
        ({"model": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
        (
            {"model": "local-text", "messages": [{"role": "robot", "content": "hi"}]},
            "messages[0].role",
        ),
        (
            {"model": "local-text", "messages": [{"role": "user", "content": 7}]},
            "messages[0].content",
        ),
        (
            {"model": "local-text", "messages": [{"role": "user", "content": "x" * 5000}]},
            "messages",
        ),
        (
            {
                "model": "local-text",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": "9",
            },
            "max_tokens",
        ),
        (
            {
                "model": "local-text",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": "yes",
            },
            "stream",
        ),
        (
            {"model": "local-text", "messages": [{"role": "user", "content": "hi"}], "shout": 1},
            "shout",
        ),
        ([1, 2, 3], None),
    ],
)
def test_wrong_types_name_the_parameter(fuzz_server, body, param):
    base, headers = fuzz_server
    response = httpx.post(f"{base}/chat/completions", json=body, headers=headers, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", param)


def test_an_oversized_body_is_refused_before_it_is_read(fuzz_server):
    base, headers = fuzz_server
    response = httpx.post(
        f"{base}/chat/completions", content=b"x" * 1_100_000, headers=headers, timeout=30
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "invalid_request"


def test_unknown_routes_answer_with_the_envelope(fuzz_server):
    base, headers = fuzz_server
    response = httpx.get(f"{base}/embeddings", headers=headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- request log ------------------------------------------------------------------------------


def _log(session, org_id, request_id, *, days_ago=0, status=200, code=None, model="local-text"):
    row = RequestLog(
        request_id=request_id,
        org_id=org_id,
        method="POST",
        path="/v1/chat/completions",
        status_code=status,
        error_code=code,
        model_key=model,
        created_at=utcnow() - timedelta(days=days_ago),
    )
    session.add(row)
    session.commit()
    return row


def test_log_search_by_request_id_filters_and_csv(world, session):
    _log(session, world.org.id, "req_old", days_ago=29)
    _log(session, world.org.id, "req_fail", status=402, code="insufficient_credits")
    _log(session, world.org.id, "req_other_model", model="local-image")
    other = ApiWorld(session, plan="scale")
    _log(session, other.org.id, "req_not_yours")
    search = lambda **f: [  # noqa: E731
        r.request_id
        for r in api_requests.request_logs_search(
            session=session,
            actor_user=world.owner,
            org_id=world.org.id,
            filters=api_requests.LogFilters(**f),
        )
    ]
    assert search(request_id="req_old") == ["req_old"]
    assert search(request_id="req_not_yours") == []
    assert search(status="error") == ["req_fail"]
    assert search(code="insufficient_credits") == ["req_fail"]
    assert search(model="local-image") == ["req_other_model"]
    csv_text = api_requests.request_logs_csv(
        session=session,
        actor_user=world.owner,
        org_id=world.org.id,
        filters=api_requests.LogFilters(),
    )
    assert csv_text.splitlines()[0].startswith("created_at_utc,request_id")
    assert "req_fail" in csv_text and "req_not_yours" not in csv_text
    with pytest.raises(DomainError):
        api_requests.request_logs_search(
            session=session,
            actor_user=world.editor,
            org_id=world.org.id,
            filters=api_requests.LogFilters(),
        )


def test_retention_job_deletes_rows_past_30_days_once(world, session):
    _log(session, world.org.id, "req_keep", days_ago=29)
    _log(session, world.org.id, "req_drop", days_ago=31)
    assert api_requests.request_logs_purge() == 1
    assert api_requests.request_logs_purge() == 0
    session.commit()
    assert [r.request_id for r in session.exec(select(RequestLog))] == ["req_keep"]


def test_every_request_writes_one_row_without_bodies(world, session, engine):
    secret = world.key()
    with serve_v1() as base:
        headers = {"Authorization": f"Bearer {secret}"}
        ok = httpx.post(
            f"{base}/chat/completions",
            json={"model": "local-text", "messages": [{"role": "user", "content": "SECRET PLAN"}]},
            headers=headers,
            timeout=30,
        )
        bad = httpx.post(f"{base}/chat/completions", content=b"{", headers=headers)
        anonymous = httpx.get(f"{base}/models")
    session.commit()
    rows = {r.request_id: r for r in session.exec(select(RequestLog))}
    for response in (ok, bad, anonymous):
        row = rows[response.headers["x-request-id"]]
        assert row.status_code == response.status_code
    assert rows[bad.headers["x-request-id"]].error_code == "invalid_request"
    assert rows[anonymous.headers["x-request-id"]].org_id is None
    assert all("SECRET PLAN" not in repr(r) for r in rows.values())
