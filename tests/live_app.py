"""Starts the real app (`reflex run`) on free ports with its own seeded database, and Chromium.

These fixtures are registered once, by tests/conftest.py, so every suite that drives the live
app (browser, security) shares one server and one browser per test run.

The server is shared by the browser tests of one pytest run. With REDIS_URL set (CI), the app
keeps its state in Redis, as it does with several workers in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.factories import free_port

# Generous assertion timeouts: the machine has 2 cores shared with the server and browser.
expect.set_options(timeout=30_000)

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "tests" / "browser" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
START_TIMEOUT_S = 600


@dataclass
class AppServer:
    base_url: str
    backend_url: str
    database_url: str
    data_dir: Path
    env: dict
    process: subprocess.Popen | None = None

    def run_python(self, code: str) -> str:
        """Run a snippet against the app's database (same settings as the server)."""
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout


def app_env(data_dir: Path, port: int, overrides: dict | None = None) -> dict:
    """The environment of a test app on `port` keeping its data in `data_dir`."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "REFLEX_USE_NPM": "1",
        # Own build and state directories, so a `make run` in the same checkout is not disturbed.
        "REFLEX_WEB_WORKDIR": os.environ.get("CS_TEST_WEB_WORKDIR", str(ROOT / ".web-test")),
        "REFLEX_STATES_WORKDIR": str(data_dir / "states"),
        # Never hot-reload under test (screenshots and the database change during the run).
        "REFLEX_HOT_RELOAD_OVERRIDE_PATHS": str(data_dir / "no-reload"),
        "APP_ENV": "development",
        "CS_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'app.db'}",
        "SECRET_KEY": "browser-test-secret-" + "k" * 40,
        "APP_BASE_URL": f"http://localhost:{port}",
        "SCHEDULER": "off",
        "PYTHONUNBUFFERED": "1",
    }
    for var in ("STRIPE_SECRET_KEY", "SMTP_HOST", "GOOGLE_CLIENT_ID", "OPENAI_BASE_URL"):
        env.pop(var, None)
    env.update(overrides or {})
    return env


@contextmanager
def running_app(
    data_dir: Path,
    env_overrides: dict | None = None,
    port: int | None = None,
    *,
    setup: bool = True,
    log_name: str = "server.log",
) -> Iterator[AppServer]:
    """`reflex run --env prod` on `port` (a free one by default) until the block ends.

    `setup` migrates and seeds the database first; a restart on the same data passes False.
    The server runs in a process group of its own (`AppServer.process`), ended on exit.
    """
    (data_dir / "no-reload").mkdir(parents=True, exist_ok=True)
    # Production mode: a static build served with the backend on one port, as deployed.
    port = port or free_port()
    env = app_env(data_dir, port, env_overrides)
    if setup:
        subprocess.run(
            [sys.executable, "-m", "core.manage", "setup"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    log_path = data_dir / log_name
    log = open(log_path, "w")  # noqa: SIM115 - closed at exit
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "reflex"),
            "run",
            "--env",
            "prod",
            "--frontend-port",
            str(port),
            "--backend-port",
            str(port),
            "--loglevel",
            "info",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = backend_url = f"http://localhost:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError("app exited during start:\n" + log_path.read_text()[-4000:])
            try:
                if (
                    httpx.get(base_url + "/sign-in", timeout=5, follow_redirects=True).status_code
                    == 200
                    and httpx.get(backend_url + "/healthz", timeout=5).status_code == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("app did not start in time:\n" + log_path.read_text()[-4000:])
            time.sleep(1)
        yield AppServer(base_url, backend_url, env["DATABASE_URL"], data_dir, env, process)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory) -> Iterator[AppServer]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (make test installs it)")
    with running_app(tmp_path_factory.mktemp("app-data")) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(60_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(base_url + "/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
