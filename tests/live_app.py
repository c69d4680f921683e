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
from playwright.sync_api import Error as PlaywrightError
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
        # The browser tests' loopback competitor site and identity provider are named test
        # hosts for the address guard (only in the app server, never in the test process).
        "INTEL_ALLOWED_HOSTS": "127.0.0.1",
        "SSO_ALLOWED_HOSTS": "127.0.0.1",
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
        open_context = browser.new_context

        def new_context(*args, **kwargs):
            # Every context a test opens is watched for hydration errors, not only `context`.
            context = open_context(*args, **kwargs)
            watch_hydration(context)
            return context

        browser.new_context = new_context
        yield browser
        browser.close()


# Runs in every page before the app: a nesting the HTML parser would repair (a <p> inside a <p>,
# a block inside a <p>) makes React's hydration fail on a prerendered page and is invalid HTML
# anywhere, so every such nesting that appears is reported as a console error, once.
NESTING_CHECK_SCRIPT = """
(() => {
  const seen = new WeakSet();
  const selector = ["p", "div", "ul", "ol", "table", "form", "section", "h1", "h2", "h3", "h4"]
    .map((tag) => "p " + tag).join(", ");
  let queued = false;
  const check = () => {
    queued = false;
    for (const inner of document.querySelectorAll(selector)) {
      if (seen.has(inner)) continue;
      seen.add(inner);
      const outer = inner.parentElement.closest("p");
      const text = (outer.textContent || "").trim().slice(0, 80);
      console.error(
        `Invalid DOM nesting (hydration error): <${inner.tagName.toLowerCase()}> inside <p> ` +
        `in "${text}" at ${location.pathname}`
      );
    }
  };
  const observer = new MutationObserver(() => {
    if (!queued) { queued = true; setTimeout(check, 100); }
  });
  const start = () => {
    observer.observe(document.documentElement, { childList: true, subtree: true });
    check();
  };
  if (document.documentElement) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
"""
HYDRATION_PATTERNS = (
    "hydration",
    "did not match",
    "cannot be a descendant of",
    "cannot contain a nested",
    "invalid dom nesting",
    "minified react error #418",
    "minified react error #419",
    "minified react error #422",
    "minified react error #423",
    "minified react error #425",
)


def is_hydration_error(text: str) -> bool:
    lowered = text.lower()
    return any(pattern in lowered for pattern in HYDRATION_PATTERNS)


# Hydration errors seen since the current test started, in every context of the shared browser.
HYDRATION_ERRORS: list[str] = []


def watch_hydration(context) -> None:
    """Record React hydration errors (and invalid nesting) of every page of `context`."""

    def on_page(page) -> None:
        def on_console(message) -> None:
            if message.type == "error" and is_hydration_error(message.text):
                HYDRATION_ERRORS.append(f"{page.url}: {message.text[:500]}")

        def on_page_error(error) -> None:
            if is_hydration_error(str(error)):
                HYDRATION_ERRORS.append(f"{page.url}: {str(error)[:500]}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)

    context.add_init_script(NESTING_CHECK_SCRIPT)
    context.on("page", on_page)


@pytest.fixture(autouse=True)
def no_hydration_errors(request):
    """Fails a test during which any page showed a React hydration error in its console."""
    HYDRATION_ERRORS.clear()
    yield
    if HYDRATION_ERRORS:
        unique = list(dict.fromkeys(HYDRATION_ERRORS))
        HYDRATION_ERRORS.clear()
        pytest.fail(
            "React hydration errors in the browser console (every page the browser tests "
            "visit is checked):\n" + "\n".join(unique)
        )


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
    # Right after a resize, a full-page capture can catch blocks not yet painted (a blank card
    # where its text is): wait until the browser has painted two frames since.
    paint = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
    try:
        page.evaluate(paint)
    except PlaywrightError as exc:
        # The page navigated while we waited (a hop the test's assertions already passed):
        # the picture is of where it landed.
        if "context was destroyed" not in str(exc):
            raise
        page.wait_for_load_state()
        page.evaluate(paint)
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(base_url + "/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
