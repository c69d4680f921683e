"""Creative Studio in the real app: an editor on Growth generates text and an image with local
models and sees the outputs; a locked video model opens the upgrade modal; a swap shows the
banner naming both models; a run goes on after its tab closes, a run started elsewhere shows
up, and a slow model's text appears in the run card as it is written while the images already
shown are not fetched again."""

import json
import re
import threading
from collections import Counter
from http.server import ThreadingHTTPServer

import pytest
from itsdangerous.encoding import base64_decode
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in
from tests.db.test_run_engine_pg import SlowEndpoint

pytestmark = pytest.mark.browser

STUDIO = "/org/acme/studio"


def _open_studio(page, app_server, email="editor@acme.test"):
    # Let the sign-in page hydrate first, so the form is handled by the app, not the browser.
    page.goto(app_server.base_url + "/sign-in")
    page.wait_for_load_state("networkidle")
    sign_in(page, app_server.base_url, email, DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/studio$"))
    expect(page.get_by_role("heading", name="Creative Studio", level=1)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Studio Local Text"))).to_be_visible()


def _asset_of(signed_url: str) -> str:
    """The asset a signed link names (its payload is the first dot-separated part)."""
    payload = signed_url.split("/signed-assets/", 1)[1].split(".", 1)[0]
    return json.loads(base64_decode(payload))["asset"]


def _run(page, model_name: str, prompt: str):
    # "Studio Local Image 4 credits per image", not "Studio Local Image HD Premium ...".
    page.get_by_role("button", name=re.compile("^" + re.escape(model_name) + r" \d")).click()
    expect(page.get_by_text(re.compile("^Model: " + re.escape(model_name) + "$"))).to_be_visible()
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_label("Prompt").blur()
    expect(page.locator("#run-estimate")).to_contain_text("About")
    page.get_by_role("button", name="Run", exact=True).click()


def test_editor_generates_text_and_an_image_and_sees_the_outputs(app_server, page):
    _open_studio(page, app_server)
    expect(page.get_by_text("1 credit per 1K tokens")).to_be_visible()

    _run(page, "Studio Local Text", "Launch post for our spring running shoes")
    latest = page.locator("[data-generation]").first
    expect(latest).to_contain_text("succeeded", timeout=60_000)
    expect(latest).to_contain_text("Launch post for our spring running shoes")
    expect(latest).to_contain_text(re.compile(r"queued .* → running .* → succeeded"))
    expect(latest.get_by_text(re.compile(r"gen_"))).to_be_visible()
    expect(page.locator("#live-status")).to_contain_text("succeeded")

    _run(page, "Studio Local Image", "Trail shoes for the whole family")
    latest = page.locator("[data-generation]").first
    expect(latest).to_contain_text("succeeded", timeout=60_000)
    image = latest.get_by_role("img", name=re.compile("Generated image for: Trail shoes"))
    expect(image).to_be_visible()
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=image.element_handle(), timeout=30_000
    )
    expect(latest.get_by_role("link", name="Download")).to_be_visible()
    assert page.locator("[data-generation]").count() >= 2
    screenshot(page, "studio")


def test_locked_video_model_opens_the_upgrade_modal_from_the_keyboard_too(app_server, page):
    _open_studio(page, app_server)
    locked = page.get_by_role("button", name=re.compile("Studio Local Motion"))
    expect(locked).to_contain_text("Needs Scale")
    screenshot(page, "studio-picker")
    locked.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Upgrade to Scale to use Studio Local Motion")
    expect(dialog).to_contain_text("$399 / month")
    expect(dialog).to_contain_text("Ask your owner (Olivia Owner)")
    expect(page.locator("#opt-tone")).to_be_visible()  # the selection did not change to video
    screenshot(page, "studio-upgrade-modal")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    locked.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.get_by_role("button", name="Not now").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(locked).to_be_focused()  # focus is back on the model's row


def test_swap_banner_names_both_models(app_server, page):
    app_server.run_python(
        "from sqlmodel import Session, select\n"
        "from core.db import get_engine\n"
        "from models import User\n"
        "from services.models_registry import model_swap\n"
        "with Session(get_engine()) as s:\n"
        "    op = s.exec(select(User).where(User.is_operator == True)).first()\n"
        "    model_swap(session=s, actor=op, model_key='local-image-hd', reason='test')\n"
        "    s.commit()\n"
    )
    try:
        _open_studio(page, app_server)
        banner = page.get_by_role("status").filter(has_text="temporarily replaced")
        expect(banner).to_contain_text(
            "Studio Local Image HD is temporarily replaced by Studio Local Image"
        )
        screenshot(page, "studio-swap-banner")
    finally:
        app_server.run_python(
            "from sqlmodel import Session, select\n"
            "from core.db import get_engine\n"
            "from models import User\n"
            "from services.models_registry import model_enable\n"
            "with Session(get_engine()) as s:\n"
            "    op = s.exec(select(User).where(User.is_operator == True)).first()\n"
            "    model_enable(session=s, actor=op, model_key='local-image-hd')\n"
            "    s.commit()\n"
        )


def test_a_run_goes_on_after_its_tab_closes_and_studio_shows_the_result(app_server, context):
    first = context.new_page()
    _open_studio(first, app_server)
    _run(first, "Studio Local Text", "Closing the tab right away")
    card = first.locator("[data-generation]").filter(has_text="Closing the tab right away")
    expect(card).to_be_visible()
    public_id = card.get_attribute("data-generation")
    first.close()

    again = context.new_page()
    again.goto(app_server.base_url + STUDIO)
    finished = again.locator(f'[data-generation="{public_id}"]')
    expect(finished).to_contain_text("succeeded", timeout=60_000)
    expect(finished).to_contain_text("credits charged")
    again.close()


def test_a_run_started_elsewhere_shows_its_status_without_a_reload(app_server, page):
    _open_studio(page, app_server)
    public_id = app_server.run_python(
        "from sqlmodel import Session, select\n"
        "from core.db import get_engine\n"
        "from models import Organization, Project, User\n"
        "from services.generations import generation_start\n"
        "with Session(get_engine()) as s:\n"
        "    user = s.exec(select(User).where(User.email == 'editor@acme.test')).one()\n"
        "    org = s.exec(select(Organization).where(Organization.slug == 'acme')).one()\n"
        "    project = s.exec(select(Project).where(Project.org_id == org.id)).first()\n"
        "    run = generation_start(session=s, user=user, org_id=org.id,\n"
        "        model_key='local-text', prompt='Started from another place',\n"
        "        project_id=project.id)\n"
        "    s.commit()\n"
        "    print(run.public_id)\n"
        # This process's own executor runs it: keep the process until the run ends.
        "import time\n"
        "from models import Generation\n"
        "for _ in range(600):\n"
        "    with Session(get_engine()) as s:\n"
        "        if s.get(Generation, run.id).status not in ('queued', 'running'):\n"
        "            break\n"
        "    time.sleep(0.1)\n"
    ).strip()

    card = page.locator(f'[data-generation="{public_id}"]')
    expect(card).to_contain_text("Started from another place", timeout=30_000)
    expect(card).to_contain_text("succeeded", timeout=60_000)


def _hosted_text_endpoint(app_server, base_url: str | None) -> None:
    app_server.run_python(
        "from sqlmodel import Session, select\n"
        "from core.db import get_engine\n"
        "from models import AIModel\n"
        "with Session(get_engine()) as s:\n"
        "    model = s.exec(select(AIModel).where(AIModel.key == 'hosted-text')).one()\n"
        f"    model.provider_base_url = {base_url!r}\n"
        "    s.add(model)\n"
        "    s.commit()\n"
    )


def test_text_appears_in_the_run_card_while_a_slow_model_writes_it(app_server, page):
    release = threading.Event()
    handler = type("Slow", (SlowEndpoint,), {"release": release})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _hosted_text_endpoint(app_server, f"http://127.0.0.1:{server.server_address[1]}/v1")
    try:
        _open_studio(page, app_server)
        _run(page, "Studio Local Image", "A still before the slow run")
        still = page.locator("[data-generation]").first
        expect(still).to_contain_text("succeeded", timeout=60_000)
        image = still.get_by_role("img", name=re.compile("A still before the slow run"))
        page.wait_for_function(
            "el => el.complete && el.naturalWidth > 0", arg=image.element_handle(), timeout=30_000
        )
        fetched: list[str] = []
        page.on("request", lambda r: fetched.append(r.url) if "/signed-assets/" in r.url else None)
        _run(page, "Hosted Text (OpenAI-compatible)", "Words one at a time")
        card = page.locator("[data-generation]").filter(has_text="Words one at a time")
        expect(card).to_contain_text("word1 ", timeout=60_000)
        expect(card).to_contain_text("running")  # still being written
        expect(card).to_contain_text("word6 ")  # and more of it since
        expect(card).to_contain_text("running")
        # Meanwhile the page re-read its history every second: the images it already showed
        # kept their addresses and were not fetched again (each once at most, if the links
        # renewed at the turn of a minute; earlier tests' images are on the page too).
        per_asset = Counter(_asset_of(url) for url in fetched)
        assert all(n <= 1 for n in per_asset.values()), per_asset
        screenshot(page, "studio-streaming")
        release.set()
        expect(card).to_contain_text("succeeded", timeout=60_000)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        _hosted_text_endpoint(app_server, None)
