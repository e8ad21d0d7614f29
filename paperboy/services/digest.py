"""Email digests that never repeat a paper.

A reader with ``digest`` daily (or weekly: Mondays) and an email gets one digest per period at
``digest_hour`` in their time zone: the new papers listed since their last digest, ranked by the
recommender, plus the community's trending papers. Papers already sent are never sent again.

Crash safety: a digest is first recorded as *pending* together with its papers in the ``sent``
ledger (one transaction), then mailed, then marked sent. A crash before mailing leaves it pending
and the next run mails exactly that digest (no gap, no paper picked twice); a crash after mailing
but before marking re-sends the same message with the same Message-ID, which mail clients
de-duplicate. Empty periods are skipped or get a short "quiet day" note (the reader's setting).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import library
from .mail import MailError, send_mail

if TYPE_CHECKING:
    from ..engine import Engine

TEMPLATES = Path(__file__).resolve().parents[1] / "web" / "templates"


@dataclass
class DigestRun:
    sent: int = 0
    resumed: int = 0
    skipped_quiet: int = 0
    not_due: int = 0
    failed: list[str] = field(default_factory=list)
    previews: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would be sent


def unsubscribe_token(key: bytes, user_id: int) -> str:
    return f"{user_id}.{hmac.new(key, f'unsubscribe:{user_id}'.encode(), hashlib.sha256).hexdigest()[:32]}"


def check_unsubscribe_token(key: bytes, token: str) -> int | None:
    uid = token.split(".", 1)[0]
    if uid.isdigit() and hmac.compare_digest(unsubscribe_token(key, int(uid)), token):
        return int(uid)
    return None


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


class Digests:
    """Builds and mails digests for an engine; ``run`` is what cron or the scheduler calls."""

    def __init__(self, engine: Engine, key: bytes) -> None:
        self.engine, self.key, self.settings = engine, key, engine.settings
        env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
        self.html, self.text = env.get_template("digest.html"), env.get_template("digest.txt")

    def base(self) -> str:
        s = self.settings
        return (s["base_url"] or f"http://{s['web_host']}:{s['web_port']}").rstrip("/")

    def new_papers(self, user_id: int, kind: str, now: datetime) -> list[int]:
        """Papers listed since the reader's last digest (first digest: the last day or week); an
        archive that stopped harvesting counts its last listed day as today."""
        store = self.engine.store
        until = (self.engine.listings.listing_clock(now) - timedelta(seconds=1)).date()
        last = store.last_digest_at(user_id)
        # From the day of the last digest on (inclusive: papers listed later that day count; the
        # ledger keeps out what was sent), or the last day / week for a first digest.
        since = date.fromisoformat(last[:10]) if last else until - timedelta(days=6 if kind == "weekly" else 0)
        return store.day_ids(min(since, until).isoformat(), until.isoformat())

    def build(self, reader: dict[str, Any], now: datetime) -> tuple[list[int], list[int], dict[int, str]]:
        """(recommended ids, trending ids, why of each recommended) for a digest: never anything
        sent before."""
        s = self.settings
        new = self.new_papers(reader["id"], reader["digest"], now)
        model, profile = library.reader_for(self.engine, reader["id"], for_digest=True)
        recs, _ = library.rank(self.engine, model, profile, s["digest_size"], candidates=new)
        picked = [r.paper.id for r in recs]
        seen = model.exclude | set(picked)
        trending = [e.paper.id for e in self.engine.listings.trending(limit=s["digest_trending"] + len(seen))
                    if e.paper.id not in seen][:s["digest_trending"]]
        return picked, trending, {r.paper.id: r.why for r in recs}

    def message(self, digest: dict[str, Any], user: dict[str, Any], why: dict[int, str] | None = None) -> EmailMessage:
        """The mail of a recorded digest (``why``: the reasons when just built; a resumed digest
        recomputes them)."""
        base, store = self.base(), self.engine.store
        papers = store.get_papers(digest["paper_ids"] + digest["trending_ids"])
        if why is None:
            why = self._reasons(user["id"], digest["paper_ids"])
        ctx = {"user": user, "base": base, "period": digest["period"].split(":", 1)[1],
               "recommended": [(papers[i], why.get(i, "")) for i in digest["paper_ids"] if i in papers],
               "trending": [papers[i] for i in digest["trending_ids"] if i in papers],
               "unsubscribe": f"{base}/unsubscribe/{unsubscribe_token(self.key, user['id'])}"}
        msg = EmailMessage()
        msg["Subject"] = (f"paperboy: {len(ctx['recommended'])} papers for you ({ctx['period']})"
                          if ctx["recommended"] or ctx["trending"] else f"paperboy: a quiet day ({ctx['period']})")
        msg["From"], msg["To"] = self.settings["mail_from"], user["email"]
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
        recs, _ = library.recommend(self.engine, user_id, len(ids), candidates=ids)
        return {r.paper.id: r.why for r in recs}

    def send(self, msg: EmailMessage) -> None:
        send_mail(self.settings, msg)

    def run(self, now: datetime | None = None, user: str | None = None, dry_run: bool = False,
            force: bool = False) -> DigestRun:
        """Mail every due digest (``user``: only that reader; ``force``: due now whatever the hour)."""
        now = now or datetime.now(timezone.utc)
        out, store = DigestRun(), self.engine.store
        readers = {r["id"]: r for r in store.digest_readers() if user is None or r["name"] == user}
        if not dry_run:
            for d in store.pending_digests():  # resume what a crash left between ledger and mail
                if d["user_id"] in readers:
                    self._deliver(d, readers[d["user_id"]], out)
                    out.resumed += 1
        for r in readers.values():
            period, due = period_of(r, now)
            if not (due or force) or store.digest(r["id"], period):
                out.not_due += 1
                continue
            picked, trending, why = self.build(r, now)
            if not picked and not trending and r["quiet_days"] == "skip":
                out.skipped_quiet += 1
                continue
            if dry_run:
                out.previews.append({"user": r["name"], "period": period, "papers": picked, "trending": trending})
                continue
            self._deliver(store.record_digest(r["id"], period, picked, trending), r, out, why)
        return out

    def _deliver(self, digest: dict[str, Any], reader: dict[str, Any], out: DigestRun,
                 why: dict[int, str] | None = None) -> None:
        try:
            self.send(self.message(digest, reader, why))
        except MailError as e:
            out.failed.append(f"{reader['name']}: {e}")  # stays pending: the next run retries it
            return
        self.engine.store.mark_digest(digest["id"], "sent")
        out.sent += 1
