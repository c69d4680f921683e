"""A web process killed and restarted while a run is being written: the run goes on in its worker,
the reloaded page shows it finish with its whole text, and its credits are settled once.

The app runs on a server of its own (not the shared one): RUN_QUEUE=redis on a spare Redis
database with a queue namespace of its own, a throwaway PostgreSQL database, one worker process
(`python -m jobs worker`) and a slow loopback model streaming one word every 0.3 s.

Needs TEST_DATABASE_URL and REDIS_URL (the app uses its database 7); skipped without them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.seed import DEV_PASSWORD
from tests.db.test_run_engine_pg import SlowEndpoint
from tests.live_app import ROOT, AppServer, app_env, running_app, sign_in

pytestmark = pytest.mark.browser

SPARE_REDIS_DB = 7
PROMPT = "Keep writing while the web restarts"


def _spare_redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("set REDIS_URL to run the web-restart test (runs go through the Redis queue)")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{SPARE_REDIS_DB}"))


@pytest.fixture
def throwaway_pg() -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards."""
    from core import db

    admin_url_text = os.environ.get("TEST_DATABASE_URL", "")
    if not admin_url_text:
        pytest.skip("set TEST_DATABASE_URL to run the web-restart test (web and worker share it)")
    admin_url = make_url(db.normalize_database_url(admin_url_text))
    name = f"cs_restart_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(
        admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def run_queue() -> Iterator[dict]:
    """The app's Redis settings: a spare database and a namespace deleted afterwards."""
    import redis

    url = _spare_redis_url()
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {url}")
    namespace = f"web-restart-{uuid.uuid4().hex[:12]}"
    try:
        yield {"RUN_QUEUE": "redis", "REDIS_URL": url, "RUN_REDIS_NAMESPACE": namespace}
    finally:
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)
        client.close()


@pytest.fixture
def slow_model() -> Iterator[tuple[str, threading.Event]]:
    release = threading.Event()
    handler = type("Slow", (SlowEndpoint,), {"release": release})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", release
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def _start_worker(stack: ExitStack, env: dict, log_path: Path) -> None:
    log = stack.enter_context(log_path.open("w"))
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobs", "worker", "--threads", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def stop() -> None:
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.wait(timeout=30)

    stack.callback(stop)


def _facts(app: AppServer, public_id: str) -> dict:
    """What the app's database says about the run and the organization's credits."""
    out = app.run_python(
        "import json\n"
        "from sqlalchemy import func\n"
        "from sqlmodel import Session, select\n"
        "from core.db import get_engine\n"
        "from models import CreditAccount, CreditLedgerEntry, Generation\n"
        "with Session(get_engine()) as s:\n"
        f"    run = s.exec(select(Generation).where(Generation.public_id == {public_id!r})).one()\n"
        "    balance = s.exec(select(CreditAccount.balance_millicredits)\n"
        "        .where(CreditAccount.org_id == run.org_id)).one()\n"
        "    ledger = s.exec(select(func.coalesce(func.sum(CreditLedgerEntry.amount_millicredits), 0))\n"
        "        .where(CreditLedgerEntry.org_id == run.org_id)).one()\n"
        "    kinds = s.exec(select(CreditLedgerEntry.kind)\n"
        "        .where(CreditLedgerEntry.generation_id == run.id)\n"
        "        .order_by(CreditLedgerEntry.id)).all()\n"
        "    print(json.dumps({'status': run.status, 'text': run.output_text,\n"
        "        'balance': balance, 'ledger': int(ledger), 'kinds': list(kinds)}))\n"
    )
    return json.loads(out.strip().splitlines()[-1])


def test_a_run_survives_a_web_restart_and_the_reloaded_page_shows_it_finish(
    throwaway_pg, run_queue, slow_model, page, tmp_path
):
    endpoint, release = slow_model
    data_dir = tmp_path / "app-data"
    # A build directory of its own: the build bakes in this server's port, and the shared
    # app's build must not change under it. Copied from the shared one, so no package install.
    web_dir = tmp_path / "web"
    shared_web = Path(os.environ.get("CS_TEST_WEB_WORKDIR", str(ROOT / ".web-test")))
    if shared_web.exists():
        shutil.copytree(
            shared_web,
            web_dir,
            symlinks=True,
            # Its own output only; packages keep their `build` folders.
            ignore=lambda folder, names: ["build"] if Path(folder) == shared_web else [],
        )
    overrides = {**run_queue, "DATABASE_URL": throwaway_pg, "REFLEX_WEB_WORKDIR": str(web_dir)}

    with ExitStack() as stack:
        first = stack.enter_context(running_app(data_dir, overrides, log_name="web-1.log"))
        port = urlsplit(first.base_url).port
        first.run_python(
            "from sqlmodel import Session, select\n"
            "from core.db import get_engine\n"
            "from models import AIModel\n"
            "with Session(get_engine()) as s:\n"
            "    model = s.exec(select(AIModel).where(AIModel.key == 'hosted-text')).one()\n"
            f"    model.provider_base_url = {endpoint!r}\n"
            "    s.add(model)\n"
            "    s.commit()\n"
        )
        _start_worker(stack, app_env(data_dir, port, overrides), tmp_path / "worker.log")

        page.goto(first.base_url + "/sign-in")
        page.wait_for_load_state("networkidle")
        sign_in(page, first.base_url, "editor@acme.test", DEV_PASSWORD)
        expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
        model = "Hosted Text (OpenAI-compatible)"
        page.get_by_role("button", name=re.compile("^" + re.escape(model) + r" \d")).click()
        expect(page.get_by_text("Model: " + model, exact=True)).to_be_visible()
        page.get_by_label("Prompt").fill(PROMPT)
        page.get_by_label("Prompt").blur()
        expect(page.locator("#run-estimate")).to_contain_text("About")
        page.get_by_role("button", name="Run", exact=True).click()
        card = page.locator("[data-generation]").filter(has_text=PROMPT)
        expect(card).to_contain_text("word1 ", timeout=60_000)
        expect(card).to_contain_text("running")
        public_id = card.get_attribute("data-generation")

        # The web process dies without a chance to clean up, and comes back on the same port.
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=30)
        second = stack.enter_context(
            running_app(data_dir, overrides, port=port, setup=False, log_name="web-2.log")
        )

        page.reload()
        card = page.locator(f'[data-generation="{public_id}"]')
        expect(card).to_contain_text(PROMPT)
        release.set()
        expect(card).to_contain_text("succeeded", timeout=60_000)

        facts = _facts(second, public_id)
        assert facts["status"] == "succeeded"
        words = facts["text"].split()
        assert words == [f"word{number}" for number in range(len(words))]
        assert len(words) > 2
        expect(card).to_contain_text(facts["text"].strip())
        assert facts["kinds"] == ["hold", "settle"]
        assert facts["balance"] == facts["ledger"]
