"""Development is safe by default: the outbox opens only locally or for an operator, the dev
server listens on this machine only, and `reflex run --env prod` runs in production mode.

The outbox is exercised through its State exactly as the websocket calls it: the router data
carries the connection's address and headers, the session cookie decides who is signed in.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import reflex as rx
from reflex.istate.data import RouterData
from sqlmodel import Session

from core.settings import InsecureConfiguration, Settings
from creative_studio.creative_studio import app  # noqa: F401  (registers every page State)
from services.mail import mail_send
from state.dev_outbox import OutboxState, request_is_local
from tests.factories import free_port, make_user, signed_in_cookie

ROOT = Path(__file__).resolve().parents[2]
RESET_LINK = "http://localhost:3000/reset-password?token=one-time-secret-token"
STRANGER = "203.0.113.9"  # an address of another machine (TEST-NET-3)


@pytest.mark.parametrize(
    ("client_ip", "headers", "local"),
    [
        ("127.0.0.1", {}, True),
        ("127.0.1.1", {}, True),
        ("::1", {}, True),
        ("::ffff:127.0.0.1", {}, True),
        (STRANGER, {}, False),
        ("192.168.1.20", {}, False),
        ("", {}, False),
        ("not-an-address", {}, False),
        # A proxy or tunnel on this machine: the connection is local, the visitor is not.
        ("127.0.0.1", {"x-forwarded-for": STRANGER}, False),
        ("127.0.0.1", {"forwarded": f"for={STRANGER}"}, False),
        ("127.0.0.1", {"x-real-ip": STRANGER}, False),
        ("127.0.0.1", {"x-forwarded-host": "studio.example.test"}, False),
    ],
)
def test_only_an_unproxied_loopback_connection_is_local(client_ip, headers, local):
    assert request_is_local(client_ip, headers) is local


# --- the outbox page's state --------------------------------------------------------------------


def _outbox_tab(*, client_ip: str, cookie: str = "", headers: dict | None = None) -> OutboxState:
    router = RouterData.from_router_data(
        {
            "headers": {"cookie": cookie, "origin": "http://localhost:3000", **(headers or {})},
            "pathname": "/dev/outbox",
            "asPath": "/dev/outbox",
            "query": {},
            "token": "outbox-tab",
            "sid": "outbox-sid",
            "ip": client_ip,
        }
    )
    root = rx.State(_reflex_internal_init=True)
    stack = [root]
    while stack:
        current = stack.pop()
        current.router = router
        stack.extend(current.substates.values())
    return root._get_state_from_cache(OutboxState)


def _open(tab: OutboxState) -> OutboxState:
    asyncio.run(OutboxState.load.fn(tab))
    return tab


@pytest.fixture
def outbox(engine):
    """A password-reset mail in the outbox, and the cookies of an operator and of an owner."""
    with Session(engine, expire_on_commit=False) as session:
        mail_send(
            session=session,
            to="owner@acme.test",
            subject="Reset your password",
            body_text=f"Open {RESET_LINK} within an hour.",
        )
        operator = make_user(session, "operator@creative-studio.test", operator=True)
        owner = make_user(session, "owner@acme.test")
        session.commit()
        return {
            "operator": signed_in_cookie(session, operator),
            "member": signed_in_cookie(session, owner),
        }


def _browser_view(tab: OutboxState) -> str:
    """What the browser receives of this state."""
    return json.dumps(tab.dict(), default=str)


@pytest.mark.parametrize(
    ("who", "client_ip", "headers"),
    [
        ("anonymous", STRANGER, {}),
        ("member", STRANGER, {}),
        ("anonymous", "127.0.0.1", {"x-forwarded-for": STRANGER}),
        ("member", "127.0.0.1", {"x-forwarded-for": STRANGER}),
    ],
    ids=[
        "anonymous, another machine",
        "signed-in non-operator, another machine",
        "anonymous, through a proxy on this machine",
        "signed-in non-operator, through a proxy",
    ],
)
def test_the_outbox_is_refused_to_anyone_but_localhost_or_an_operator(
    outbox, who, client_ip, headers
):
    tab = _open(_outbox_tab(client_ip=client_ip, cookie=outbox.get(who, ""), headers=headers))
    assert tab.available and tab.refused
    assert "localhost" in tab.refused_message and "operator" in tab.refused_message
    assert tab.mails == []
    assert "one-time-secret-token" not in _browser_view(tab)


def test_the_outbox_opens_on_this_machine_without_signing_in(outbox):
    tab = _open(_outbox_tab(client_ip="127.0.0.1"))
    assert not tab.refused
    assert [mail.subject for mail in tab.mails] == ["Reset your password"]
    assert RESET_LINK in tab.mails[0].body_text


def test_the_outbox_opens_for_a_signed_in_operator_from_anywhere(outbox):
    tab = _open(_outbox_tab(client_ip=STRANGER, cookie=outbox["operator"]))
    assert not tab.refused
    assert RESET_LINK in tab.mails[0].body_text


def test_a_refused_tab_that_signs_in_as_operator_sees_the_mail_on_reload(outbox):
    refused = _open(_outbox_tab(client_ip=STRANGER))
    assert refused.refused
    reloaded = _open(_outbox_tab(client_ip=STRANGER, cookie=outbox["operator"]))
    assert not reloaded.refused and reloaded.refused_message == ""
    assert len(reloaded.mails) == 1


# --- production mode ----------------------------------------------------------------------------

PRODUCTION_READY = {
    "SECRET_KEY": "Zq7-vB2xLk9pW4mN8rT1yH6cF3jD5sA0gE_uI2oQ-dev-exposure",
    "APP_BASE_URL": "https://studio.example.test",
    "STRIPE_SECRET_KEY": "sk_test_dev_exposure",
    "STRIPE_WEBHOOK_SECRET": "whsec_dev_exposure",
    "SMTP_HOST": "smtp.example.test",
}


@pytest.mark.parametrize(
    ("app_env", "reflex_env_mode", "expected"),
    [
        (None, "prod", "production"),
        ("development", "prod", "development"),  # said explicitly: the browser-test build
        ("production", None, "production"),
        (None, None, "development"),
        (None, "dev", "development"),
    ],
)
def test_a_production_build_runs_in_production_unless_app_env_says_otherwise(
    monkeypatch, app_env, reflex_env_mode, expected
):
    for name, value in (("APP_ENV", app_env), ("REFLEX_ENV_MODE", reflex_env_mode)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    for name, value in PRODUCTION_READY.items():
        monkeypatch.setenv(name, value)
    assert Settings().app_env == expected


def test_a_production_build_without_a_safe_configuration_refuses_to_start(monkeypatch):
    """`reflex run --env prod` with development's defaults no longer starts as development
    (no outbox, no demo seed): it refuses and says what to set."""
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.setenv("REFLEX_ENV_MODE", "prod")
    monkeypatch.setenv("SECRET_KEY", "")
    with pytest.raises(InsecureConfiguration, match="SECRET_KEY"):
        Settings()


# --- rxconfig: where the server listens ---------------------------------------------------------

_PROBE = (
    "import json, sys; sys.argv = json.loads(sys.argv[1]); import rxconfig; "
    "print(json.dumps({'host': rxconfig.config.backend_host, "
    "'app_env': rxconfig._settings.app_env}))"
)


def _rxconfig(argv: list[str], **env: str | None) -> dict:
    environment = {**os.environ, "CS_DATA_DIR": os.environ["CS_DATA_DIR"]}
    for name in ("APP_ENV", "REFLEX_ENV_MODE", "BACKEND_HOST", "REFLEX_BACKEND_HOST"):
        environment.pop(name, None)
    for name, value in env.items():
        if value is not None:
            environment[name] = value
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_development_server_listens_on_this_machine_only_unless_told():
    assert _rxconfig(["reflex", "run"])["host"] == "127.0.0.1"
    assert _rxconfig(["reflex", "run"], BACKEND_HOST="0.0.0.0")["host"] == "0.0.0.0"


def test_reflex_run_env_prod_reads_production_settings_in_the_command_itself():
    """The command that builds the frontend sees production too (not only its server
    processes), and production keeps listening on every interface behind its proxy."""
    prod = _rxconfig(["reflex", "run", "--env", "prod"], **PRODUCTION_READY)
    assert prod == {"host": "0.0.0.0", "app_env": "production"}
    assert _rxconfig(["reflex", "run", "--env=prod"], **PRODUCTION_READY)["app_env"] == (
        "production"
    )
    told = _rxconfig(["reflex", "run", "--env", "prod"], APP_ENV="development")
    assert told == {"host": "127.0.0.1", "app_env": "development"}


def _non_loopback_address() -> str | None:
    """This machine's address on its network (what another machine would connect to)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_a_development_backend_refuses_connections_from_the_network(tmp_path):
    """`reflex run --backend-only` in development: reachable on 127.0.0.1, not on the
    machine's network address."""
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    port = free_port()
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "APP_ENV": "development",
        "CS_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "REFLEX_WEB_WORKDIR": str(tmp_path / "web"),
        "REFLEX_STATES_WORKDIR": str(tmp_path / "states"),
        # Watch an empty directory: the database's -wal and -shm files, which the reloader
        # does not ignore, would otherwise restart the worker on every write, forever.
        "REFLEX_HOT_RELOAD_OVERRIDE_PATHS": str(tmp_path / "no-reload"),
        "SCHEDULER": "off",
        "REFLEX_USE_NPM": "1",
    }
    for name in ("BACKEND_HOST", "REFLEX_BACKEND_HOST", "REFLEX_ENV_MODE", "REDIS_URL"):
        env.pop(name, None)
    (tmp_path / "no-reload").mkdir()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "reflex"),
            "run",
            "--backend-only",
            "--backend-port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                pytest.fail("backend exited:\n" + (tmp_path / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("backend did not start:\n" + (tmp_path / "server.log").read_text())
            time.sleep(1)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{address}:{port}/healthz", timeout=5)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
