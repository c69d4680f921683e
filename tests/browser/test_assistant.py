"""Marketing Assistant in the browser: an editor chats and sees the reply grow, reloads mid-reply
and still gets the whole reply; model output with HTML stays text; search finds the
conversation; a viewer cannot send and is told why; a Free organization at its daily cap sees
the reset time and the upgrade link; a locked model opens the upgrade offer and focus returns to
its row. Screenshots at desktop width and 375 px.

Tests that change data create their own organization (the server is shared), except the
editor's conversation, which lives in the seeded Acme organization.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from services.seed import DEV_PASSWORD
from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=window.__assistant_xss=1>"
QUESTION = (
    "Draft a launch announcement for our marigold spring collection for busy florists who "
    "order online before dawn, warm and concise " + XSS
)
CODE = "if price < 20 and stock > 0: promote()"
QUESTION_WITH_CODE = QUESTION + "\n\n```\n" + CODE + "\n```"


def _reply(page):
    return page.locator('[data-role="assistant"]').last


def _new_conversation(page, base_url: str, slug: str) -> None:
    page.goto(f"{base_url}/org/{slug}/assistant")
    expect(page.get_by_role("heading", name="Marketing Assistant", level=1)).to_be_visible()
    page.get_by_role("button", name="New conversation").click()
    expect(page).to_have_url(re.compile(r"/assistant\?c=chat_"))
    expect(page.get_by_label("Message", exact=True)).to_be_visible()


def test_editor_chats_sees_the_reply_grow_and_reload_keeps_following(app_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    sign_in(page, app_server.base_url, "editor@acme.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(r"/org/acme/"))
    _new_conversation(page, app_server.base_url, "acme")
    expect(
        page.get_by_text(re.compile(r"\d+ of 500 messages left today · resets at")).first
    ).to_be_visible()
    page.get_by_label("Message", exact=True).fill(QUESTION_WITH_CODE)
    page.get_by_role("button", name="Send").click()

    reply = _reply(page)
    expect(reply).to_contain_text("Here is a draft for")
    first = len(reply.inner_text())
    page.wait_for_function(
        "n => { const r = [...document.querySelectorAll('[data-role=assistant]')].pop();"
        " return r && r.innerText.length > n; }",
        arg=first,
    )  # the reply grows while it is written
    conversation_url = page.url
    page.reload()
    expect(_reply(page)).to_contain_text("Want a shorter version", timeout=60_000)
    expect(_reply(page)).to_contain_text("Brand kit used")
    expect(page.get_by_role("link", name="Use in Studio")).to_have_attribute(
        "href", re.compile(r"/org/acme/studio\?prompt=Here")
    )
    # The HTML in the question and the reply is shown as text, never run.
    mine = page.locator('[data-role="user"]').last
    expect(mine).to_contain_text(XSS)
    expect(mine.locator("pre code")).to_have_text(CODE)  # a code block shows < as written
    assert "&lt;" not in page.get_by_role("main").inner_text()
    expect(_reply(page)).to_contain_text("<img src=x onerror=")
    assert page.evaluate("window.__assistant_xss") is None
    assert page.locator('[data-role="assistant"] img').count() == 0
    screenshot(page, "assistant-editor")

    # Search finds the conversation by a word of its messages; nonsense finds nothing.
    page.get_by_label("Search conversations").fill("marigold")
    page.get_by_role("button", name="Search", exact=True).click()
    listed = page.get_by_role("list", name="Conversations")
    expect(
        listed.get_by_role("button", name=re.compile("Draft a launch announcement"))
    ).to_be_visible()
    page.get_by_label("Search conversations").fill("zebrafishnotthere")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_text("No conversation matches this search.")).to_be_visible()

    # 375 px wide: the list stacks above the chat and nothing is cut off.
    mobile = browser.new_context(viewport={"width": 375, "height": 800})
    mobile.add_cookies(context.cookies())
    small = mobile.new_page()
    small.goto(conversation_url)
    expect(_reply(small)).to_contain_text("Want a shorter version")
    assert small.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(small, "assistant-editor-375")
    mobile.close()

    # A viewer of the same organization reads the conversation but cannot send, and is told why.
    viewer_context = browser.new_context(viewport={"width": 1280, "height": 900})
    viewer = viewer_context.new_page()
    sign_in(viewer, app_server.base_url, "viewer@acme.test", DEV_PASSWORD)
    expect(viewer).to_have_url(re.compile(r"/org/acme/"))
    viewer.goto(conversation_url)
    expect(_reply(viewer)).to_contain_text("Want a shorter version")
    expect(
        viewer.get_by_text("Viewers can read conversations but cannot send messages.")
    ).to_be_visible()
    expect(viewer.get_by_role("button", name="Send")).to_have_count(0)
    screenshot(viewer, "assistant-viewer")
    viewer_context.close()
    context.close()


def test_a_free_organization_at_its_daily_cap_sees_the_reset_time(app_server, browser):
    slug = app_server.run_python(
        f"""
from sqlmodel import Session, select
from core.clock import utcnow
from core.crypto import hash_password
from core.db import get_engine
from models import AIModel, User
from services import orgs
from services.caps import Cap, cap_take

with Session(get_engine()) as s:
    owner = User(email="capped@free.test", name="Cara Capped",
                 password_hash=hash_password({DEV_PASSWORD!r}), email_verified_at=utcnow())
    s.add(owner); s.flush()
    if s.exec(select(AIModel).where(AIModel.key == "local-text-pro")).first() is None:
        s.add(AIModel(key="local-text-pro", display_name="Studio Local Text Pro",
                      modality="text", provider="local", provider_model_id="studio-local-text-1",
                      min_plan_key="scale", tier="premium", rate_millicredits=3000,
                      rate_unit="per_1k_tokens", sort_order=15))
    org = orgs.org_create(session=s, owner=owner, name="Capped Free", plan_key="free")
    for index in range(20):
        cap_take(session=s, org_id=org.id, cap=Cap.assistant_messages,
                 idempotency_key=f"browser-cap-{{index}}")
    s.commit()
    print(org.slug)
"""
    ).strip()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    sign_in(page, app_server.base_url, "capped@free.test", DEV_PASSWORD)
    expect(page).to_have_url(re.compile(rf"/org/{slug}/"))
    _new_conversation(page, app_server.base_url, slug)
    expect(
        page.get_by_text(re.compile(r"0 of 20 messages left today · resets at 00:00 UTC, in"))
    ).to_be_visible()
    page.get_by_label("Message", exact=True).fill("One more idea please")
    page.get_by_role("button", name="Send").click()
    alert = page.get_by_role("alert").filter(has_text="limit reached")
    expect(alert).to_contain_text("20 of 20 Marketing Assistant messages used today on Free")
    expect(alert).to_contain_text(re.compile(r"resets at 00:00 UTC, in \d+"))
    expect(alert.get_by_role("link", name="Upgrade in Billing")).to_have_attribute(
        "href", f"/org/{slug}/billing"
    )
    screenshot(page, "assistant-cap-reached")

    # A model the plan does not include shows its lock; choosing it opens the upgrade offer
    # naming the plan, and closing the offer puts focus back on the model's row.
    locked = page.get_by_role("button", name=re.compile("Studio Local Text Pro"))
    expect(locked).to_contain_text("Needs Scale")
    locked.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Upgrade to Scale to use Studio Local Text Pro")
    expect(dialog.get_by_role("link", name="Upgrade in Billing")).to_have_attribute(
        "href", f"/org/{slug}/billing"
    )
    screenshot(page, "assistant-upgrade-offer")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(locked).to_be_focused()
    mobile = browser.new_context(viewport={"width": 375, "height": 800})
    mobile.add_cookies(context.cookies())
    small = mobile.new_page()
    small.goto(page.url)
    expect(small.get_by_text(re.compile(r"0 of 20 messages left today"))).to_be_visible()
    screenshot(small, "assistant-cap-375")
    mobile.close()
    context.close()
    # The model was added for this test only; later tests see the catalog as shipped.
    app_server.run_python(
        "from sqlmodel import Session, delete\n"
        "from core.db import get_engine\n"
        "from models import AIModel\n"
        "with Session(get_engine()) as s:\n"
        "    s.exec(delete(AIModel).where(AIModel.key == 'local-text-pro'))\n"
        "    s.commit()\n"
    )
