"""Account pages: sign up, log in, log out (here or everywhere), email verification, password reset
and change, account deletion, API tokens.

Mail links open a confirmation page; the change itself is a POST (no state change over GET, so a
mail scanner that prefetches links changes nothing). Mail goes out in a worker thread after the
answer, so neither SMTP nor a missing account shows in the response time.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import BadRequest, NotFound, PaperboyError
from ..services import accounts as acc
from ..services.mail import send_mail, validate_email
from .auth import SESSION_COOKIE
from .limits import client_address, hit
from .pages import _engine, _signed_in, render

router = APIRouter(include_in_schema=False)
log = logging.getLogger("paperboy.web")


def site_url(request: Request) -> str:
    return (request.app.state.engine.settings["base_url"] or str(request.base_url)).rstrip("/")


def send_later(request: Request, msg: EmailMessage) -> None:
    """Send in the app's mail thread, after this answer; a failure is logged (the person can ask again).

    Submitted to a plain executor rather than as a task on the event loop: a task that has not
    started yet when its loop ends (a test client's per-request loop, a server shutting down) never
    runs, and the mail was lost. The executor starts it at once and the app's shutdown waits for it."""
    settings = request.app.state.engine.settings

    def send() -> None:
        try:
            send_mail(settings, msg)
        except PaperboyError as e:
            log.warning("account mail to %s failed: %s", msg["To"], e)

    request.app.state.mailer.submit(send)


def send_verification(request: Request, user_id: int) -> None:
    accounts = request.app.state.auth.accounts
    user = accounts.store.account(user_id)
    if not user or not user["email"]:
        return
    link = f"{site_url(request)}/verify/{accounts.verify_link(user)}"
    hours = accounts.settings["verify_link_hours"]
    send_later(request, accounts.mail(user["email"], "Confirm your email address for paperboy",
                                      f"Hello {user['name']},\n\nplease confirm this address by opening\n\n{link}\n\n"
                                      f"The link works for {hours:g} hours. Digests go only to confirmed "
                                      "addresses. If you did not sign up, ignore this mail.\n"))


async def change_email(request: Request, user: dict[str, Any], email: str) -> None:
    """Validate and set a reader's address (profile and account pages); a new one is mailed a link."""
    address = validate_email(email) if (email or "").strip() else None
    changed = bool(address) and address.lower() != (user.get("email") or "").lower()  # type: ignore[union-attr]
    if changed:
        hit(request, ("mail",), user["id"], address=False)
    request.app.state.auth.accounts.change_email(user["id"], address)
    if changed:
        send_verification(request, user["id"])


def message(request: Request, title: str, text: str, status: int = 200) -> Response:
    return render(request, "account_message.html", {"title": title, "text": text}, status)


# -- sign up, log in, log out -------------------------------------------------------------------

@router.get("/signup", response_class=HTMLResponse)
async def signup_form(request: Request) -> Response:
    return render(request, "account.html", {"action": "signup"})


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    return render(request, "account.html", {"action": "login"})


def _start_session(request: Request, user_id: int, to: str = "/") -> Response:
    auth = request.app.state.auth
    auth.end_session(request.cookies.get(SESSION_COOKIE))  # no session fixation
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(SESSION_COOKIE, auth.new_session(user_id), httponly=True, samesite="lax",
                        secure=auth.settings["cookie_secure"], max_age=int(auth.settings["session_days"] * 86400))
    return response


@router.post("/signup")
async def signup(request: Request, name: str = Form(""), password: str = Form(""), email: str = Form(""),
                 csrf: str = Form("")) -> Response:
    auth = request.app.state.auth
    auth.check_csrf(request, csrf)
    user_id = await auth.sign_up(name, password, email)
    if email.strip():
        send_verification(request, user_id)
    return _start_session(request, user_id)


@router.post("/login")
async def login(request: Request, name: str = Form(""), password: str = Form(""), csrf: str = Form("")) -> Response:
    auth = request.app.state.auth
    auth.check_csrf(request, csrf)
    user = await auth.log_in(name, password, client_address(request))
    return _start_session(request, user["id"])


def _logged_out(to: str = "/") -> Response:
    response = RedirectResponse(to, status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, csrf: str = Form("")) -> Response:
    auth = request.app.state.auth
    auth.check_csrf(request, csrf)
    auth.end_session(request.cookies.get(SESSION_COOKIE))
    return _logged_out()


@router.post("/logout/everywhere")
async def logout_everywhere(request: Request, csrf: str = Form("")) -> Response:
    """End every session of this account, on every device, this one too."""
    user = _signed_in(request, csrf)
    _engine(request).store.delete_sessions(user["id"])
    return _logged_out("/login")


# -- the account page: email, password, deletion -----------------------------------------------

@router.get("/settings/account", response_class=HTMLResponse)
async def account_page(request: Request) -> Response:
    user = request.state.user = request.app.state.auth.user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "account_settings.html", {"notice": request.query_params.get("done", "")[:40]})


@router.get("/settings/account/export")
async def account_export(request: Request) -> Response:
    """Download my data: the whole account as one JSON file (``paperboy account import`` reads it)."""
    from .export_api import account_download

    user = request.state.user = request.app.state.auth.user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return await account_download(request, user)


@router.post("/settings/account/email")
async def account_email(request: Request, email: str = Form(""), csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    await change_email(request, user, email)
    return RedirectResponse("/settings/account?done=email", status_code=303)


@router.post("/settings/account/verify")
async def resend_verification(request: Request, csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    if not user["email"]:
        raise BadRequest("add an email address first")
    hit(request, ("mail",), user["id"], address=False)
    send_verification(request, user["id"])
    return RedirectResponse("/settings/account?done=sent", status_code=303)


@router.post("/settings/account/password")
async def change_password(request: Request, current: str = Form(""), password: str = Form(""),
                          csrf: str = Form("")) -> Response:
    """A new password (the current one first); every other session ends."""
    user = _signed_in(request, csrf)
    auth = request.app.state.auth
    account = await auth.check_password(user["id"], current)
    new_hash = await asyncio.to_thread(acc.new_password_hash, password, account["name"], account["email"],
                                       auth.accounts.min_score)
    auth.accounts.set_password(user["id"], new_hash, keep_session=auth.session_hash(request))
    return RedirectResponse("/settings/account?done=password", status_code=303)


@router.post("/settings/account/delete")
async def delete_account(request: Request, password: str = Form(""), csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    auth = request.app.state.auth
    await auth.check_password(user["id"], password)
    auth.accounts.delete(user["id"], actor_id=user["id"])
    request.state.user = None
    response = message(request, "Account deleted", "Your account and your data are gone: library, votes, "
                       "digests, tokens and profile. Your comments stay, shown as [deleted].")
    response.delete_cookie(SESSION_COOKIE)
    return response


# -- mail links ---------------------------------------------------------------------------------

@router.get("/verify/{token}", response_class=HTMLResponse)
async def verify_page(request: Request, token: str) -> Response:
    return render(request, "account_link.html", {"kind": "verify", "token": token[:200]})


@router.post("/verify/{token}")
async def verify(request: Request, token: str, csrf: str = Form("")) -> Response:
    request.app.state.auth.check_csrf(request, csrf)
    user = request.app.state.auth.accounts.confirm_email(token)
    return message(request, "Address confirmed", f"{user['email']} is confirmed: digests can go there now.")


@router.get("/reset", response_class=HTMLResponse)
async def reset_form(request: Request) -> Response:
    return render(request, "account_reset.html", {"sent": False})


@router.post("/reset", response_class=HTMLResponse)
async def reset_request(request: Request, email: str = Form(""), csrf: str = Form("")) -> Response:
    """Mail a reset link to every account with this address; the answer is the same either way."""
    auth = request.app.state.auth
    auth.check_csrf(request, csrf)
    try:
        address = validate_email(email)
    except BadRequest:
        address = None
    for user in auth.store.users_by_email(address) if address else []:
        try:
            hit(request, ("mail",), user["id"], address=False)
        except PaperboyError:  # this account had its share of mails: skip it quietly
            continue
        link = f"{site_url(request)}/reset/{auth.accounts.reset_link(user)}"
        minutes = auth.settings["reset_link_minutes"]
        send_later(request, auth.accounts.mail(user["email"], "Reset your paperboy password",
                   f"Hello {user['name']},\n\nsomeone (you, we hope) asked to reset your password. Choose a new "
                   f"one at\n\n{link}\n\nThe link works once, for {minutes:g} minutes. If it was not you, "
                   "ignore this mail: your password stays as it is.\n"))
    return render(request, "account_reset.html", {"sent": True})


@router.get("/reset/{token}", response_class=HTMLResponse)
async def reset_page(request: Request, token: str) -> Response:
    request.app.state.auth.accounts.reset_user(token)  # a dead link says so before the form
    return render(request, "account_link.html", {"kind": "reset", "token": token[:200]})


@router.post("/reset/{token}")
async def reset(request: Request, token: str, password: str = Form(""), csrf: str = Form("")) -> Response:
    auth = request.app.state.auth
    auth.check_csrf(request, csrf)
    user = auth.accounts.reset_user(token)
    new_hash = await asyncio.to_thread(acc.new_password_hash, password, user["name"], user["email"],
                                       auth.accounts.min_score)
    auth.accounts.reset_user(token)  # still unused: no other form with this link won while we hashed
    auth.accounts.set_password(user["id"], new_hash)  # every session ends: whoever had one is out
    if user["suspended_at"]:
        return message(request, "Password changed", "Your password is changed; the account is still suspended.")
    return _start_session(request, user["id"], "/settings/account?done=reset")


# -- API tokens ---------------------------------------------------------------------------------

@router.get("/settings/tokens", response_class=HTMLResponse)
async def tokens(request: Request) -> Response:
    user = request.state.user = request.app.state.auth.user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "tokens.html", {"tokens": _engine(request).store.api_tokens(user["id"]), "new": None})


@router.post("/settings/tokens", response_class=HTMLResponse)
async def create_token(request: Request, name: str = Form(""), scope: str = Form("write"), days: str = Form(""),
                       csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    try:
        expiry = float(days) if days.strip() else None
    except ValueError as e:
        raise BadRequest("a token expires after a number of days, or leave it empty for never") from e
    token = request.app.state.auth.new_api_token(user["id"], name, scope, expiry)
    return render(request, "tokens.html", {"tokens": _engine(request).store.api_tokens(user["id"]), "new": token})


@router.post("/settings/tokens/revoke")
async def revoke_token(request: Request, token_id: int = Form(..., ge=1, le=2**63 - 1), csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    if not _engine(request).store.revoke_api_token(user["id"], token_id):
        raise NotFound("no such token of yours")
    return RedirectResponse("/settings/tokens", status_code=303)
