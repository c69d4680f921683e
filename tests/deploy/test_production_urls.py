"""A production deployment at https://studio.example.test: what the browser is told to use.

The production configuration runs in a subprocess (settings are read once per process):
- the frontend build's env.json, which the built app reads for its websocket and upload URLs;
- the sign-in handoff and sign-out redirects and the session cookie's flags, through the
  real Starlette routes mounted by the app.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://studio.example.test"

PROBE = r"""
import json, os, sys
from pathlib import Path

from reflex.utils import build, prerequisites
import rxconfig  # noqa: F401  (the project's Reflex config)

from sqlmodel import SQLModel, Session
import models  # noqa: F401
from core import db, routes
from services.catalog import catalog_sync
from tests.factories import make_user
from services import auth as auth_service

# env.json as the production build writes it
build.set_env_json()
env = json.loads((prerequisites.get_web_dir() / "env.json").read_text())

SQLModel.metadata.create_all(db.get_engine())
with Session(db.get_engine(), expire_on_commit=False) as session:
    catalog_sync(session=session)
    user = make_user(session, "owner@example.test")
    # The browser that typed the password carries the pre-auth cookie (https: __Host- name).
    browser_binding = "preauth-cookie-of-this-browser"
    challenge = auth_service.sign_in_handoff_create(
        session=session, user=user, browser_binding=browser_binding
    )
    session.commit()

from starlette.testclient import TestClient
from creative_studio.api import build_api

client = TestClient(build_api(), base_url="http://127.0.0.1")
client.cookies.set(routes.PREAUTH_COOKIE_HTTPS, browser_binding)
handoff = client.get(
    routes.API_AUTH_SESSION, params={"code": challenge.handoff_code, "next": "/orgs/new"},
    follow_redirects=False,
)
expired = client.get(routes.API_AUTH_SESSION, params={"code": "nope"}, follow_redirects=False)
print(json.dumps({
    "env": env,
    "handoff_status": handoff.status_code,
    "handoff_location": handoff.headers.get("location"),
    "set_cookie": handoff.headers.get("set-cookie"),
    "expired_location": expired.headers.get("location"),
}))
"""


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    data = tmp_path_factory.mktemp("prod")
    env = {
        **os.environ,
        "APP_ENV": "production",
        "APP_BASE_URL": BASE,
        "SECRET_KEY": "Zq7-vB2xLk9pW4mN8rT1yH6cF3jD5sA0gE_uI2oQ-prod-test",
        "STRIPE_SECRET_KEY": "sk_test_production_urls",
        "STRIPE_WEBHOOK_SECRET": "whsec_production_urls",
        "SMTP_HOST": "smtp.example.test",
        "DATABASE_URL": f"sqlite:///{data / 'app.db'}",
        "CS_DATA_DIR": str(data),
        "REFLEX_WEB_WORKDIR": str(data / "web"),
        "REFLEX_ENV_MODE": "prod",
        "SCHEDULER": "off",
    }
    env.pop("API_BASE_URL", None)
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_built_frontend_opens_its_websocket_on_the_public_address(production):
    assert production["env"]["EVENT"] == "wss://studio.example.test/_event"
    assert production["env"]["UPLOAD"].startswith(BASE + "/")


def test_sign_in_redirects_to_the_public_address_with_a_secure_cookie(production):
    assert production["handoff_status"] == 303
    assert production["handoff_location"] == BASE + "/orgs/new"
    cookie = production["set_cookie"].lower()
    assert "cs_session=" in cookie
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_an_expired_sign_in_goes_back_to_the_public_sign_in_page(production):
    assert production["expired_location"] == BASE + "/sign-in?expired=1"
