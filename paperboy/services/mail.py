"""Outgoing mail: address validation and one SMTP send, shared by digests and account emails
(verification, password reset). ``smtplib`` with the ``smtp_*`` settings; never called on the
event loop (callers run it in a worker thread or a job)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from email_validator import EmailNotValidError, validate_email as _validate

from ..errors import BadRequest, PaperboyError

MAX_EMAIL = 254  # RFC 5321 path limit


class MailError(PaperboyError):
    """The SMTP server refused or could not be reached."""


def validate_email(address: str) -> str:
    """The normalized address, or BadRequest: syntax only (no DNS look-up, which would need the
    network and leak sign-ups to resolvers). CR/LF and other control characters are refused, so an
    address can never inject a mail header."""
    address = (address or "").strip()
    if not address or len(address) > MAX_EMAIL:
        raise BadRequest(f"an email address is 3 to {MAX_EMAIL} characters")
    try:
        return _validate(address, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise BadRequest(f"not a valid email address: {e}") from e


def send_mail(settings: dict[str, Any], msg: EmailMessage) -> None:
    """Send one message through the configured SMTP server; MailError on any failure."""
    s = settings
    try:
        if s["smtp_tls"] == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s["smtp_host"], s["smtp_port"], timeout=30,
                                                 context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(s["smtp_host"], s["smtp_port"], timeout=30)
        with smtp:
            if s["smtp_tls"] == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if s["smtp_user"]:
                smtp.login(s["smtp_user"], s["smtp_password"])
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException, ValueError) as e:
        raise MailError(f"cannot send mail through {s['smtp_host']}:{s['smtp_port']}: {e}") from e
