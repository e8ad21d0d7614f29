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
    """The SMTP server refused or could not be reached.

    ``permanent``: the server refused this recipient for good (a 5xx answer to RCPT, or an
    internationalized address the server cannot take): retrying the same address is pointless.
    ``unreachable``: no SMTP conversation happened at all (connection refused, timeout, TLS), so
    the failure says nothing about the recipient and every other send would fail the same way."""

    def __init__(self, message: str, *, permanent: bool = False, unreachable: bool = False) -> None:
        super().__init__(message)
        self.permanent, self.unreachable = permanent, unreachable


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
    where = f"{s['smtp_host']}:{s['smtp_port']}"
    try:
        smtp = _connect(s)
    except (OSError, smtplib.SMTPException, ValueError) as e:
        raise MailError(f"cannot send mail: the SMTP server {where} cannot be reached: {e}", unreachable=True) from e
    try:
        with smtp:
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as e:
        codes = [code for code, _ in e.recipients.values()]
        raise MailError(f"cannot send mail: the SMTP server refused the recipient: {_refusals(e.recipients)}",
                        permanent=bool(codes) and all(c >= 500 for c in codes)) from e
    except smtplib.SMTPNotSupportedError as e:  # e.g. a non-ASCII address and no SMTPUTF8
        raise MailError(f"cannot send mail: the SMTP server cannot take this address: {e}", permanent=True) from e
    except (OSError, smtplib.SMTPException, ValueError) as e:
        raise MailError(f"cannot send mail through {where}: {e}") from e


def _connect(s: dict[str, Any]) -> smtplib.SMTP:
    """A connected, encrypted and logged-in SMTP session (any failure here is the server's or the
    settings', never a recipient's)."""
    if s["smtp_tls"] == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(s["smtp_host"], s["smtp_port"], timeout=30,
                                             context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(s["smtp_host"], s["smtp_port"], timeout=30)
    try:
        if s["smtp_tls"] == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if s["smtp_user"]:
            smtp.login(s["smtp_user"], s["smtp_password"])
    except BaseException:
        smtp.close()
        raise
    return smtp


def _refusals(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{code} {msg.decode('utf-8', 'replace') if isinstance(msg, bytes) else msg}"
                     for code, msg in recipients.values())
