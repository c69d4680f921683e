"""Asset storage and signed asset URLs: local disk, S3 (a real moto_server), and the
GET /signed-assets/<signed> route refusing expired, tampered, other-org and out-of-scope links."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from core import clock
from core.clock import utcnow
from core.crypto import hash_token, sign
from core.routes import SESSION_COOKIE
from core.settings import reset_settings_cache
from creative_studio.api import assets as asset_routes
from models import Asset, UserSession
from services import generations, storage
from tests.factories import free_port
from tests.unit.test_generations import World


@pytest.fixture(autouse=True)
def _local_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path / "assets"))
    monkeypatch.delenv("STORAGE_BUCKET", raising=False)
    reset_settings_cache()


def cookie_for(session, user) -> str:
    token = f"token-{user.id}-{user.email}"
    now = utcnow()
    session.add(
        UserSession(
            user_id=user.id,
            token_hash=hash_token(token),
            activated_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(days=1),
        )
    )
    session.commit()
    return token


@pytest.fixture
def client():
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = Starlette(
        routes=[Route(asset_routes.ASSET_ROUTE, asset_routes.serve_asset, methods=["GET"])]
    )
    return TestClient(app)


def _image_asset(world: World, session, project) -> Asset:
    generation = world.start(model_key="local-image", project_id=project.id)
    generations.generation_run(session=session, generation_id=generation.id)
    return session.exec(select(Asset).where(Asset.generation_id == generation.id)).one()


def get(client, signed: str, token: str | None, **params):
    client.cookies.clear()
    if token:
        client.cookies.set(SESSION_COOKIE, token)
    return client.get(storage.asset_path(signed), params=params, follow_redirects=False)


# --- local disk -------------------------------------------------------------------------------


def test_local_storage_round_trip_and_refuses_path_escape(tmp_path):
    disk = storage.LocalStorage(tmp_path)
    disk.put("orgs/1/a.txt", b"hello", "text/plain")
    assert disk.get("orgs/1/a.txt") == b"hello"
    assert disk.presigned_url("orgs/1/a.txt", expires_seconds=60) is None
    disk.delete("orgs/1/a.txt")
    with pytest.raises(storage.NotFound):
        disk.get("orgs/1/a.txt")
    with pytest.raises(ValueError):
        disk.put("../outside.txt", b"x", "text/plain")


def test_signed_link_round_trip_and_expiry():
    signed = storage.asset_link_sign("ast_1", ttl_seconds=300)
    assert storage.asset_link_verify(signed) == "ast_1"
    clock.freeze(utcnow() + timedelta(seconds=301))
    with pytest.raises(storage.AssetLinkInvalid) as caught:
        storage.asset_link_verify(signed)
    assert caught.value.reason == "expired" and caught.value.http_status == 410


def test_a_link_stays_the_same_for_a_minute_and_then_renews():
    """A page re-reading its list keeps the same image addresses (the browser keeps what it
    loaded); a minute later a fresh link is made, and both still open the asset."""
    clock.freeze(datetime(2026, 5, 1, 12, 0, 5, tzinfo=UTC))
    first = storage.asset_link_sign("ast_1")
    clock.freeze(datetime(2026, 5, 1, 12, 0, 59, tzinfo=UTC))
    assert storage.asset_link_sign("ast_1") == first
    assert storage.asset_link_sign("ast_2") != first
    clock.freeze(datetime(2026, 5, 1, 12, 1, 0, tzinfo=UTC))
    renewed = storage.asset_link_sign("ast_1")
    assert renewed != first
    assert storage.asset_link_verify(first) == storage.asset_link_verify(renewed) == "ast_1"
    # Valid for at least the link's time to live less that minute.
    clock.freeze(datetime(2026, 5, 1, 12, 0, 59, tzinfo=UTC) + timedelta(seconds=9 * 60))
    assert storage.asset_link_verify(first) == "ast_1"
    clock.freeze(datetime(2026, 5, 1, 12, 10, 1, tzinfo=UTC))
    with pytest.raises(storage.AssetLinkInvalid):
        storage.asset_link_verify(first)
    # A link shorter than two minutes is not rounded: it lasts exactly what was asked.
    clock.freeze(datetime(2026, 5, 1, 12, 0, 59, tzinfo=UTC))
    short = storage.asset_link_sign("ast_3", ttl_seconds=30)
    clock.freeze(datetime(2026, 5, 1, 12, 1, 29, tzinfo=UTC))
    assert storage.asset_link_verify(short) == "ast_3"
    clock.freeze(datetime(2026, 5, 1, 12, 1, 30, tzinfo=UTC))
    with pytest.raises(storage.AssetLinkInvalid):
        storage.asset_link_verify(short)


def test_tampered_or_foreign_links_are_invalid():
    signed = storage.asset_link_sign("ast_1")
    tampered = signed[:-3] + ("AAA" if not signed.endswith("AAA") else "BBB")
    for bad in (tampered, sign({"asset": "ast_1", "exp": 2**40}, purpose="other"), "nonsense"):
        with pytest.raises(storage.AssetLinkInvalid) as caught:
            storage.asset_link_verify(bad)
        assert caught.value.reason == "invalid"


# --- the route --------------------------------------------------------------------------------


def test_member_gets_the_file_and_a_download(session, client):
    world = World(session)
    asset = _image_asset(world, session, world.spring)
    token = cookie_for(session, world.viewer)
    signed = storage.asset_link_sign(asset.public_id)
    response = get(client, signed, token)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    download = get(client, signed, token, download="1")
    assert download.headers["content-disposition"].startswith("attachment;")


def test_signed_out_expired_tampered_other_org_and_out_of_scope_are_refused(session, client):
    world = World(session)
    spring_asset = _image_asset(world, session, world.spring)
    autumn_asset = _image_asset(world, session, world.autumn)
    other = World(session, plan="starter", balance=10)
    signed = storage.asset_link_sign(spring_asset.public_id)

    assert get(client, signed, None).status_code == 401
    assert get(client, signed, cookie_for(session, other.owner)).status_code == 404
    scoped = cookie_for(session, world.scoped)
    assert get(client, signed, scoped).status_code == 200
    out_of_scope = get(client, storage.asset_link_sign(autumn_asset.public_id), scoped)
    assert out_of_scope.status_code == 404
    assert out_of_scope.json()["error"]["code"] == "not_found"
    editor = cookie_for(session, world.editor)
    # Change a character in the middle of the signature: every bit of it counts (the last
    # base64 characters carry padding bits, so rewriting them can leave the bytes as they were).
    position = len(signed) - 6
    swapped = "A" if signed[position] != "A" else "B"
    tampered = signed[:position] + swapped + signed[position + 1 :]
    assert get(client, tampered, editor).status_code == 404
    clock.freeze(utcnow() + timedelta(seconds=storage.ASSET_LINK_TTL_SECONDS + 1))
    expired = get(client, signed, editor)
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "asset_link_expired"


# --- S3 through a real moto_server --------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint():
    executable = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(executable).exists():
        pytest.skip("moto_server is not installed (pip install -e '.[dev]')")
    port = free_port()
    process = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


@pytest.fixture
def s3_settings(moto_endpoint, monkeypatch):
    monkeypatch.setenv("STORAGE_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("STORAGE_BUCKET", "studio-assets")
    monkeypatch.setenv("STORAGE_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("STORAGE_SECRET_ACCESS_KEY", "testing")
    reset_settings_cache()
    backend = storage.storage_for("s3")
    backend.ensure_bucket()
    return backend


def test_s3_round_trip_and_presigned_url_serves_the_object(s3_settings):
    assert storage.default_backend_name() == "s3"
    s3_settings.put("orgs/1/x.txt", b"hello s3", "text/plain")
    assert s3_settings.get("orgs/1/x.txt") == b"hello s3"
    url = s3_settings.presigned_url("orgs/1/x.txt", expires_seconds=60, filename="x.txt")
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content == b"hello s3"
    s3_settings.delete("orgs/1/x.txt")
    with pytest.raises(storage.NotFound):
        s3_settings.get("orgs/1/x.txt")


def test_generation_output_goes_to_s3_and_the_route_redirects_after_the_check(
    s3_settings, session, client
):
    world = World(session)
    asset = _image_asset(world, session, world.spring)
    assert asset.storage_backend == "s3"
    signed = storage.asset_link_sign(asset.public_id)
    response = get(client, signed, cookie_for(session, world.editor))
    assert response.status_code == 302
    fetched = httpx.get(response.headers["location"])
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
    other = World(session, plan="starter", balance=10)
    assert get(client, signed, cookie_for(session, other.owner)).status_code == 404
