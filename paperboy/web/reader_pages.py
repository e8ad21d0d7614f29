"""A reader's own pages: library (folders, import, search inside), recommendations with their
explanations and feedback buttons, and the interests page (rename, mute, delete, reset, statement,
rules, digest schedule, feed link). Only the signed-in reader's rows are ever read or changed."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, Path as Path_, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import BadRequest, NotFound, RateLimited
from ..services import library
from ..services.library import FEEDBACK_KINDS
from .auth import sha256
from .background import off_loop
from .pages import MAX_ID, PaperId, _back, _engine, _signed_in, render

router = APIRouter(include_in_schema=False)
MAX_IMPORT = 20 * 2**20


def _reader(request: Request) -> dict[str, Any] | None:
    """The signed-in reader of a page (None: send them to log in)."""
    request.state.user = request.app.state.auth.user(request)
    return request.state.user


def _terms(text: str) -> list[str]:
    return [t.strip() for t in text.replace("\n", ",").split(",") if t.strip()][:50]


@router.get("/library", response_class=HTMLResponse)
async def library_page(request: Request, q: str = "", folder: str = "") -> Response:
    user = _reader(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    engine = _engine(request)
    saves = engine.store.saves(user["id"])
    folders = sorted({s["folder"] for s in saves})
    if q.strip():
        hits = library.search_library(engine, user["id"], q)
    else:
        ids = list(dict.fromkeys(s["paper_id"] for s in saves if not folder or s["folder"] == folder))
        papers = engine.store.get_papers(ids)
        hits = [(papers[i], None) for i in ids if i in papers]
    by_paper: dict[int, list[str]] = {}
    for s in saves:
        by_paper.setdefault(s["paper_id"], []).append(s["folder"])
    return render(request, "library.html", {"hits": hits, "folders": folders, "folder": folder, "q": q,
                                            "by_paper": by_paper})


@router.get("/library/export")
async def library_export(request: Request, format: str = "bibtex", folder: str = Query("", max_length=80)) -> Response:  # noqa: A002
    """The signed-in reader's library (or one folder) as a BibTeX, CSL-JSON or RIS download."""
    from .export_api import library_download

    user = _reader(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return await library_download(request, user, format, folder)


@router.post("/library/save")
async def save(request: Request, paper_id: int = PaperId, folder: str = Form("saved"), remove: int = Form(0, ge=0, le=1),
               csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    store = _engine(request).store
    if not store.get_papers([paper_id]):
        raise NotFound("no such paper")
    folder = folder.strip()[:80] or "saved"
    (store.unsave if remove else store.save)(user["id"], paper_id, folder)
    return RedirectResponse(_back(request, "/library"), status_code=303)


@router.post("/library/import")
async def import_file(request: Request, file: UploadFile = File(...), folder: str = Form("imported"),
                      csrf: str = Form("")) -> Response:
    """Save the upload and queue its import: parsing, storing and embedding a library can take
    minutes, so a background job does it (``services/jobs.py``) while the page says how it goes."""
    user = _signed_in(request, csrf)
    data = await file.read(MAX_IMPORT + 1)
    if len(data) > MAX_IMPORT:
        raise BadRequest("a library file may be at most 20 MB")
    if not data.strip():
        raise BadRequest("the file is empty")
    if data[:2] == b"\x1f\x8b" or data[:4] == b"PK\x03\x04":
        raise BadRequest("upload the export itself (.bib or .json), not a compressed archive")
    engine = _engine(request)
    if engine.store.live_jobs_of("library_import", user["id"]):
        raise RateLimited("your previous import is still running: wait for it to finish")
    name = Path(file.filename or "library.bib").name[:100] or "library.bib"
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in (".bib", ".bibtex", ".json") else ".bib"
    key = secrets.token_urlsafe(12)
    uploads = Path(engine.settings["home"]) / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / f"{key}{suffix}"
    path.write_bytes(data)
    job_id, _ = engine.store.enqueue_job("library_import", key, {
        "user_id": user["id"], "path": str(path), "name": name, "folder": folder.strip()[:80] or "imported"})
    if request.app.state.jobs is not None:
        request.app.state.jobs.wake.set()
    return RedirectResponse(f"/library/import/{job_id}", status_code=303)


@router.get("/library/import/{job_id}", response_class=HTMLResponse)
async def import_status(request: Request, job_id: int = Path_(ge=1, le=MAX_ID)) -> Response:
    """How one's own import is doing; the result once done (the page reloads itself until then)."""
    user = _reader(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    job = _engine(request).store.job(job_id)
    if job is None or job["kind"] != "library_import" or job["payload"].get("user_id") != user["id"]:
        raise NotFound("no such import of yours")
    return render(request, "imported.html", {"job": job, "result": job["result"], "folder": job["payload"]["folder"],
                                             "name": job["payload"]["name"]})


@router.post("/feedback")
async def feedback(request: Request, paper_id: int = PaperId, kind: str = Form(...), csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    if kind not in (*FEEDBACK_KINDS, "clear"):
        raise BadRequest(f"unknown feedback {kind[:40]!r}")
    store = _engine(request).store
    if not store.get_papers([paper_id]):
        raise NotFound("no such paper")
    store.set_feedback(user["id"], paper_id, None if kind == "clear" else kind)
    return RedirectResponse(_back(request, "/recommendations"), status_code=303)


@router.get("/recommendations", response_class=HTMLResponse)
async def recommendations(request: Request) -> Response:
    user = _reader(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    recs, interests = await off_loop(request, library.recommend, _engine(request), user["id"], 20)
    return render(request, "recommendations.html", {"recs": recs, "interests": interests})


@router.get("/interests", response_class=HTMLResponse)
async def interests_page(request: Request) -> Response:
    user = _reader(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return await _interests(request, user["id"], feed_token=None)


def _reader_interests(engine: Any, user_id: int) -> tuple[list[Any], dict[str, Any]]:
    reader, profile = library.reader_for(engine, user_id)
    rec = engine.recommender()
    return (rec.interests(reader) if rec else []), profile


async def _interests(request: Request, user_id: int, feed_token: str | None) -> Response:
    engine = _engine(request)
    interests, profile = await off_loop(request, _reader_interests, engine, user_id)
    titles = engine.store.get_papers([i for it in interests for i in it.members[:5]])
    deleted = [(k, p) for k, p in engine.store.interest_prefs(user_id).items() if p["deleted"]]
    return render(request, "interests.html", {"interests": interests, "titles": titles, "profile": profile,
                                              "deleted": deleted, "feed_token": feed_token})


@router.post("/interests/edit")
async def edit_interest(request: Request, key: str = Form(...), action: str = Form(...), name: str = Form(""),
                        csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    engine = _engine(request)
    store = engine.store
    if action == "rename":
        store.set_interest_pref(user["id"], key, name=name.strip()[:80] or None)
    elif action in ("mute", "unmute"):
        store.set_interest_pref(user["id"], key, muted=action == "mute")
    elif action == "delete":
        reader, _ = library.reader_for(engine, user["id"])
        rec = engine.recommender()
        members = next((i.members for i in (rec.interests(reader) if rec else []) if i.key == key), [])
        store.set_interest_pref(user["id"], key, deleted=True, members=members)
    elif action == "restore":
        store.set_interest_pref(user["id"], key, deleted=False, members=[])
    else:
        raise BadRequest(f"unknown action {action[:40]!r}")
    return RedirectResponse("/interests", status_code=303)


@router.post("/interests/reset")
async def reset(request: Request, csrf: str = Form("")) -> Response:
    user = _signed_in(request, csrf)
    _engine(request).store.reset_recommendations(user["id"])
    return RedirectResponse("/interests", status_code=303)


@router.post("/interests/profile")
async def profile(request: Request, statement: str = Form(""), include_terms: str = Form(""),
                  exclude_terms: str = Form(""), categories: str = Form(""), digest: str = Form("off"),
                  digest_hour: int = Form(7), timezone: str = Form("UTC"), quiet_days: str = Form("skip"),
                  email: str = Form(""), csrf: str = Form("")) -> Response:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    user = _signed_in(request, csrf)
    if digest not in ("off", "daily", "weekly") or quiet_days not in ("skip", "note") or not 0 <= digest_hour <= 23:
        raise BadRequest("digest is off, daily or weekly, at an hour 0-23; quiet days skip or note")
    try:
        ZoneInfo(timezone.strip() or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise BadRequest(f"unknown time zone {timezone[:60]!r}") from e
    store = _engine(request).store
    store.update_profile(user["id"], statement=statement.strip()[:2000], include_terms=_terms(include_terms),
                         exclude_terms=_terms(exclude_terms), categories=_terms(categories), digest=digest,
                         digest_hour=digest_hour, timezone=timezone.strip() or "UTC", quiet_days=quiet_days)
    if email.strip():  # validated; a new address is unverified until its mailed link is followed
        from .account import change_email

        await change_email(request, user, email)
    return RedirectResponse("/interests", status_code=303)


@router.post("/interests/feed")
async def new_feed_token(request: Request, csrf: str = Form("")) -> Response:
    """A new secret feed link (the old one stops working)."""
    user = _signed_in(request, csrf)
    token = secrets.token_urlsafe(24)
    _engine(request).store.update_profile(user["id"], feed_token_hash=sha256(token))
    return await _interests(request, user["id"], feed_token=token)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_page(request: Request, token: str) -> Response:
    """The link in every digest: a confirmation page (a GET never changes anything)."""
    _, state = _unsubscribe_token(request, token)
    if state == "expired":
        return render(request, "unsubscribe.html", {"token": token, "expired": True}, status=410)
    return render(request, "unsubscribe.html", {"token": token, "done": False})


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str) -> Response:
    """One-click unsubscribe (RFC 8058): the signed token is the authorization, no CSRF token or
    login needed, as mail clients POST ``List-Unsubscribe=One-Click`` directly. A link works only
    for the subscription it was mailed for: after re-subscribing, an old one has expired (410)."""
    user_id, state = _unsubscribe_token(request, token)
    if state == "expired":
        return render(request, "unsubscribe.html", {"token": token, "expired": True}, status=410)
    _engine(request).store.update_profile(user_id, digest="off")
    return render(request, "unsubscribe.html", {"token": token, "done": True})


def _unsubscribe_token(request: Request, token: str) -> tuple[int, str]:
    from ..services.digest import check_unsubscribe_token

    user_id, state = check_unsubscribe_token(request.app.state.auth.key, token, _engine(request).store)
    if user_id is None:
        raise NotFound("this unsubscribe link is not valid")
    return user_id, state
