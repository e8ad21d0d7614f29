"""Daily lists and the trending formula on a real SQLite store."""

from datetime import datetime, timedelta, timezone

import pytest

from conftest import DATA
from paperboy.ingest import ingest_file
from paperboy.services.listing import Listings, parse_period
from paperboy.query import QueryError


def test_periods():
    assert vars(parse_period(week="2020-W53")) | {} == {
        "kind": "week", "label": "2020-W53", "first": "2020-12-28", "last": "2021-01-03",
        "prev": "2020-W52", "next": "2021-W01"}
    m = parse_period(month="2023-12")
    assert (m.first, m.last, m.prev, m.next) == ("2023-12-01", "2023-12-31", "2023-11", "2024-01")
    assert parse_period(day="2024-02-29").first == "2024-02-29" and parse_period() is None
    for bad in ({"day": "2023-02-29"}, {"week": "2024-W60"}, {"month": "2024-13"}, {"week": "soon"}):
        with pytest.raises(QueryError):
            parse_period(**bad)


def test_listing_day_prefers_submission_then_hf_daily_then_arxiv_date(store):
    ingest_file(store, DATA / "hf_daily.json")
    larp = store.get_paper("2312.17653")
    assert larp.submitted == "2023-12-29"
    assert larp.id in store.day_ids("2024-01-01", "2024-01-01")  # its Hugging Face daily date
    assert larp.id not in store.day_ids("2023-12-29", "2023-12-29")
    uid = store.create_user("ann", None, "x")
    assert store.submit(larp.id, uid, "2024-02-01") and not store.submit(larp.id, uid, "2024-02-02")
    assert store.day_ids("2024-02-01", "2024-02-01") == [larp.id]
    assert larp.id not in store.day_ids("2024-01-01", "2024-01-01")
    assert store.day_ids("2024-02-01", "2024-02-01", submitter="ann") == [larp.id]
    assert store.listing_days([larp.id]) == {larp.id: "2024-02-01"}
    assert store.latest_day("2099-01-01") == "2024-02-01"
    assert store.adjacent_day("2024-02-01", forward=False) == "2024-01-01"


def test_trending_score_is_decayed_member_votes_plus_source_upvotes(store):
    ingest_file(store, DATA / "hf_daily.json")
    lst = Listings(store, window_days=7, half_life_hours=24)
    a, b = store.get_paper("2312.17653").id, store.get_paper("2312.17276").id
    before = lst.scores()
    # Source upvotes count on the listing day, on the clock of the corpus's last day (an archive).
    assert before[a] > 0 and set(before) <= set(store.day_ids("2023-12-26", "2024-01-02"))
    now = datetime.now(timezone.utc)
    users = [store.create_user(f"u{i}", None, "x") for i in range(3)]
    with store._write() as c:
        c.executemany("INSERT INTO votes (user_id, paper_id, created_at) VALUES (?, ?, ?)", [
            (users[0], b, (now - timedelta(hours=1)).isoformat(timespec="seconds")),
            (users[1], b, (now - timedelta(hours=25)).isoformat(timespec="seconds")),
            (users[2], b, (now - timedelta(days=8)).isoformat(timespec="seconds"))])  # outside the window
    after = lst.scores()
    expected = 2 ** (-1 / 24) + 2 ** (-25 / 24)
    assert after[b] - before.get(b, 0.0) == pytest.approx(expected, rel=1e-3)
    entries = lst.trending(limit=50)
    assert [e.score for e in entries] == sorted((e.score for e in entries), reverse=True)
    assert {e.paper.id: e.score for e in entries}[b] == pytest.approx(after[b], abs=1e-4)


def later_papers(tmp_path, days: list[str]):
    """A Kaggle-shaped file of papers without upvotes, one first submitted on each of ``days``."""
    path = tmp_path / "later.jsonl"
    path.write_text("".join(
        '{"id": "2406.%05d", "title": "A later paper %d", "abstract": "Text.", "authors": "Ann Author", '
        '"categories": "math.PR", "versions": [{"version": "v1", "created": "%s"}]}\n' % (i, i, d)
        for i, d in enumerate(days, start=1)))
    return path


def test_a_quiet_site_shows_trending_as_of_its_newest_upvoted_day(store, tmp_path):
    """Newer papers without any vote (arXiv search results, a fetched paper) do not empty Trending:
    with nothing in the window, source upvotes age on the clock of the newest day that has some."""
    ingest_file(store, DATA / "hf_daily.json")
    lst = Listings(store, window_days=7, half_life_hours=24)
    entries, as_of = lst.trending_as_of()
    assert as_of == "2024-01-01" and len(entries) == 4  # the archive's clock: its last listed day
    ingest_file(store, later_papers(tmp_path, ["2024-06-01", "2024-06-03"]), "kaggle")
    assert store.latest_day("2099-01-01") == "2024-06-03"
    entries, as_of = lst.trending_as_of()
    assert as_of == "2024-01-01" and [e.votes for e in entries] == [29, 15, 14, 12]
    # Counted as at the end of 2024-01-01: listed that day, so a day old, half the upvotes.
    assert [e.score for e in entries] == pytest.approx([14.5, 7.5, 7.0, 6.0])
    assert lst.scores() == {e.paper.id: e.score for e in entries}
    # Any recent activity and the real clocks rule again: members' votes now, the archive's last day.
    later = store.get_paper("2406.00002").id
    uid = store.create_user("ann", None, "x")
    store.set_vote(uid, later, True)
    entries, as_of = lst.trending_as_of()
    assert [e.paper.id for e in entries] == [later] and as_of == "2024-06-03"
    assert entries[0].score == pytest.approx(1.0, abs=0.01)


def test_the_search_for_an_upvoted_day_is_bounded(store, tmp_path):
    """A site whose upvote source stopped long ago (more listed days since than SIGNAL_LOOKBACK)
    looks no further back: Trending stays empty rather than reading the whole archive per request."""
    from datetime import date

    from paperboy.services.listing import SIGNAL_LOOKBACK

    ingest_file(store, DATA / "hf_daily.json")
    days = [(date(2024, 2, 1) + timedelta(days=i)).isoformat() for i in range(SIGNAL_LOOKBACK + 8)]
    ingest_file(store, later_papers(tmp_path, days), "kaggle")
    lst = Listings(store, window_days=7, half_life_hours=24)
    assert lst.trending_as_of() == ([], None) and lst.scores() == {}
    assert len(lst.daily(parse_period(day=days[-1]), sort="trending")) == 1


class Calls:
    """Counts the calls of one store method, passing them through to the real store."""

    def __init__(self, monkeypatch, store, name: str) -> None:
        self.n, real = 0, getattr(store, name)

        def counted(*args, **kw):
            self.n += 1
            return real(*args, **kw)

        monkeypatch.setattr(store, name, counted)


def test_a_quiet_sites_fallback_is_searched_once_a_minute(store, tmp_path, monkeypatch):
    """The quiet-site search (up to 3 x SIGNAL_LOOKBACK queries) runs once, not per request; a store
    change or FALLBACK_TTL seconds later it runs again, and any member activity still counts at once."""
    from paperboy.services import listing

    ingest_file(store, DATA / "hf_daily.json")
    ingest_file(store, later_papers(tmp_path, ["2024-06-01", "2024-06-03"]), "kaggle")
    lst = Listings(store, window_days=7, half_life_hours=24)
    first = lst.trending_as_of()
    assert first[1] == "2024-01-01" and len(first[0]) == 4
    searched = Calls(monkeypatch, store, "adjacent_day")
    for _ in range(5):
        assert lst.trending_as_of() == first and lst.scores() == {e.paper.id: e.score for e in first[0]}
    assert searched.n == 0
    monkeypatch.setattr(listing, "FALLBACK_TTL", 0.0)  # a minute later: searched again, same answer
    assert lst.trending_as_of() == first and searched.n > 0
    monkeypatch.setattr(listing, "FALLBACK_TTL", 60.0)
    ingest_file(store, later_papers(tmp_path, ["2024-06-05"]), "kaggle")  # the store moved: searched again
    n = searched.n
    assert lst.trending_as_of() == first and searched.n > n
    later = store.get_paper("2406.00001").id
    store.set_vote(store.create_user("bo", None, "x"), later, True)  # activity: the real clock at once
    entries, as_of = lst.trending_as_of()
    assert [e.paper.id for e in entries] == [later] and as_of == "2024-06-05"


def test_the_with_code_filter_reads_each_paper_once(store, tmp_path, monkeypatch):
    """``with_link`` remembers each paper's link kinds: a second request reads no paper; a changed
    paper is mended from the store's change feed, a new one read once."""
    from paperboy.models import PaperRecord

    def paper(n: int, abstract: str) -> PaperRecord:
        return PaperRecord(source="arxiv", source_id=f"2405.{n:05d}", arxiv_id=f"2405.{n:05d}", arxiv_version=1,
                           authoritative=True, title=f"Paper {n}", abstract=abstract, authors=["Ann Author"],
                           submitted="2024-05-02")

    with_code = "Code: https://github.com/acme/repo{}."
    store.upsert_papers([paper(n, with_code.format(n) if n % 3 == 0 else "No links here.") for n in range(1, 31)])
    lst = Listings(store)
    ids = store.day_ids("2024-05-01", "2024-05-31")
    by = {store.get_paper(f"2405.{n:05d}").id: n for n in range(1, 31)}
    want = [i for i in ids if by[i] % 3 == 0]
    assert len(ids) == 30 and lst.with_link(ids, "code") == want and lst.with_link(ids, "project") == []
    reads = Calls(monkeypatch, store, "get_papers")
    for _ in range(5):
        assert lst.with_link(ids, "code") == want and lst.daily(parse_period(month="2024-05"), has="code")
    assert reads.n == 5  # only daily's one page of entries: no paper read to filter
    changed = next(i for i in want)
    store.upsert_papers([paper(by[changed], "The link is gone."), paper(31, with_code.format(31))])
    ids = store.day_ids("2024-05-01", "2024-05-31")
    new = store.get_paper("2405.00031").id
    n = reads.n
    assert lst.with_link(ids, "code") == [i for i in ids if i == new or (by.get(i, 0) % 3 == 0 and i != changed)]
    assert reads.n == n + 1  # the new paper alone
    assert lst.with_link([10**9, -5], "code") == [] and lst.with_link([], "hf") == []
    with pytest.raises(QueryError, match="unknown link kind"):
        lst.with_link(ids, "pdf")
