"""Mail goes to a real SMTP server (aiosmtpd on loopback) when configured, else to the outbox."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import select

from core.settings import reset_settings_cache
from models import OutboxMail
from services.mail import mail_send, outbox_list
from tests.factories import free_port


class CollectingHandler:
    def __init__(self) -> None:
        self.messages: list = []
        self.tls_used: list[bool] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        self.tls_used.append(session.ssl is not None)
        return "250 Message accepted for delivery"


def _configure_smtp(monkeypatch, port: int, **extra: str) -> None:
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()


@pytest.fixture
def smtp_server(monkeypatch) -> Iterator[CollectingHandler]:
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    _configure_smtp(monkeypatch, port, SMTP_STARTTLS="true")
    try:
        yield handler
    finally:
        controller.stop()


def _self_signed_certificate(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_mail_is_delivered_through_smtp_and_recorded(session, smtp_server):
    mail = mail_send(
        session=session, to="ana@example.com", subject="Hello Ana", body_text="Line one\nLine two"
    )
    session.commit()
    assert mail.id is not None and mail.delivery == "smtp" and mail.error is None
    [received] = smtp_server.messages
    assert received["To"] == "ana@example.com"
    assert received["Subject"] == "Hello Ana"
    assert "Creative Studio" in received["From"]
    assert received.get_content().replace("\r\n", "\n").strip() == "Line one\nLine two"
    assert smtp_server.tls_used == [False]  # the plain test server offers no STARTTLS


def test_starttls_and_login_are_used_when_the_server_offers_them(session, monkeypatch, tmp_path):
    cert_file, key_file = _self_signed_certificate(tmp_path)
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(cert_file, key_file)
    logins: list[tuple[str, str]] = []

    def authenticator(server, smtp_session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login.decode(), auth_data.password.decode()))
        accepted = auth_data.password == b"s3cret-pass"
        return AuthResult(success=accepted, handled=False)

    handler = CollectingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls_context,
        require_starttls=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", cert_file)  # trust the test certificate
        _configure_smtp(
            monkeypatch,
            port,
            SMTP_STARTTLS="true",
            SMTP_USERNAME="mailer",
            SMTP_PASSWORD="s3cret-pass",
        )
        mail = mail_send(session=session, to="bo@example.com", subject="Secure", body_text="hi")
    finally:
        controller.stop()
    assert mail.delivery == "smtp", mail.error
    assert handler.tls_used == [True]
    assert logins == [("mailer", "s3cret-pass")]


def test_a_refused_connection_marks_the_mail_failed_and_keeps_it(session, monkeypatch, caplog):
    _configure_smtp(monkeypatch, free_port())  # nothing listens there
    with caplog.at_level("ERROR", logger="services.mail"):
        mail = mail_send(session=session, to="cy@example.com", subject="Lost?", body_text="x")
    session.commit()
    assert mail.delivery == "failed"
    assert mail.error and "ConnectionRefusedError" in mail.error
    stored = session.exec(select(OutboxMail).where(OutboxMail.id == mail.id)).one()
    assert stored.delivery == "failed" and stored.body_text == "x"
    assert "could not be sent" in caplog.text


def test_a_wrong_smtp_password_marks_the_mail_failed(session, monkeypatch):
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        auth_require_tls=False,
        authenticator=lambda *args: AuthResult(success=False, handled=False),
    )
    controller.start()
    try:
        _configure_smtp(monkeypatch, port, SMTP_USERNAME="mailer", SMTP_PASSWORD="wrong")
        mail = mail_send(session=session, to="di@example.com", subject="Nope", body_text="x")
    finally:
        controller.stop()
    assert mail.delivery == "failed"
    assert "SMTPAuthenticationError" in mail.error
    assert handler.messages == []


def test_without_smtp_mail_goes_to_the_outbox_and_the_log(session, caplog):
    with caplog.at_level("INFO", logger="services.mail"):
        mail = mail_send(session=session, to="ed@example.com", subject="Dev mail", body_text="Body")
    session.commit()
    assert mail.delivery == "outbox" and mail.error is None
    assert "ed@example.com" in caplog.text and "Body" in caplog.text


def test_outbox_list_is_newest_first_and_limited(session):
    for index in range(3):
        mail_send(session=session, to=f"u{index}@example.com", subject=f"#{index}", body_text="")
    session.commit()
    assert [m.subject for m in outbox_list(session=session)] == ["#2", "#1", "#0"]
    assert [m.subject for m in outbox_list(session=session, limit=2)] == ["#2", "#1"]
