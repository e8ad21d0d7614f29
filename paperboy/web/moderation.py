"""Moderation: moderators (and admins) hide and unhide comments and submissions and suspend
members, from paper pages and from /moderation (recent comments, submissions, users and the audit
log). Every action goes through ``services.accounts`` and is written to the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import BadRequest, Forbidden, NotFound
from ..services.accounts import require_moderator
from .pages import _back, _engine, _signed_in, render

router = APIRouter(include_in_schema=False)
MAX_ID = 2**63 - 1


def _moderator(request: Request, csrf: str) -> dict[str, Any]:
    return require_moderator(_signed_in(request, csrf))


@router.get("/moderation", response_class=HTMLResponse)
async def moderation_page(request: Request) -> Response:
    user = request.state.user = request.app.state.auth.user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    require_moderator(user)
    store = _engine(request).store
    return render(request, "moderation.html", {
        "comments": store.recent_comments(100), "submissions": store.recent_submissions(100),
        "users": store.list_users(200), "audit": store.audit_log(100)})


@router.post("/moderation/comment")
async def moderate_comment(request: Request, comment_id: int = Form(..., ge=1, le=MAX_ID), action: str = Form(...),
                           reason: str = Form(""), csrf: str = Form("")) -> Response:
    actor = _moderator(request, csrf)
    accounts = request.app.state.auth.accounts
    if action in ("hide", "unhide"):
        accounts.hide_comment(comment_id, actor, undo=action == "unhide", reason=reason.strip()[:300])
    elif action == "suspend-author":
        comment = _engine(request).store.comment(comment_id)
        if comment is None:
            raise NotFound("no such comment")
        # Suspend first: when that is refused (an admin's comment), nothing has been hidden either.
        accounts.suspend(comment["user_id"], actor, reason=f"comment {comment_id}")
        accounts.hide_comment(comment_id, actor, reason=reason.strip()[:300] or "author suspended")
    else:
        raise BadRequest("action is hide, unhide or suspend-author")
    return RedirectResponse(_back(request, "/moderation"), status_code=303)


@router.post("/moderation/submission")
async def moderate_submission(request: Request, paper_id: int = Form(..., ge=1, le=MAX_ID), action: str = Form(...),
                              reason: str = Form(""), csrf: str = Form("")) -> Response:
    actor = _moderator(request, csrf)
    if action not in ("hide", "unhide"):
        raise BadRequest("action is hide or unhide")
    request.app.state.auth.accounts.hide_submission(paper_id, actor, undo=action == "unhide",
                                                    reason=reason.strip()[:300])
    return RedirectResponse(_back(request, "/moderation"), status_code=303)


@router.post("/moderation/user")
async def moderate_user(request: Request, user_id: int = Form(..., ge=1, le=MAX_ID), action: str = Form(...),
                        reason: str = Form(""), csrf: str = Form("")) -> Response:
    actor = _moderator(request, csrf)
    if action not in ("suspend", "unsuspend"):
        raise BadRequest("action is suspend or unsuspend")
    if user_id == actor["id"]:
        raise Forbidden("you cannot suspend yourself")
    request.app.state.auth.accounts.suspend(user_id, actor, undo=action == "unsuspend", reason=reason.strip()[:300])
    return RedirectResponse(_back(request, "/moderation"), status_code=303)
