"""2FA from Settings > Security, sign-in with a code, and no secrets in the websocket traffic."""

import json
import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

PASSWORD = "quartz-meadow-signal-77"


def _make_member(app_server, email: str, org_name: str, totp_secret: str | None = None) -> str:
    """A verified user owning an org (and optionally 2FA already on); returns the org slug."""
    code = f"""
from sqlmodel import Session
from core.clock import utcnow
from core.crypto import encrypt, hash_password
from core.db import get_engine
from models import User
from services import orgs
with Session(get_engine(), expire_on_commit=False) as s:
    user = User(email={email!r}, name="Tess Factor", password_hash=hash_password({PASSWORD!r}), email_verified_at=utcnow())
    if {totp_secret!r}:
        user.totp_secret_encrypted = encrypt({totp_secret!r})
        user.totp_enabled_at = utcnow()
    s.add(user); s.flush()
    org = orgs.org_create(session=s, owner=user, name={org_name!r})
    s.commit()
    print(org.slug)
"""
    return app_server.run_python(code).strip()


def _next_code(secret: str) -> str:
    """A code valid now that was not used yet (the current step may have been used at enrolment)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def test_enrol_sign_out_and_sign_in_with_a_code_then_a_recovery_code(app_server, page):
    email = "tess.factor@example.com"
    slug = _make_member(app_server, email, "Factor Labs")
    sign_in(page, app_server.base_url, email, PASSWORD)
    expect(page).to_have_url(re.compile(rf"/org/{slug}/studio$"))
    page.goto(f"{app_server.base_url}/org/{slug}/settings")
    page.get_by_role("button", name="Set up two-factor authentication").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.locator("code").first.inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    screenshot(page, "security-2fa-enrolment")

    page.get_by_label("2. Enter the 6-digit code it shows").fill("000000")
    page.get_by_role("button", name="Turn on 2FA").click()
    expect(
        page.get_by_role("alert")
    ).to_be_visible()  # a wrong code is refused, enrolment stays open

    page.get_by_label("2. Enter the 6-digit code it shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on 2FA").click()
    codes_box = page.get_by_label("Recovery codes", exact=True)
    expect(codes_box).to_be_visible()
    recovery_codes = [c.strip() for c in codes_box.locator("code").all_inner_texts()]
    assert len(recovery_codes) == 10
    screenshot(page, "security-2fa-recovery-codes")
    page.get_by_role("button", name="I saved my recovery codes").click()
    expect(page.get_by_text("On", exact=True)).to_be_visible()

    page.get_by_role("button", name="Sign out").first.click()
    expect(page).to_have_url(re.compile(r"/sign-in"))

    sign_in(page, app_server.base_url, email, PASSWORD)
    code_field = page.get_by_label("Authentication code")
    expect(code_field).to_be_visible()
    code_field.fill(_next_code(secret))
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page).to_have_url(re.compile(rf"/org/{slug}/studio$"))

    page.get_by_role("button", name="Sign out").first.click()
    expect(page).to_have_url(re.compile(r"/sign-in"))
    sign_in(page, app_server.base_url, email, PASSWORD)
    page.get_by_label("Authentication code").fill(recovery_codes[0])
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page).to_have_url(re.compile(rf"/org/{slug}/studio$"))


def test_websocket_frames_carry_no_hash_secret_or_token(app_server, page, context):
    email = "frames.check@example.com"
    secret = pyotp.random_base32()
    slug = _make_member(app_server, email, "Frames Inc", totp_secret=secret)
    frames: list[str] = []

    def _watch(ws):
        ws.on(
            "framesent",
            lambda payload: frames.append(payload if isinstance(payload, str) else repr(payload)),
        )
        ws.on(
            "framereceived",
            lambda payload: frames.append(payload if isinstance(payload, str) else repr(payload)),
        )

    page.on("websocket", _watch)
    # A pending password reset for the same account: its token must never reach the page either.
    app_server.run_python(
        "from sqlmodel import Session\nfrom core.db import get_engine\nfrom services import auth\n"
        f"with Session(get_engine()) as s:\n    auth.password_reset_request(session=s, email={email!r}, base_url='http://x')\n"
    )
    sign_in(page, app_server.base_url, email, PASSWORD)
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page).to_have_url(re.compile(rf"/org/{slug}/studio$"))
    page.goto(f"{app_server.base_url}/org/{slug}/settings")
    expect(page.get_by_role("heading", name="Active sessions")).to_be_visible()
    # Each session says where it was created: device, IP address and date.
    expect(page.get_by_role("columnheader", name="Created")).to_be_visible()
    when = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$")
    expect(page.get_by_role("cell", name=when).first).to_be_visible()
    page.get_by_role("link", name="Team").click()
    expect(page).to_have_url(re.compile(rf"/org/{slug}/team$"))
    page.wait_for_timeout(1000)

    secrets_json = app_server.run_python(
        "import json, re\nfrom sqlmodel import Session, select\nfrom core.db import get_engine\n"
        "from models import User, UserSession, OutboxMail\n"
        f"with Session(get_engine()) as s:\n"
        f"    u = s.exec(select(User).where(User.email == {email!r})).one()\n"
        "    hashes = [r.token_hash for r in s.exec(select(UserSession).where(UserSession.user_id == u.id))]\n"
        f"    mail = s.exec(select(OutboxMail).where(OutboxMail.to_address == {email!r}).order_by(OutboxMail.id.desc())).first()\n"
        "    reset = re.search(r'token=([\\w-]+)', mail.body_text).group(1)\n"
        "    print(json.dumps({'password_hash': u.password_hash, 'totp_encrypted': u.totp_secret_encrypted,"
        " 'session_hashes': hashes, 'reset_token': reset}))\n"
    )
    stored = json.loads(secrets_json)
    cookie = next(c["value"] for c in context.cookies() if c["name"] == "cs_session")
    cookie_flags = next(c for c in context.cookies() if c["name"] == "cs_session")
    assert cookie_flags["httpOnly"] is True
    preauth = next(c for c in context.cookies() if c["name"] == "cs_preauth")
    assert preauth["httpOnly"] is True

    traffic = "\n".join(frames)
    assert len(frames) > 5, "no websocket traffic was recorded"
    assert "Tess Factor" in traffic  # the recording does see the page's data
    forbidden = {
        "password hash": stored["password_hash"],
        "argon2 marker": "$argon2id$",
        "TOTP secret": secret,
        "encrypted TOTP secret": stored["totp_encrypted"],
        "session cookie token": cookie,
        "pre-auth cookie": preauth["value"],
        "reset token": stored["reset_token"],
        **{f"session hash {i}": value for i, value in enumerate(stored["session_hashes"])},
    }
    leaks = [name for name, value in forbidden.items() if value and value in traffic]
    assert leaks == []
