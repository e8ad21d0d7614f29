"""Account pages: sign up, log in, log out, API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import NotFound
from .auth import SESSION_COOKIE
from .pages import _engine, _signed_in, render

router = APIRouter(include_in_schema=False)


@router.get("/signup", response_class=HTMLResponse)
async def signup_form(request: Request) -> Response:
    return render(request, "account.html", {"action": "signup"})


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    return render(request, "account.html", {"action": "login"})


def _start_session(request: Request, user_id: int) -> Response:
    auth = request.app.state.auth
    auth.end_session(request.cookies.get(SESSION_COOKIE))  # no session fixation
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, auth.new_session(user_id), httponly=True, samesite="lax",
                        secure=auth.settings["cookie_secure"], max_age=int(auth.settings["session_days"] * 86400))
    return response


@router.post("/signup")
async def signup(request: Request, name: str = Form(""), password: str = Form(""), email: str = Form(""),
                 csrf: str = Form("")) -> Response:
    auth = request.app.state.auth
    auth.check_csrf(request, csrf)
    return _start_session(request, auth.sign_up(name, password, email))


@router.post("/login")
async def login(request: Request, name: str = Form(""), password: str = Form(""), csrf: str = Form("")) -> Response:
    auth = request.app.state.auth
    auth.check_csrf(request, csrf)
    user = auth.log_in(name, password, request.client.host if request.client else "?")
    return _start_session(request, user["id"])


@router.post("/logout")
async def logout(request: Request, csrf: str = Form("")) -> Response:
    auth = request.app.state.auth
    auth.check_csrf(request, csrf)
    auth.end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/settings/tokens", response_class=HTMLResponse)
async def tokens(request: Request) -> Response:
    user = request.state.user = request.app.state.auth.user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "tokens.html", {"tokens": _engine(request).store.api_tokens(user["id"]), "new": None})


@router.post("/settings/tokens", response_class=HTMLResponse)
async def create_token(request: Request, name: str = Form(""), csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    token = request.app.state.auth.new_api_token(user["id"], name)
    return render(request, "tokens.html", {"tokens": _engine(request).store.api_tokens(user["id"]), "new": token})


@router.post("/settings/tokens/revoke")
async def revoke_token(request: Request, token_id: int = Form(...), csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    if not _engine(request).store.revoke_api_token(user["id"], token_id):
        raise NotFound("no such token of yours")
    return RedirectResponse("/settings/tokens", status_code=303)

