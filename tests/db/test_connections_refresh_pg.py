"""Hourly OAuth refresh on PostgreSQL against a real token endpoint on loopback.

Rotating refresh tokens are spent on use, so two workers must never refresh the same
connection: each is claimed with FOR UPDATE SKIP LOCKED and refreshed while locked.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from sqlmodel import Session

from core.clock import as_utc, utcnow
from core.crypto import decrypt
from services import connections as svc
from tests.conftest import requires_postgres
from tests.factories import make_org
from tests.unit import test_connections as shared
from tests.unit.test_connections import LoopbackOAuth, add_connection, connection

# The loopback OAuth provider and its catalog, shared with the SQLite tests.
oauth_server = shared.oauth_server
provider_catalog = shared.provider_catalog

pytestmark = [requires_postgres, pytest.mark.postgres]


def test_refresh_success_rotation_and_invalid_grant(pg_engine, provider_catalog: LoopbackOAuth):
    org_id = make_org(pg_engine, slug="refresh").id
    provider_catalog.valid_refresh.add("rt-1")
    good = add_connection(
        pg_engine, org_id, refresh_token="rt-1", expires_in=timedelta(minutes=40), account_id="a"
    )
    refused = add_connection(
        pg_engine, org_id, refresh_token="rt-gone", expires_in=timedelta(minutes=5), account_id="b"
    )
    later = add_connection(
        pg_engine, org_id, refresh_token="rt-x", expires_in=timedelta(hours=2), account_id="c"
    )

    result = svc.connections_refresh_due(engine=pg_engine)

    assert (result.refreshed, result.expired, result.errors) == (1, 1, 0)
    row = connection(pg_engine, good)
    assert row.status == "active" and row.last_error is None
    rotated = decrypt(row.refresh_token_encrypted)
    assert rotated != "rt-1" and rotated in provider_catalog.valid_refresh
    assert "rt-1" not in provider_catalog.valid_refresh
    assert as_utc(row.expires_at) > utcnow() + timedelta(minutes=55)
    assert as_utc(row.last_refreshed_at) > utcnow() - timedelta(minutes=1)
    expired = connection(pg_engine, refused)
    assert expired.status == "expired" and "invalid_grant" in expired.last_error
    assert connection(pg_engine, later).status == "active"
    with Session(pg_engine) as session:
        assert svc.connections_need_reconnect(session=session, org_id=org_id)


def test_two_concurrent_refreshes_call_the_token_endpoint_once(
    pg_engine, provider_catalog: LoopbackOAuth
):
    org_id = make_org(pg_engine, slug="concurrent").id
    provider_catalog.valid_refresh.add("rt-once")
    provider_catalog.refresh_delay = 0.5  # the first worker holds the row lock while it waits
    connection_id = add_connection(
        pg_engine, org_id, refresh_token="rt-once", expires_in=timedelta(minutes=30)
    )
    barrier = threading.Barrier(2)
    results = []

    def worker():
        barrier.wait(timeout=10)
        results.append(svc.connections_refresh_due(engine=pg_engine))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert provider_catalog.token_calls["refresh_token"] == 1
    assert sorted(r.refreshed for r in results) == [0, 1]
    assert all(r.errors == 0 and r.expired == 0 for r in results)
    row = connection(pg_engine, connection_id)
    assert row.status == "active"
    assert decrypt(row.refresh_token_encrypted) in provider_catalog.valid_refresh

    # A third run right after: refreshed minutes ago, so not again.
    provider_catalog.refresh_delay = 0.0
    assert svc.connections_refresh_due(engine=pg_engine).refreshed == 0
    assert provider_catalog.token_calls["refresh_token"] == 1


def test_network_error_keeps_active_and_retries_next_run(
    pg_engine, provider_catalog: LoopbackOAuth, monkeypatch
):
    org_id = make_org(pg_engine, slug="flaky").id
    provider_catalog.valid_refresh.add("rt-net")
    connection_id = add_connection(
        pg_engine, org_id, refresh_token="rt-net", expires_in=timedelta(minutes=15)
    )
    real_url = svc.connection_provider_get("testprov").token_url
    providers = [
        dataclasses.replace(p, token_url="http://127.0.0.1:9/token") if p.key == "testprov" else p
        for p in svc.connection_providers()
    ]
    original = svc.connection_providers
    monkeypatch.setattr(svc, "connection_providers", lambda: providers)

    first = svc.connections_refresh_due(engine=pg_engine)

    assert (first.refreshed, first.expired, first.errors) == (0, 0, 1)
    row = connection(pg_engine, connection_id)
    assert row.status == "active" and "will retry" in row.last_error
    assert decrypt(row.refresh_token_encrypted) == "rt-net"

    monkeypatch.setattr(svc, "connection_providers", original)
    assert svc.connection_provider_get("testprov").token_url == real_url
    second = svc.connections_refresh_due(engine=pg_engine)
    assert second.refreshed == 1
    assert connection(pg_engine, connection_id).last_error is None
