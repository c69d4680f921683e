"""Outgoing mail: every message is recorded in the outbox; sent through SMTP when configured."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlmodel import Session, select

from core.settings import Settings, get_settings
from models import OutboxMail

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 15
_MAX_ERROR_LENGTH = 500


def _build_message(*, settings: Settings, to: str, subject: str, body_text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="creative-studio")
    message.set_content(body_text)
    return message


def _smtp_deliver(*, settings: Settings, message: EmailMessage) -> None:
    """Send one message; raises smtplib.SMTPException or OSError when it cannot."""
    context = ssl.create_default_context()
    if settings.smtp_port == 465:  # implicit TLS ("SMTPS")
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS, context=context
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        client.ehlo()
        if settings.smtp_port != 465 and settings.smtp_starttls and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password)
        client.send_message(message)


def mail_send(*, session: Session, to: str, subject: str, body_text: str) -> OutboxMail:
    """Record a mail in the outbox and, when SMTP is configured, deliver it.

    The row is added and flushed in the caller's transaction; the caller commits. A delivery
    failure never raises: the row keeps `delivery="failed"` and the error, and it is logged.

    Args:
        session: The caller's database session.
        to: Recipient address.
        subject: Subject line.
        body_text: Plain-text body.

    Returns:
        The OutboxMail row, `delivery` one of "outbox" (no SMTP configured), "smtp", "failed".
    """
    settings = get_settings()
    mail = OutboxMail(to_address=to, subject=subject, body_text=body_text, delivery="outbox")
    if settings.smtp_host:
        message = _build_message(settings=settings, to=to, subject=subject, body_text=body_text)
        try:
            _smtp_deliver(settings=settings, message=message)
        except (smtplib.SMTPException, OSError) as exc:
            mail.delivery = "failed"
            mail.error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_LENGTH]
            logger.error(
                "mail to %s (%r) could not be sent through %s:%s: %s",
                to,
                subject,
                settings.smtp_host,
                settings.smtp_port,
                mail.error,
            )
        else:
            mail.delivery = "smtp"
            # Delivered: keep the record, not the body (it may hold one-time links).
            mail.body_text = ""
            logger.info("mail to %s (%r) sent through %s", to, subject, settings.smtp_host)
    elif settings.is_production:
        # Bodies carry one-time links; in production they stay in the outbox table only.
        logger.warning("mail to %s (%r) kept in the outbox: SMTP_HOST is not set", to, subject)
    else:
        logger.info("mail (outbox, no SMTP configured) to %s: %s\n%s", to, subject, body_text)
    session.add(mail)
    session.flush()
    return mail


def outbox_list(*, session: Session, limit: int = 50) -> list[OutboxMail]:
    """The most recent mails, newest first (the development outbox page)."""
    query = (
        select(OutboxMail).order_by(OutboxMail.created_at.desc(), OutboxMail.id.desc()).limit(limit)
    )
    return list(session.exec(query))
