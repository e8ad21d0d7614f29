"""Email digests that never repeat a paper.

A reader with ``digest`` daily (or weekly: Mondays) and an email gets one digest per period at
``digest_hour`` in their time zone: the new papers listed since their last digest, ranked by the
recommender, plus the community's trending papers. Papers already sent are never sent again; a
saved paper's new arXiv version is told once, under "Updated in your library" (``digest_updates``),
and withdrawn papers are left out (issue 13).

Crash safety: a digest is first recorded as *pending* together with its papers in the ``sent``
ledger (one transaction), then mailed, then marked sent. A crash before mailing leaves it pending
and the next run mails exactly that digest (no gap, no paper picked twice); a crash after mailing
but before marking re-sends the same message with the same Message-ID, which mail clients
de-duplicate. Empty periods are skipped or get a short "quiet day" note (the reader's setting).

Failure isolation (issue 9): every reader is handled on its own. A stored address that fails
validation is skipped with its reason and never tried; a digest that cannot be built or mailed is
retried with exponential back-off (``digest_retry_minutes`` doubling, at most a day) and, after
``digest_max_attempts`` or at once when the server refuses the recipient for good (5xx), given up:
status ``failed``, its papers released from the ledger so the reader's next digest can carry them.
A reader whose digest waits for a retry gets no new one meanwhile, so failures never pile up. Only
an SMTP server that cannot be reached at all stops the run (every send would fail the same way);
what was not tried waits for the next run without being charged an attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..errors import BadRequest, ConfigError
from . import digest_updates, library
from .jobs import worker_name
from .mail import MailError, send_mail, validate_email
from .paper_meta import withdrawn

if TYPE_CHECKING:
    from ..store.base import Store
    from .listing import Listings

TEMPLATES = Path(__file__).resolve().parents[1] / "web" / "templates"
MAX_RETRY_WAIT = timedelta(days=1)
log = logging.getLogger("paperboy.digest")

# Characters that must not reach a mail body: C0/C1 controls and line breaks (a title is one
# line), surrogates and noncharacters (U+FFFE ...), none of which is valid XML or sane in HTML.
_LINE_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_NONCHARACTERS = "".join(chr(plane | 0xFFFE) + chr(plane | 0xFFFF) for plane in range(0, 0x110000, 0x10000))
_INVALID = re.compile(f"[\ud800-\udfff\ufdd0-\ufdef{_NONCHARACTERS}]")


def clean_text(value: Any) -> Any:
    """A string made safe for one line of a mail body, runs of spaces made one (other values
    unchanged)."""
    if not isinstance(value, str):
        return value
    return " ".join(_LINE_BREAKS.sub(" ", _INVALID.sub("", value)).split())


def one_line(text: str, limit: int = 300) -> str:
    """A reason fit for a report line: cleaned and cut."""
    text = clean_text(str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class DigestRun:
    """What one run did. ``failed``: every digest that could not be built or mailed this run, with
    its reason and what happens next; ``given_up``: those of them marked failed for good;
    ``invalid``: readers skipped because their stored address is not valid; ``waiting``: readers
    whose undelivered digest waits for its next attempt; ``deferred``: due digests not tried
    because the SMTP server could not be reached (``unreachable``); ``elsewhere``: digests another
    process (a second host's cron) was mailing or had just mailed."""

    sent: int = 0
    resumed: int = 0
    skipped_quiet: int = 0
    not_due: int = 0
    waiting: int = 0
    deferred: int = 0
    elsewhere: int = 0
    unreachable: bool = False
    failed: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    previews: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would be sent


# -- unsubscribe links: signed, and bound to one subscription (issue 9) ----------------------------

def _stamp(subscribed_at: str | None) -> str:
    return hashlib.sha256(subscribed_at.encode()).hexdigest()[:10] if subscribed_at else ""


def _mac(key: bytes, user_id: int, stamp: str) -> str:
    msg = f"unsubscribe:{user_id}" + (f":{stamp}" if stamp else "")
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()[:32]


def unsubscribe_token(key: bytes, user_id: int, subscribed_at: str | None = None) -> str:
    """``ID.STAMP.MAC`` for the subscription that began at ``subscribed_at`` (``ID.MAC`` for one
    that began before subscriptions were dated, as links were signed then)."""
    stamp = _stamp(subscribed_at)
    return f"{user_id}.{stamp}.{_mac(key, user_id, stamp)}" if stamp else f"{user_id}.{_mac(key, user_id, '')}"


_TOKEN = re.compile(r"([0-9]{1,18})(?:\.([0-9a-f]{10}))?\.([0-9a-f]{32})")


def check_unsubscribe_token(key: bytes, token: str, store: Store) -> tuple[int | None, str]:
    """(user id, ``ok``) for a link of the reader's current subscription; (user id, ``expired``)
    for a genuine link of an earlier one (they have re-subscribed since); (None, ``invalid``)."""
    m = _TOKEN.fullmatch(token)
    if not m:
        return None, "invalid"
    uid, stamp, mac = int(m.group(1)), m.group(2) or "", m.group(3)
    if not hmac.compare_digest(_mac(key, uid, stamp), mac):
        return None, "invalid"
    sub = store.subscription(uid)
    if sub is None:
        return None, "invalid"
    return uid, "ok" if hmac.compare_digest(_stamp(sub["subscribed_at"]), stamp) else "expired"


def period_of(reader: dict[str, Any], now: datetime) -> tuple[str, bool]:
    """The reader's current period key and whether its digest is due (local hour reached; weekly
    digests on Mondays)."""
    try:
        local = now.astimezone(ZoneInfo(reader["timezone"] or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        local = now.astimezone(timezone.utc)
    if reader["digest"] == "weekly":
        y, w, wd = local.isocalendar()
        return f"weekly:{y:04d}-W{w:02d}", wd == 1 and local.hour >= reader["digest_hour"]
    return f"daily:{local.date().isoformat()}", local.hour >= reader["digest_hour"]


class DigestDeps(library.RecommendDeps, Protocol):
    """What digests use: the settings, the listings (new and trending papers) and what the
    recommender uses (``library.RecommendDeps``); the ``Engine`` has all of it."""

    settings: dict[str, Any]

    @property
    def listings(self) -> Listings: ...


class Digests:
    """Builds and mails digests; ``run`` is what cron or the scheduler calls."""

    def __init__(self, deps: DigestDeps, key: bytes) -> None:
        self.deps, self.key, self.settings = deps, key, deps.settings
        # ``finalize`` cleans every value a template prints: a stored title with CR/LF or
        # XML-invalid characters cannot break a line, the HTML or the message (issue 9).
        env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                          finalize=clean_text)
        self.html, self.text = env.get_template("digest.html"), env.get_template("digest.txt")
        self._trending: list[Any] = []  # this run's trending list, read once for every reader
        self._trending_limit = 0

    def base(self) -> str:
        s = self.settings
        return (s["base_url"] or f"http://{s['web_host']}:{s['web_port']}").rstrip("/")

    def new_papers(self, user_id: int, kind: str, now: datetime) -> list[int]:
        """Papers listed since the reader's last digest (first digest: the last day or week); an
        archive that stopped harvesting counts its last listed day as today."""
        store = self.deps.store
        until = (self.deps.listings.listing_clock(now) - timedelta(seconds=1)).date()
        span = timedelta(days=6 if kind == "weekly" else 0)
        last = store.last_digest_at(user_id)
        # From the day of the last digest on (inclusive: papers listed later that day count; the
        # ledger keeps out what was sent), or the last day / week for a first digest. Digests
        # given up for good do not count, and when nothing was ever delivered the window reaches
        # back to cover the first failed one: their released papers are not lost.
        if last:
            since = date.fromisoformat(last[:10])
        else:
            failed = store.first_failed_digest_at(user_id)
            since = until - span
            if failed:
                since = min(since, date.fromisoformat(failed[:10]) - span - timedelta(days=1))
        return store.day_ids(min(since, until).isoformat(), until.isoformat())

    def build(self, reader: dict[str, Any], now: datetime) -> tuple[list[int], list[int], dict[int, str]]:
        """(recommended ids, trending ids, why of each recommended) for a digest: never anything
        sent before."""
        s = self.settings
        new = self.new_papers(reader["id"], reader["digest"], now)
        model, profile = library.reader_for(self.deps, reader["id"], for_digest=True)
        recs, _ = library.rank(self.deps, model, profile, s["digest_size"], candidates=new)
        picked = [r.paper.id for r in recs]
        seen = model.exclude | set(picked)
        trending = [e.paper.id for e in self.trending(s["digest_trending"] + len(seen))
                    if e.paper.id not in seen and not withdrawn(e.paper)][:s["digest_trending"]]
        return picked, trending, {r.paper.id: r.why for r in recs}

    def trending(self, limit: int) -> list[Any]:
        """The community's trending papers, at least ``limit`` of them when there are: read once per
        run (a Digests is made per run) and again only for a reader who excludes more."""
        if limit > self._trending_limit:
            self._trending = self.deps.listings.trending(limit=max(limit, 2 * self._trending_limit))
            self._trending_limit = max(limit, 2 * self._trending_limit)
        return self._trending[:limit]

    def message(self, digest: dict[str, Any], user: dict[str, Any], why: dict[int, str] | None = None) -> EmailMessage:
        """The mail of a recorded digest to ``user["email"]`` (a validated address; ``why``: the
        reasons when just built, a resumed digest recomputes them). Headers are set through
        ``email.headerregistry`` under the default policy, which refuses CR/LF in any header."""
        if digest.get("damaged"):
            raise ValueError(digest["damaged"])
        base, store = self.base(), self.deps.store
        papers = store.get_papers(digest["paper_ids"] + digest["trending_ids"])
        if why is None:
            why = self._reasons(user["id"], digest["paper_ids"])
        token = unsubscribe_token(self.key, user["id"], user.get("subscribed_at"))
        ctx = {"user": user, "base": base, "period": digest["period"].split(":", 1)[1],
               "recommended": [(papers[i], why.get(i, "")) for i in digest["paper_ids"] if i in papers],
               "trending": [papers[i] for i in digest["trending_ids"] if i in papers],
               "unsubscribe": f"{base}/unsubscribe/{token}"}
        ctx["updated"] = digest_updates.notices(store, user["id"], digest["id"])  # issue 13
        msg = EmailMessage()
        msg["Subject"] = (f"paperboy: {len(ctx['recommended'])} papers for you ({ctx['period']})"
                          if ctx["recommended"] or ctx["trending"] or ctx["updated"]
                          else f"paperboy: a quiet day ({ctx['period']})")
        msg["From"] = self.settings["mail_from"]
        local, _, domain = user["email"].rpartition("@")
        msg["To"] = Address(username=local, domain=domain)  # refuses CR/LF; takes an internationalized address
        msg["Date"] = format_datetime(datetime.now(timezone.utc))
        msg["Message-ID"] = f"<digest-{digest['id']}-{user['id']}@paperboy>"  # stable: a resend is the same mail
        msg["List-Unsubscribe"] = f"<{ctx['unsubscribe']}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
        msg.set_content(self.text.render(ctx))
        msg.add_alternative(self.html.render(ctx), subtype="html")
        return msg

    def _reasons(self, user_id: int, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        recs, _ = library.recommend(self.deps, user_id, len(ids), candidates=ids)
        return {r.paper.id: r.why for r in recs}

    def send(self, msg: EmailMessage) -> None:
        send_mail(self.settings, msg)

    def check_sender(self) -> None:
        """ConfigError when ``mail_from`` is not one valid address: a fault of the settings, not
        of any reader, so it must not be charged to (and give up) every reader's digest."""
        sender = self.settings["mail_from"]
        try:
            msg = EmailMessage()
            msg["From"] = sender
            count = len(msg["From"].addresses)
        except (ValueError, TypeError, IndexError) as e:
            raise ConfigError(f"setting mail_from {sender!r} is not a valid address: {e}") from e
        if count != 1 or msg["From"].defects:
            raise ConfigError(f"setting mail_from {sender!r} must be one valid address")

    def run(self, now: datetime | None = None, user: str | None = None, dry_run: bool = False,
            force: bool = False) -> DigestRun:
        """Mail every due digest (``user``: only that reader; ``force``: due now whatever the hour,
        and retry waiting digests now). One reader's bad address, refused mail or broken digest is
        reported in the result and never stops the others."""
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        out, store = DigestRun(), self.deps.store
        self.check_sender()
        readers = {r["id"]: r for r in store.digest_readers(bool(self.settings["digest_require_verified"]))
                   if user is None or r["name"] == user}
        address: dict[int, str] = {}
        for r in readers.values():
            try:
                address[r["id"]] = validate_email(r["email"])
            except BadRequest as e:  # stored before addresses were validated: skip, never retry
                out.invalid.append(f"{one_line(r['name'], 80)}: {one_line(str(e))}")
        waiting: set[int] = set()
        for d in store.pending_digests():  # resume what a crash or a failure left; fewest attempts first
            r = readers.get(d["user_id"])
            if r is None:
                continue
            waiting.add(r["id"])  # a reader with an undelivered digest gets no new one meanwhile
            if dry_run:
                continue
            if r["id"] not in address:
                self._failed(d, r, "the stored address is not valid", now, out, permanent=True)
            elif out.unreachable:
                out.deferred += 1
            elif not force and d["next_attempt_at"] and datetime.fromisoformat(d["next_attempt_at"]) > now:
                out.waiting += 1
            elif self._deliver(d, r | {"email": address[r["id"]]}, now, out):
                out.resumed += 1
        for r in readers.values():
            if r["id"] not in address or r["id"] in waiting:
                continue
            period, due = period_of(r, now)
            if not (due or force) or store.digest(r["id"], period):
                out.not_due += 1
                continue
            if out.unreachable:  # nothing could be sent: record nothing, the next run builds it
                out.deferred += 1
                continue
            try:
                picked, trending, why = self.build(r, now)
                updates, known = digest_updates.pending_updates(store, r["id"])  # saved papers' new versions
            except Exception as e:  # noqa: BLE001 - one reader's data must never stop the others' mail
                log.exception("cannot build the digest of %s", r["name"])
                out.failed.append(f"{one_line(r['name'], 80)} ({period}): cannot build the digest: "
                                  f"{one_line(f'{type(e).__name__}: {e}')} (tried again next run)")
                continue
            if not picked and not trending and not updates and r["quiet_days"] == "skip":
                out.skipped_quiet += 1
                continue
            if dry_run:
                out.previews.append({"user": r["name"], "period": period, "papers": picked, "trending": trending,
                                     "updated": list(updates)})
                continue
            recorded = store.record_digest(r["id"], period, picked, trending)
            if recorded is None:  # another process recorded (and mails) this period first
                out.not_due += 1
                continue
            digest_updates.record(store, r["id"], recorded, updates, known)
            self._deliver(recorded, r | {"email": address[r["id"]]}, now, out, why)
        return out

    def _deliver(self, digest: dict[str, Any], reader: dict[str, Any], now: datetime, out: DigestRun,
                 why: dict[int, str] | None = None) -> bool:
        """Try to mail one digest, holding its lease in the store, so that two hosts running ``digest
        send`` at once never mail it twice (the lease runs out if this process dies mid-send). False:
        another process has it."""
        store, lease, me = self.deps.store, f"digest:{digest['id']}", f"{worker_name()}:{threading.get_ident()}"
        if not store.take_lease(lease, me, float(self.settings["job_lease_seconds"])):
            out.elsewhere += 1
            return False
        try:
            current = store.digest(digest["user_id"], digest["period"])
            if current is None or current["id"] != digest["id"] or current["status"] != "pending":
                out.elsewhere += 1  # mailed (or given up) by another process since we listed it
                return False
            self._deliver_held(current, reader, now, out, why)
            return True
        finally:
            store.release_lease(lease, me)

    def _deliver_held(self, digest: dict[str, Any], reader: dict[str, Any], now: datetime, out: DigestRun,
                      why: dict[int, str] | None) -> None:
        try:
            msg = self.message(digest, reader, why)
        except Exception as e:  # noqa: BLE001 - one reader's data must never stop the others' mail
            log.exception("cannot build digest %s of %s", digest["id"], reader["name"])
            self._failed(digest, reader, f"cannot build the message: {type(e).__name__}: {e}", now, out)
            return
        try:
            self.send(msg)
        except MailError as e:
            out.unreachable = out.unreachable or e.unreachable
            self._failed(digest, reader, str(e), now, out, permanent=e.permanent)
            return
        self.deps.store.mark_digest(digest["id"], "sent")
        out.sent += 1

    def _failed(self, digest: dict[str, Any], reader: dict[str, Any], reason: str, now: datetime, out: DigestRun,
                permanent: bool = False) -> None:
        """Count a failed attempt: retry after 5 min x 2^(attempts-1) (settings; at most a day),
        or give up when the failure is permanent or the attempts are spent."""
        attempts = digest["attempts"] + 1
        reason = one_line(reason)
        label = f"{one_line(reader['name'], 80)} ({digest['period']})"
        if permanent or attempts >= self.settings["digest_max_attempts"]:
            self.deps.store.digest_failed(digest["id"], reason, None)
            out.failed.append(f"{label}: {reason} (attempt {attempts}: given up, its papers go to the next digest)")
            out.given_up.append(label)
            return
        wait = min(timedelta(minutes=self.settings["digest_retry_minutes"]) * 2 ** min(attempts - 1, 16),
                   MAX_RETRY_WAIT)
        self.deps.store.digest_failed(digest["id"], reason, (now + wait).isoformat(timespec="seconds"))
        out.failed.append(f"{label}: {reason} (attempt {attempts}, retried after {now + wait:%Y-%m-%d %H:%M} UTC)")
