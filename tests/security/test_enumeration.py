"""Nobody can find out from the public forms whether an address has an account.

- Register answers the same for a taken and a free address; the owner of a taken address is
  told by mail (a real SMTP server on loopback here) and nothing else changes.
- Sign-in answers and locks the same for an unknown address as for an account: the same
  messages, the same lock after 5 failures, for the same 15 minutes.
- A password reset request is answered before anything is looked up; the lookup and the
  mail happen afterwards, so the answer and its timing are the same for any address.

Each form is driven through its page handler, as the browser's websocket calls it.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
import reflex as rx
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher
from reflex.istate.data import RouterData
from sqlmodel import Session, select

from core import crypto, routes
from core.clock import as_utc, utcnow
from core.settings import reset_settings_cache
from models import EmailToken, OutboxMail, SignInThrottle, User
from services import auth as auth_service
from services.errors import DomainError
from services.lockout import MAX_FAILED_SIGN_INS
from state.password_reset import PasswordResetState
from state.register import RegisterState
from state.sign_in import SignInState
from tests.conftest import requires_postgres
from tests.factories import free_port

PASSWORD = "velvet-harbor-kettle-92"
BINDING = "cs_preauth=" + "p" * 43


def _router(cookie: str, path: str) -> RouterData:
    """What the websocket carries for a tab on `path` with this Cookie header."""
    return RouterData.from_router_data(
        {
            "headers": {"cookie": cookie, "origin": "http://localhost:3000"},
            "pathname": path.partition("?")[0],
            "asPath": path,
            "query": {},
            "token": "identity-tab",
            "sid": "identity-sid",
        }
    )


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch):
    monkeypatch.setattr(
        crypto, "_password_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    )


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def inbox(monkeypatch) -> Iterator[_Inbox]:
    handler = _Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    reset_settings_cache()
    try:
        yield handler
    finally:
        controller.stop()


def _tab(state_cls, path: str, cookie: str = ""):
    root = rx.State(_reflex_internal_init=True)
    router = _router(cookie, path)
    stack = [root]
    while stack:
        current = stack.pop()
        current.router = router
        stack.extend(current.substates.values())
    return root._get_state_from_cache(state_cls)


def _run(state, name: str, *args):
    """Call a handler as Reflex would, running a generator handler (pending state) to the end."""
    result = getattr(type(state), name).fn(state, *args)
    if inspect.isgenerator(result):
        for _update in result:
            pass
        return None
    return result


# Fresh random per form render whatever was typed, so it tells nothing about the address.
_PER_RENDER = {"form_token"}


def _visible(state, address: str) -> dict:
    """What the browser holds of a state, with the typed address replaced by a placeholder."""
    return {
        name.removesuffix("_rx_state_"): str(value).replace(address, "<address>")
        for name, value in state.dict()[state.get_full_name()].items()
        if name.removesuffix("_rx_state_") not in _PER_RENDER
    }


def _owner(engine) -> User:
    with Session(engine, expire_on_commit=False) as session:
        owner = auth_service.user_register(
            session=session,
            email="olivia@example.com",
            password=PASSWORD,
            name="Olivia",
            base_url="http://localhost:3000",
        )
    return owner


# --- register -----------------------------------------------------------------------------------


def test_register_answers_the_same_for_a_taken_and_a_free_address(engine, inbox):
    owner = _owner(engine)
    before_hash = owner.password_hash
    seen = {}
    for address in ("olivia@example.com", "newcomer@example.com"):
        page = _tab(RegisterState, routes.REGISTER)
        _run(page, "load")
        _run(
            page,
            "submit",
            {
                "name": "Someone",
                "email": address,
                "password": "lantern-copper-meadow-88",
                "password_confirm": "lantern-copper-meadow-88",
            },
        )
        seen[address] = _visible(page, address)
    assert seen["olivia@example.com"] == seen["newcomer@example.com"]
    assert seen["olivia@example.com"]["error"] == ""
    assert seen["olivia@example.com"]["registered_email"] == "<address>"

    # The owner of the taken address is told; their account is as it was.
    [attempt] = inbox.to("olivia@example.com")[1:]  # after their own verification mail
    assert attempt["Subject"] == auth_service.REGISTRATION_ATTEMPT_SUBJECT
    body = attempt.get_content()
    assert "no new account was created" in body and "/forgot-password" in body
    with Session(engine) as session:
        stored = session.exec(select(User).where(User.email == "olivia@example.com")).one()
        assert stored.password_hash == before_hash and stored.name == "Olivia"
        assert len(session.exec(select(User)).all()) == 2  # the owner, and the newcomer
    # The free address got its verification link.
    [welcome] = inbox.to("newcomer@example.com")
    assert "/verify-email?token=" in welcome.get_content()


def test_register_refuses_the_same_way_whatever_the_address(engine):
    _owner(engine)
    answers = []
    for address in ("olivia@example.com", "newcomer@example.com"):
        page = _tab(RegisterState, routes.REGISTER)
        _run(page, "load")
        _run(
            page,
            "submit",
            {"name": "X", "email": address, "password": "short", "password_confirm": "short"},
        )
        answers.append(_visible(page, address))
    assert answers[0] == answers[1] and answers[0]["error_field"] == "password"


# --- sign-in and lockout ------------------------------------------------------------------------


def _sign_in_answers(address: str, attempts: int) -> list[tuple[str, str]]:
    answers = []
    for _ in range(attempts):
        page = _tab(SignInState, routes.SIGN_IN, BINDING)
        _run(page, "reset_form")
        _run(page, "submit_password", {"email": address, "password": "not-the-password-1"})
        answers.append((page.error_code, page.error))
    return answers


def test_an_unknown_address_answers_and_locks_exactly_like_an_account(engine):
    _owner(engine)
    known = _sign_in_answers("olivia@example.com", MAX_FAILED_SIGN_INS + 1)
    unknown = _sign_in_answers("nobody@example.com", MAX_FAILED_SIGN_INS + 1)
    assert known == unknown
    codes = [code for code, _ in unknown]
    assert codes == ["invalid_credentials"] * (MAX_FAILED_SIGN_INS - 1) + ["account_locked"] * 2
    assert "Try again in 15 minutes" in unknown[-1][1]
    with Session(engine) as session:  # the address itself is not stored, only a keyed hash
        throttle = session.exec(select(SignInThrottle)).one()
        assert "nobody" not in throttle.email_hash
        assert throttle.failed_sign_in_count == MAX_FAILED_SIGN_INS


def test_failures_for_look_alike_addresses_never_lock_the_real_account(engine):
    _owner(engine)
    for look_alike in ("olivia@example.co", "olivia+x@example.com", "olivia@example.com.evil"):
        _sign_in_answers(look_alike, MAX_FAILED_SIGN_INS + 1)
    page = _tab(SignInState, routes.SIGN_IN, BINDING)
    _run(page, "reset_form")
    step = _run(page, "submit_password", {"email": "olivia@example.com", "password": PASSWORD})
    assert page.error == "" and "/auth/session?code=" in str(step)


def _unknown_failures_at_once(engine, count: int, *, commit: bool) -> list[str]:
    barrier = threading.Barrier(count)

    def attempt(_index: int) -> str:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait(timeout=30)
            try:
                auth_service.sign_in_password(
                    session=session, email="ghost@example.com", password="guess-number-one"
                )
            except DomainError as error:
                session.commit() if commit else session.rollback()
                return error.code
        return "signed_in"

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(attempt, range(count)))


@requires_postgres
@pytest.mark.parametrize("commit", [False, True], ids=["caller-rolls-back", "caller-commits"])
def test_concurrent_failures_for_an_unknown_address_each_count_once(pg_engine, commit):
    """Like an account's (tests/db/test_lockout_pg.py): 4 at once count 4, the 5th locks."""
    assert _unknown_failures_at_once(pg_engine, 4, commit=commit) == ["invalid_credentials"] * 4
    with Session(pg_engine) as session:
        throttle = session.exec(select(SignInThrottle)).one()
        assert throttle.failed_sign_in_count == 4 and throttle.locked_until is None
    assert _unknown_failures_at_once(pg_engine, 1, commit=commit) == ["account_locked"]
    with Session(pg_engine) as session:
        throttle = session.exec(select(SignInThrottle)).one()
        assert throttle.failed_sign_in_count == MAX_FAILED_SIGN_INS
        assert as_utc(throttle.locked_until) > utcnow()


# --- password reset -----------------------------------------------------------------------------


def test_a_reset_request_is_answered_before_anything_is_looked_up(engine, inbox):
    _owner(engine)
    with Session(engine) as session:
        mails_before = len(session.exec(select(OutboxMail)).all())
    # Hold the background worker, to see what the request itself did.
    release = threading.Event()
    auth_service._background_executor().submit(release.wait, 30)
    try:
        answers = {}
        for address in ("olivia@example.com", "nobody@example.com"):
            page = _tab(PasswordResetState, routes.FORGOT_PASSWORD)
            _run(page, "load")
            _run(page, "request_link", {"email": address})
            answers[address] = _visible(page, address)
        assert answers["olivia@example.com"] == answers["nobody@example.com"]
        assert "a reset link is on its way" in answers["nobody@example.com"]["notice"]
        with Session(engine) as session:  # the requests looked nothing up, sent nothing
            assert (
                session.exec(select(EmailToken).where(EmailToken.purpose == "reset_password")).all()
                == []
            )
            assert len(session.exec(select(OutboxMail)).all()) == mails_before
    finally:
        release.set()
    auth_service.background_work_wait()
    [reset_mail] = [m for m in inbox.to("olivia@example.com") if "Reset" in m["Subject"]]
    assert "/reset-password?token=" in reset_mail.get_content()
    assert inbox.to("nobody@example.com") == []


def test_a_failing_background_reset_is_logged_not_lost_silently(engine, monkeypatch, caplog):
    def broken(**_):
        raise RuntimeError("database went away")

    monkeypatch.setattr(auth_service, "password_reset_request", broken)
    auth_service.password_reset_request_later(email="olivia@example.com", base_url="http://x")
    auth_service.background_work_wait()
    assert "A password reset request could not be processed" in caplog.text
