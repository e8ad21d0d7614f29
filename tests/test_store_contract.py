"""The Store contract: what every backend must do, tested through the interface only (no SQL, no
connection attributes). Each test runs once per backend in ``BACKENDS``.

Adding a backend is one entry in ``BACKENDS``: a context manager that, given a tmp dir, provides a
fresh empty database and yields an ``open()`` that returns a new (unmigrated) ``Store`` on it.
``open()`` may be called more than once: the concurrency tests open two instances on one database,
as two processes or hosts would.
"""

from __future__ import annotations

import ast
import inspect
import threading
import typing
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from paperboy.errors import Conflict
from paperboy.models import PaperRecord
from paperboy.store import Store
from paperboy.store.sqlite import SQLiteStore
from pgserver import fresh_database

ROOT = Path(__file__).resolve().parents[1]
Opener = Callable[[], Store]


@contextmanager
def sqlite_backend(tmp_path: Path) -> Iterator[Opener]:
    path = tmp_path / "contract.sqlite3"
    yield lambda: SQLiteStore(path, busy_timeout=30)


@contextmanager
def postgres_backend(tmp_path: Path) -> Iterator[Opener]:
    from paperboy.store.postgres import PostgresStore

    with fresh_database() as url:
        yield lambda: PostgresStore(url, pool_size=4)


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Opener]]] = {
    "sqlite": sqlite_backend, "postgres": postgres_backend}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path) -> Iterator[Opener]:
    """An opener of migrated stores on one fresh database; every store opened is closed after."""
    opened: list[Store] = []

    with BACKENDS[request.param](tmp_path) as open_raw:
        def open_store() -> Store:
            s = open_raw()
            s.migrate()
            opened.append(s)
            return s

        yield open_store
        for s in opened:
            s.close()


@pytest.fixture
def store(backend) -> Store:
    return backend()


def rec(**kw) -> PaperRecord:
    base = dict(source="t", source_id=None, title="A Paper", abstract="Text.")
    return PaperRecord(**(base | kw))


def arxiv(n: int, **kw) -> PaperRecord:
    aid = f"2401.{n:05d}"
    return rec(**(dict(source="arxiv", source_id=aid, arxiv_id=aid, arxiv_version=1, authoritative=True,
                       title=f"Paper number {n}", submitted="2024-01-02") | kw))


def user(store: Store, name: str = "alice", email: str | None = None) -> int:
    return store.create_user(name, email, "hash")


# -- the interface itself ---------------------------------------------------------------------------


def test_backend_implements_the_whole_interface(store):
    """The backend leaves nothing abstract, resolves every method to a real implementation with the
    interface's exact signature, and has no public method the interface lacks."""
    cls = type(store)
    assert isinstance(store, Store) and not cls.__abstractmethods__
    for name in Store.__abstractmethods__:
        impl = getattr(cls, name)
        assert not getattr(impl, "__isabstractmethod__", False), name
        assert str(inspect.signature(impl)) == str(inspect.signature(getattr(Store, name))), name
    public = {n for n in dir(cls) if not n.startswith("_")} - {"conn"}  # a SQL backend's connection
    assert public <= set(dir(Store)), sorted(public - set(dir(Store)))


def _store_calls() -> dict[str, set[str]]:
    """Every ``<...>store.NAME(...)`` call (and ``store.NAME`` passed as a callable) in paperboy/
    outside paperboy/store/: NAME -> the files it is in."""
    found: dict[str, set[str]] = {}
    submodules = {p.stem for p in (ROOT / "paperboy" / "store").glob("*.py")}  # paperboy.store.sqlite etc.
    for path in sorted((ROOT / "paperboy").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("paperboy/store/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.Attribute):
                owner = node.value
                owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
                if owner_name in ("store", "_store") and node.attr not in submodules:
                    found.setdefault(node.attr, set()).add(rel)
    return found


def test_code_above_store_calls_only_the_interface():
    calls = _store_calls()
    assert {"upsert_papers", "claim_job", "record_digest", "user_by_name"} <= set(calls)  # the scan sees them
    missing = {name: sorted(files) for name, files in calls.items() if not hasattr(Store, name)}
    assert not missing, f"store methods called above store/ but not declared on Store: {missing}"


# -- schema, papers, merge --------------------------------------------------------------------------


def test_migrate_is_idempotent(backend):
    s = backend()
    version = s.schema_version()
    assert version > 0
    assert s.migrate() == []
    assert backend().migrate() == [] and backend().schema_version() == version


def test_upsert_counts_and_reingest_changes_nothing(store):
    records = [arxiv(i) for i in range(1, 6)]
    c = store.upsert_papers(records)
    assert (c.inserted, c.updated, c.unchanged) == (5, 0, 0)
    rev = store.max_rev()
    c = store.upsert_papers(records)
    assert (c.inserted, c.updated, c.unchanged) == (0, 0, 5)
    assert store.max_rev() == rev and store.papers_since(rev) == []
    assert store.stats()["papers"] == 5


def test_dedup_by_source_id_arxiv_id_any_version_and_doi(store):
    store.upsert_papers([arxiv(1, arxiv_version=2, versions={1: "2024-01-02", 2: "2024-02-01"})])
    store.upsert_papers([rec(source="arxiv", source_id="2401.00001", title="Paper number 1")])  # same source id
    store.upsert_papers([rec(source="hf", source_id="x1", arxiv_id="2401.00001", arxiv_version=1,
                             title="Something else entirely")])  # arXiv id, older version
    store.upsert_papers([rec(source="crossref", source_id="c1", doi="10.1000/abc", title="A DOI paper")])
    store.upsert_papers([rec(source="bibtex", source_id="k", doi="10.1000/abc", title="Another title")])
    # (records arrive normalized, DOIs lower-cased; lookups by reference normalize it themselves)
    assert store.stats()["papers"] == 2
    p = store.get_paper("2401.00001")
    assert p.title == "Paper number 1" and p.arxiv_version == 2
    assert {s["source"] for s in p.sources} == {"arxiv", "hf"}
    for ref in ("2401.00001v1", "arXiv:2401.00001", "https://arxiv.org/abs/2401.00001v2", "arxiv:2401.00001",
                str(p.id)):
        assert store.get_paper(ref).id == p.id, ref
    d = store.get_paper("https://doi.org/10.1000/abc")
    assert d.doi == "10.1000/abc" and {s["source"] for s in d.sources} == {"crossref", "bibtex"}
    assert store.get_paper("10.1000/ABC").id == d.id
    assert store.get_paper("2401.99999") is None and store.get_paper("999999") is None
    assert store.paper_ids_by_source("hf", ["x1", "nope"]) == {"x1": p.id}
    assert set(store.get_papers([p.id, d.id, 424242])) == {p.id, d.id}


def test_doi_match_does_not_override_different_arxiv_ids(store):
    store.upsert_papers([arxiv(1, doi="10.1000/same"), arxiv(2, doi="10.1000/same", title="Other")])
    assert store.stats()["papers"] == 2


def test_rev_increases_on_change_and_papers_since_is_in_order(store):
    store.upsert_papers([arxiv(1), arxiv(2), arxiv(3)])
    first = store.papers_since(0)
    assert [p["arxiv_id"] for p in first] == ["2401.00001", "2401.00002", "2401.00003"]
    revs = [p["rev"] for p in first]
    assert revs == sorted(revs) and len(set(revs)) == 3 and store.max_rev() == revs[-1]
    mark = store.max_rev()
    store.upsert_papers([arxiv(2, title="Paper number 2, revised", arxiv_version=2)])
    store.upsert_papers([arxiv(1, title="Paper number 1, revised", arxiv_version=2)])
    changed = store.papers_since(mark)
    assert [p["arxiv_id"] for p in changed] == ["2401.00002", "2401.00001"]
    assert all(p["rev"] > mark for p in changed) and changed[0]["rev"] < changed[1]["rev"]
    assert changed[1]["title"] == "Paper number 1, revised" and isinstance(changed[1]["authors"], list)
    assert [p["arxiv_id"] for p in store.papers_since(0, limit=2)] == ["2401.00003", "2401.00002"]


def test_paper_page_walks_every_public_paper_once_newest_first(store):
    """Keyset pages: dated papers by (submitted, id) descending, then undated ones by id descending;
    papers known only from library uploads are left out; a paper added mid-walk does not shift or
    repeat the pages after it."""
    days = ["2024-01-03", "2024-01-01", "2024-01-03", None, "2023-12-31", None, "2024-01-02", "2024"]
    store.upsert_papers([arxiv(i + 1, submitted=d) for i, d in enumerate(days)])
    store.upsert_papers([rec(source="upload", source_id="u1", title="Only in a library", submitted="2025-01-01")])
    ids = {p.arxiv_id: p.id for p in store.get_papers(range(1, 100)).values() if p.arxiv_id}
    expected = sorted((p for p in store.get_papers(list(ids.values())).values() if p.submitted),
                      key=lambda p: (p.submitted, p.id), reverse=True)
    expected += sorted((p for p in store.get_papers(list(ids.values())).values() if not p.submitted),
                       key=lambda p: p.id, reverse=True)
    seen, after = [], None
    while page := store.paper_page(after, 3):
        assert len(page) <= 3
        seen += page
        after = (page[-1].submitted, page[-1].id)
        if len(seen) == 3:  # a new paper, older than the walk's position: it comes later, once
            store.upsert_papers([arxiv(50, submitted="2000-01-01")])
            expected.insert(len([p for p in expected if p.submitted]), store.get_paper("2401.00050"))
    assert [p.id for p in seen] == [p.id for p in expected]
    assert [p.submitted for p in seen[:3]] == ["2024-01-03", "2024-01-03", "2024-01-02"]
    assert "Only in a library" not in {p.title for p in seen}
    assert store.paper_page(None, 100)[0].title.startswith("Paper number") and store.paper_page(None, 1)[0].id == seen[0].id
    assert store.paper_page((None, 1), 10) == []
    assert [p.submitted for p in store.paper_page(("0000", 1), 10)] == [None, None]  # after the dated: the undated


def test_cursor_saved_with_upsert_and_alone(store):
    assert store.get_cursor("oai") is None
    store.upsert_papers([arxiv(1)], cursor=("oai", {"token": "abc", "n": 1}))
    assert store.get_cursor("oai") == {"token": "abc", "n": 1}
    store.set_cursor("oai", {"token": "def"})
    assert store.get_cursor("oai") == {"token": "def"}


def test_runs_are_recorded(store):
    run = store.start_run("jsonl", "file.jsonl")
    store.finish_run(run, "ok", {"read": 3}, ["line 2: bad"])
    (last, *_) = store.stats()["recent_runs"]
    assert (last["id"], last["status"], last["counts"]) == (run, "ok", {"read": 3})


# -- embeddings -------------------------------------------------------------------------------------


def test_embeddings_put_since_and_by_hash(store):
    store.upsert_papers([arxiv(1), arxiv(2)])
    a, b = (store.get_paper(f"2401.0000{i}").id for i in (1, 2))
    store.put_embeddings("m1", [(a, "ha", b"\x00" * 8), (b, "hb", b"\x01" * 8)], cursor=("embed", {"n": 2}))
    assert store.get_cursor("embed") == {"n": 2}
    assert store.count_embeddings("m1") == 2 and store.count_embeddings("m2") == 0
    assert store.embedding_hashes("m1", [a, b, 999]) == {a: "ha", b: "hb"}
    assert store.vectors_by_hash("m1", ["hb", "zz"]) == {"hb": b"\x01" * 8}
    assert store.vectors_by_hash("m2", ["hb"]) == {}
    rows = store.embeddings_since("m1", 0)
    assert [r[0] for r in rows] == [a, b] and rows[0][1] < rows[1][1]
    mark = rows[-1][1]
    store.put_embeddings("m1", [(a, "ha2", b"\x02" * 8)])  # a re-embedded: a later seq, still one vector
    again = store.embeddings_since("m1", mark)
    assert [(r[0], r[2]) for r in again] == [(a, b"\x02" * 8)] and again[0][1] > mark
    assert store.count_embeddings("m1") == 2 and store.embedding_hashes("m1", [a]) == {a: "ha2"}
    assert store.embeddings_since("m1", 0, limit=1)[0][0] == b


# -- users, sessions, tokens ------------------------------------------------------------------------


def test_user_names_are_unique_case_folded(store):
    uid = user(store, "Alice", "Alice@Example.org")
    with pytest.raises(Conflict):
        store.create_user("ALICE", None, "h")
    assert store.user_by_name(" alice ")["id"] == uid
    assert [u["id"] for u in store.users_by_email("alice@example.ORG")] == [uid]
    assert store.account(uid)["name"] == "Alice" and store.user(uid)["email"] == "Alice@Example.org"
    assert store.set_role(uid, "admin") and store.account(uid)["role"] == "admin"
    store.set_password_hash(uid, "new")
    assert store.account(uid)["password_hash"] == "new"
    assert [u["id"] for u in store.list_users()] == [uid]


def test_deleted_user_leaves_a_tombstone_and_frees_the_name(store):
    store.upsert_papers([arxiv(1)])
    pid = store.get_paper("2401.00001").id
    uid = user(store, "bob", "bob@example.org")
    store.add_comment(pid, uid, "hello")
    store.set_vote(uid, pid, True)
    store.delete_user(uid)
    assert store.user_by_name("bob") is None and store.account(uid)["deleted_at"]
    assert store.users_by_email("bob@example.org") == [] and store.member_votes([pid]) == {}
    assert [(c["body"], c["user"]) for c in store.comments(pid)] == [("hello", "[deleted]")]
    assert user(store, "Bob") != uid


def test_sessions_expire_end_and_die_with_suspension(store):
    uid = user(store)
    store.create_session("s1", uid, days=1)
    store.create_session("s2", uid, days=1)
    store.create_session("old", uid, days=-1)
    assert store.session_user("s1")["id"] == uid
    assert store.session_user("old") is None and store.session_user("nope") is None
    store.delete_session("s1")
    assert store.session_user("s1") is None
    store.create_session("s3", uid, days=1)
    assert store.delete_sessions(uid, keep="s3") >= 1
    assert store.session_user("s2") is None and store.session_user("s3")["id"] == uid
    assert store.set_suspended(uid, True)
    assert store.session_user("s3") is None
    store.create_session("s4", uid, days=1)
    assert store.session_user("s4") is None  # a suspended account has no live session
    assert store.set_suspended(uid, False) and store.session_user("s4")["id"] == uid


def test_api_tokens_revoke_scope_and_expiry(store):
    uid, other = user(store), user(store, "eve")
    tid = store.create_api_token(uid, "ci", "th", scope="read")
    store.create_api_token(uid, "old", "th-old", days=-1)
    got = store.token_user("th")
    assert (got["id"], got["token_id"], got["scope"]) == (uid, tid, "read")
    assert store.token_user("th-old") is None
    assert {t["name"] for t in store.api_tokens(uid)} == {"ci", "old"}
    assert next(t for t in store.api_tokens(uid) if t["id"] == tid)["last_used_at"]  # touched
    assert not store.revoke_api_token(other, tid)  # not eve's to revoke
    assert store.revoke_api_token(uid, tid) and not store.revoke_api_token(uid, tid)
    assert store.token_user("th") is None
    assert next(t for t in store.api_tokens(uid) if t["id"] == tid)["revoked_at"]


def test_login_failures_count_in_a_window_and_clear(store):
    store.add_login_failure(["ip:1", "user:a"])
    store.add_login_failure(["ip:1", "user:a"])
    store.add_login_failure(["ip:1"])
    assert store.failure_counts(["ip:1", "user:a", "x"], 15) == {"ip:1": 3, "user:a": 2, "x": 0}
    assert store.login_failures(["user:a", "ip:1"], 15) == 3
    assert store.login_failures(["ip:1"], 0) == 0  # nothing is newer than now
    store.clear_login_failures("user:a", 60)
    assert store.failure_counts(["ip:1", "user:a"], 15) == {"ip:1": 3, "user:a": 0}


def test_rate_hit_sliding_window_all_or_nothing(store):
    assert store.rate_hit([("k", 2, 60)]) is None
    assert store.rate_hit([("k", 2, 60)]) is None
    wait, key = store.rate_hit([("k", 2, 60)])
    assert key == "k" and 0 < wait <= 60
    assert store.rate_hit([("b", 1, 60), ("k", 2, 60)])[1] == "k"
    assert store.rate_hit([("b", 1, 60)]) is None  # the blocked hit recorded nothing under "b"
    assert store.rate_hit([("w", 1, 2)]) is None  # windows of seconds: a loaded CI box stays inside
    assert store.rate_hit([("w", 1, 2)]) is not None
    time.sleep(2.1)
    assert store.rate_hit([("w", 1, 2)]) is None


# -- votes, comments, submissions, lists ------------------------------------------------------------


def test_votes_are_idempotent_and_counted(store):
    store.upsert_papers([arxiv(1, extra={"upvotes": 5}), arxiv(2)])
    a, b = (store.get_paper(f"2401.0000{i}").id for i in (1, 2))
    u1, u2 = user(store), user(store, "bob")
    assert store.set_vote(u1, a, True) and not store.set_vote(u1, a, True)
    assert store.set_vote(u2, a, True) and store.set_vote(u2, b, True)
    assert store.member_votes([a, b]) == {a: 2, b: 1} and store.source_upvotes([a, b]) == {a: 5}
    assert store.votes([a, b]) == {a: 7, b: 1}
    assert store.voted(u1, [a, b]) == {a} and sorted(store.my_votes(u2)) == sorted([a, b])
    assert len(store.vote_events("2000-01-01", "2100-01-01")) == 3
    assert store.set_vote(u2, a, False) and not store.set_vote(u2, a, False)
    assert store.member_votes([a]) == {a: 1}


def test_comments_and_hiding(store):
    store.upsert_papers([arxiv(1)])
    pid = store.get_paper("2401.00001").id
    uid = user(store)
    c1, c2 = store.add_comment(pid, uid, "first"), store.add_comment(pid, uid, "second")
    assert [c["body"] for c in store.comments(pid)] == ["first", "second"]
    assert store.comments(pid)[0]["user"] == "alice" and store.comment_counts([pid]) == {pid: 2}
    assert store.set_comment_hidden(c1, True) and not store.set_comment_hidden(c1, True)
    assert [c["id"] for c in store.comments(pid)] == [c2] and store.comment_counts([pid]) == {pid: 1}
    assert store.comment(c1)["hidden_at"] and {c["id"] for c in store.recent_comments()} == {c1, c2}
    assert store.set_comment_hidden(c1, False) and store.comment_counts([pid]) == {pid: 2}
    assert store.comment(424242) is None


def test_submissions_first_wins_and_hiding(store):
    store.upsert_papers([arxiv(1)])
    pid = store.get_paper("2401.00001").id
    u1, u2 = user(store), user(store, "bob")
    assert store.submit(pid, u1, "2024-03-01")
    assert not store.submit(pid, u2, "2024-03-05")
    assert (store.submission(pid)["user_id"], store.submission(pid)["day"]) == (u1, "2024-03-01")
    assert store.submissions([pid])[pid]["user"] == "alice"
    assert store.set_submission_hidden(pid, True) and not store.set_submission_hidden(pid, True)
    assert store.submissions([pid]) == {} and store.recent_submissions()[0]["paper_id"] == pid
    assert store.set_submission_hidden(pid, False)


def test_day_ids_listing_days_and_navigation(store):
    store.upsert_papers([arxiv(1, submitted="2024-01-02"), arxiv(2, submitted="2023-12-01"),
                         arxiv(3, submitted="2023-12-01")])
    store.upsert_papers([rec(source="hf-daily", source_id="2401.00002", arxiv_id="2401.00002",
                             title="Paper number 2", extra={"daily_date": "2024-01-05"})])
    store.upsert_papers([rec(source="upload", source_id="k1", title="Only in an upload", submitted="2024-01-02")])
    a, b, c = (store.get_paper(f"2401.0000{i}").id for i in (1, 2, 3))
    store.submit(c, user(store), "2024-01-07")
    assert store.day_ids("2024-01-02", "2024-01-02") == [a]  # the upload-only paper is not listed
    upload = store.paper_ids_by_source("upload", ["k1"])["k1"]
    assert store.uploads_only([a, upload]) == {upload}
    assert store.day_ids("2024-01-05", "2024-01-05") == [b]
    assert sorted(store.day_ids("2024-01-01", "2024-01-31")) == sorted([a, b, c])
    assert store.day_ids("2024-01-01", "2024-01-31", submitter="ALICE") == [c]
    assert store.day_ids("2023-12-01", "2023-12-01") == []
    assert store.listing_days([a, b, c]) == {a: "2024-01-02", b: "2024-01-05", c: "2024-01-07"}
    assert store.latest_day("2024-01-06") == "2024-01-05"
    assert store.adjacent_day("2024-01-05", forward=True) == "2024-01-07"
    assert store.adjacent_day("2024-01-05", forward=False) == "2024-01-02"
    # a second daily date: listed on both days, its listing day the later one
    store.upsert_papers([rec(source="hf-mirror", source_id="2401.00002", arxiv_id="2401.00002",
                             title="Paper number 2", extra={"daily_date": "2024-01-06"})])
    assert store.listing_days([b]) == {b: "2024-01-06"}
    for first, last, who in [("2024-01-01", "2024-01-31", None), ("2024-01-05", "2024-01-05", None),
                             ("2024-01-02", "2024-01-02", None), ("2023-12-01", "2023-12-01", None),
                             ("2024-01-01", "2024-01-31", "alice"), ("2024-01-01", "2024-01-31", "nobody")]:
        ids = store.day_ids(first, last, who)
        assert store.day_listing(first, last, who) == store.listing_days(ids), (first, last, who)


def test_audit_log(store):
    uid = user(store)
    store.audit(uid, "hide", "comment", 7, "spam")
    store.audit(None, "suspend", "user", uid)
    log = store.audit_log()
    assert [(e["actor"], e["action"], e["target_id"]) for e in log] == [("operator", "suspend", uid),
                                                                        ("alice", "hide", 7)]


# -- libraries and profiles -------------------------------------------------------------------------


def test_saves_and_feedback(store):
    store.upsert_papers([arxiv(1), arxiv(2)])
    a, b = (store.get_paper(f"2401.0000{i}").id for i in (1, 2))
    uid, other = user(store), user(store, "bob")
    assert store.save(uid, a) and not store.save(uid, a) and store.save(uid, a, "later") and store.save(uid, b)
    assert {(s["paper_id"], s["folder"]) for s in store.saves(uid)} == {(a, "saved"), (a, "later"), (b, "saved")}
    assert store.saves(other) == [] and len(store.save_events("2000-01-01", "2100-01-01")) == 2
    assert store.unsave(uid, a, "later") and not store.unsave(uid, a, "later")
    store.set_feedback(uid, a, "up")
    store.set_feedback(uid, a, "dismiss")
    store.set_feedback(uid, b, "down")
    assert store.feedback(uid) == {a: "dismiss", b: "down"} and store.feedback(other) == {}
    store.set_feedback(uid, b, None)
    assert store.feedback(uid) == {a: "dismiss"}


def test_follows_per_reader_idempotent_with_times(store):
    """Following an author: once per reader and key, the latest first, another reader's apart, the
    time kept when given (an imported follow), gone with unfollow and with the account."""
    uid, other = user(store), user(store, "bob")
    assert store.follow(uid, "yann-lecun", "Yann LeCun", at="2024-01-01T00:00:00Z")
    assert not store.follow(uid, "yann-lecun", "Y. LeCun")  # followed already: the first name stays
    assert store.follow(uid, "jane-smith", "Jane Smith")
    assert store.follow(other, "yann-lecun", "Yann LeCun")
    rows = store.follows(uid)
    assert [r["author_key"] for r in rows] == ["jane-smith", "yann-lecun"]
    assert rows[1] == {"author_key": "yann-lecun", "name": "Yann LeCun", "created_at": "2024-01-01T00:00:00Z"}
    assert store.unfollow(uid, "jane-smith") and not store.unfollow(uid, "jane-smith")
    assert [r["author_key"] for r in store.follows(uid)] == ["yann-lecun"]
    assert len(store.follows(other)) == 1 and store.follows(10**6) == []
    store.delete_user(other)
    assert store.follows(other) == []


def test_profile_subscription_and_feed_token(store):
    uid = user(store, email="a@example.org")
    p = store.profile(uid)
    assert p["digest"] == "off" and p["include_terms"] == [] and store.subscription(uid)["digest"] == "off"
    store.update_profile(uid, statement="quantum error correction", categories=["quant-ph"], feed_token_hash="fh")
    p = store.profile(uid)
    assert (p["statement"], p["categories"]) == ("quantum error correction", ["quant-ph"])
    assert store.user_by_feed_token("fh") == uid and store.user_by_feed_token("x") is None
    with pytest.raises(ValueError):
        store.update_profile(uid, no_such_field=1)
    store.update_profile(uid, digest="daily")
    first = store.subscription(uid)["subscribed_at"]
    assert first
    store.update_profile(uid, digest="weekly")
    assert store.subscription(uid)["subscribed_at"] == first  # still the same subscription
    store.update_profile(uid, digest="off")
    store.update_profile(uid, digest="daily")
    assert store.subscription(uid)["subscribed_at"] != first  # a new one
    assert store.digest_readers() == []  # the address is not verified
    assert [r["id"] for r in store.digest_readers(require_verified=False)] == [uid]
    store.mark_email_verified(uid)
    assert [r["id"] for r in store.digest_readers()] == [uid]
    store.set_email(uid, "a@example.org")  # the same address stays verified
    assert store.account(uid)["email_verified_at"]
    store.set_email(uid, "new@example.org")
    assert store.account(uid)["email_verified_at"] is None and store.digest_readers() == []


def test_interest_prefs_and_reset(store):
    uid = user(store)
    store.set_interest_pref(uid, "k1", name="Qubits", members=[1, 2])
    store.set_interest_pref(uid, "k1", muted=True)  # keeps name and members
    pref = store.interest_prefs(uid)["k1"]
    assert (pref["name"], bool(pref["muted"]), bool(pref["deleted"]), pref["members"]) == ("Qubits", True, False, [1, 2])
    store.update_profile(uid, statement="x")
    store.upsert_papers([arxiv(1)])
    store.set_feedback(uid, store.get_paper("2401.00001").id, "up")
    store.reset_recommendations(uid)
    assert store.interest_prefs(uid) == {} and store.feedback(uid) == {} and store.profile(uid)["statement"] == ""


def test_account_rows_and_restore_library(store):
    """What an account export reads (feedback, votes and comments with their times) and what its
    import writes: one transaction keeping the given times, existing rows kept, a second run adding
    nothing, and a failing row leaving nothing written."""
    a, b = papers(store, 2)
    uid, other = user(store), user(store, "bob")
    store.set_feedback(uid, a, "up")
    store.set_vote(uid, b, True)
    cid = store.add_comment(a, uid, "first")
    store.set_comment_hidden(cid, True)
    store.add_comment(b, other, "not mine")
    assert [(f["paper_id"], f["kind"]) for f in store.feedback_rows(uid)] == [(a, "up")]
    assert [v["paper_id"] for v in store.votes_of(uid)] == [b] and store.votes_of(other) == []
    assert [(c["body"], c["hidden_at"] is not None) for c in store.comments_of(uid)] == [("first", True)]
    then = "2023-05-06T07:08:09+00:00"
    rows = {"saves": [{"paper_id": a, "folder": "f", "created_at": then}],
            "feedback": [{"paper_id": a, "kind": "down", "created_at": then}, {"paper_id": b, "kind": "dismiss", "created_at": then}],
            "votes": [{"paper_id": a, "created_at": then}],
            "comments": [{"paper_id": b, "body": "old", "created_at": then, "hidden": False},
                         {"paper_id": b, "body": "gone", "created_at": then, "hidden": True}],
            "interest_prefs": [{"key": f"p{a}", "name": "Mine", "muted": 1, "deleted": 0, "members": [a, b]}],
            "profile": {"statement": "qubits", "categories": ["quant-ph"], "digest": "weekly", "timezone": "Europe/Paris"}}
    assert store.restore_library(uid, rows) == {"saves": 1, "feedback": 1, "votes": 1, "comments": 2, "interest_prefs": 1}
    assert store.saves(uid) == [{"paper_id": a, "folder": "f", "created_at": then}]
    assert {f["paper_id"]: (f["kind"], f["created_at"]) for f in store.feedback_rows(uid)}[b] == ("dismiss", then)
    assert store.feedback(uid)[a] == "up"  # rated later than the restored rating: kept
    assert {v["paper_id"]: v["created_at"] for v in store.votes_of(uid)}[a] == then
    assert [(c["body"], c["hidden_at"] is not None) for c in store.comments_of(uid)][1:] == [("old", False), ("gone", True)]
    assert [c["body"] for c in store.comments(b)] == ["not mine", "old"]  # "gone" stays hidden
    p = store.profile(uid)
    assert (p["statement"], p["categories"], p["digest"], p["timezone"]) == ("qubits", ["quant-ph"], "weekly", "Europe/Paris")
    assert p["subscribed_at"] and store.interest_prefs(uid)[f"p{a}"]["members"] == [a, b]
    again = store.restore_library(uid, rows)
    assert again == {"saves": 0, "feedback": 0, "votes": 0, "comments": 0, "interest_prefs": 1}
    assert len(store.comments_of(uid)) == 3 and len(store.saves(uid)) == 1
    bad = {**rows, "saves": [{"paper_id": b, "folder": "new", "created_at": then}, {"paper_id": 10**9, "folder": "x",
                                                                                   "created_at": then}]}
    with pytest.raises(Exception):
        store.restore_library(other, bad)  # no such paper: the whole transaction is undone
    assert store.saves(other) == [] and store.profile(other)["statement"] == ""


# -- digests ----------------------------------------------------------------------------------------


def papers(store: Store, n: int) -> list[int]:
    store.upsert_papers([arxiv(i) for i in range(1, n + 1)])
    return [store.get_paper(f"2401.{i:05d}").id for i in range(1, n + 1)]


def test_digest_record_pending_mark_and_ledger(store):
    uid = user(store, email="a@example.org")
    p1, p2, p3, p4 = papers(store, 4)
    d = store.record_digest(uid, "daily:2024-01-02", [p1, p2], [p3])
    assert (d["status"], d["paper_ids"], d["trending_ids"]) == ("pending", [p1, p2], [p3])
    assert store.record_digest(uid, "daily:2024-01-02", [p4], []) is None  # recorded once per period
    assert store.sent_ids(uid) == {p1, p2, p3}
    assert [p["id"] for p in store.pending_digests()] == [d["id"]]
    assert store.last_digest_at(uid) == d["created_at"]
    store.mark_digest(d["id"], "sent")
    assert store.pending_digests() == [] and store.digest(uid, "daily:2024-01-02")["status"] == "sent"
    assert store.digest(uid, "daily:2024-01-03") is None


def test_digest_failures_retry_then_release_the_ledger(store):
    uid = user(store)
    p1, p2, p5, p9 = papers(store, 4)
    keep = store.record_digest(uid, "daily:2024-01-01", [p9], [])
    store.mark_digest(keep["id"], "sent")
    d = store.record_digest(uid, "daily:2024-01-02", [p1, p2], [])
    fresh = store.record_digest(user(store, "bob"), "daily:2024-01-02", [p5], [])
    store.digest_failed(d["id"], "smtp down", "2024-01-02T08:00:00+00:00")
    pending = store.pending_digests()
    assert [p["id"] for p in pending] == [fresh["id"], d["id"]]  # fewest attempts first
    assert pending[1]["attempts"] == 1 and pending[1]["last_error"] == "smtp down"
    assert store.sent_ids(uid) == {p1, p2, p9}
    store.digest_failed(d["id"], "bounced", None)  # given up: its papers may go out again later
    assert store.digest(uid, "daily:2024-01-02")["status"] == "failed"
    assert store.sent_ids(uid) == {p9}
    assert store.first_failed_digest_at(uid) == d["created_at"]
    assert store.last_digest_at(uid) == keep["created_at"]


def test_two_schedulers_record_a_period_once(backend):
    a, b = backend(), backend()
    uid = user(a)
    p1, p2 = papers(a, 2)
    results = _race([lambda: a.record_digest(uid, "daily:2024-01-02", [p1], []),
                     lambda: b.record_digest(uid, "daily:2024-01-02", [p2], [])])
    assert sum(r is not None for r in results) == 1
    assert len(a.pending_digests()) == 1 and b.sent_ids(uid) in ({p1}, {p2})


# -- jobs -------------------------------------------------------------------------------------------


def test_jobs_enqueue_dedups_live_jobs(store):
    jid, created = store.enqueue_job("fetch", "2401.00001", {"arxiv_id": "2401.00001"})
    assert created and store.enqueue_job("fetch", "2401.00001", {"other": 1}) == (jid, False)
    other, created = store.enqueue_job("fetch", "2401.00002", {})
    assert created and other != jid
    job = store.claim_job("w1", 30)
    assert store.enqueue_job("fetch", "2401.00001", {}) == (jid, False)  # running counts as live
    assert store.finish_job(job["id"], "w1", "done", result={"ok": True})
    assert store.job(jid)["status"] == "done" and store.job(jid)["result"] == {"ok": True}
    again, created = store.enqueue_job("fetch", "2401.00001", {})
    assert created and again not in (jid, other)


def test_jobs_claim_once_delay_kinds_and_retry(store):
    jid, _ = store.enqueue_job("fetch", "a", {"n": 1})
    store.enqueue_job("later", "b", {}, delay_s=60)
    store.enqueue_job("digest", "c", {})
    job = store.claim_job("w1", 30, kinds=["fetch"])
    assert (job["id"], job["payload"], job["status"], job["attempts"]) == (jid, {"n": 1}, "running", 1)
    assert store.claim_job("w2", 30, kinds=["fetch", "later"]) is None  # claimed once; the other not due
    counts = store.job_counts()
    assert (counts["queued"], counts["running"]) == (2, 1) and counts["oldest_queued"]
    assert store.finish_job(jid, "w1", "queued", error="flaky", retry_in_s=0)
    job = store.claim_job("w2", 30, kinds=["fetch"])
    assert (job["id"], job["attempts"], job["last_error"]) == (jid, 2, "flaky")
    assert store.claim_job("w3", 30)["kind"] == "digest"
    assert store.claim_job("w3", 30) is None


def test_jobs_lease_expiry_and_lost_lease(backend):
    a, b = backend(), backend()
    jid, _ = a.enqueue_job("fetch", "x", {})
    assert a.claim_job("w1", 2)["id"] == jid
    assert b.claim_job("w2", 30) is None
    time.sleep(2.1)
    job = b.claim_job("w2", 30)  # w1 crashed or stalled: its lease ran out
    assert (job["id"], job["attempts"], job["locked_by"]) == (jid, 2, "w2")
    assert not a.finish_job(jid, "w1", "done")  # w1 lost the lease: its result does not count
    assert b.finish_job(jid, "w2", "done") and a.job(jid)["status"] == "done"


# -- concurrent writers -----------------------------------------------------------------------------


def _race(fns: list[Callable[[], object]]) -> list[object]:
    """Run the callables at once in threads (started together); re-raise the first error."""
    results: list[object] = [None] * len(fns)
    errors: list[BaseException] = []
    start = threading.Barrier(len(fns))

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = fns[i]()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def test_concurrent_ingest_from_two_stores_makes_no_duplicates(backend):
    a, b = backend(), backend()

    def ingest(s: Store, source: str) -> None:
        for start in range(1, 61, 6):  # many small transactions, interleaving with the other writer
            s.upsert_papers([arxiv(i, source=source) for i in range(start, start + 6)])

    _race([lambda: ingest(a, "arxiv"), lambda: ingest(b, "kaggle")])
    assert a.stats()["papers"] == 60 and b.stats()["papers"] == 60
    assert {s["source"] for s in b.get_paper("2401.00060").sources} == {"arxiv", "kaggle"}
    revs = [p["rev"] for p in a.papers_since(0, limit=1000)]
    assert len(revs) == 60 and len(set(revs)) == 60  # every paper once, at a distinct revision


def test_concurrent_writers_lose_no_update(backend):
    a, b = backend(), backend()
    a.upsert_papers([arxiv(1)])
    pid = a.get_paper("2401.00001").id
    users = [a.create_user(f"u{i}", None, "h") for i in range(20)]

    def vote(s: Store, ids: list[int]) -> None:
        for uid in ids:
            s.set_vote(uid, pid, True)
            s.add_comment(pid, uid, "hi")
            s.rate_hit([("shared", 1000, 60)])

    _race([lambda: vote(a, users[::2]), lambda: vote(b, users[1::2])])
    assert b.member_votes([pid]) == {pid: 20} and a.comment_counts([pid]) == {pid: 20}
    assert a.rate_hit([("shared", 20, 60)]) is not None  # all 20 hits were counted
    assert a.rate_hit([("shared", 21, 60)]) is None


def test_concurrent_claims_run_each_job_once(backend):
    a, b = backend(), backend()
    ids = {a.enqueue_job("fetch", str(i), {})[0] for i in range(30)}

    def drain(s: Store, worker: str) -> list[int]:
        got = []
        while (job := s.claim_job(worker, 60)) is not None:
            got.append(job["id"])
            assert s.finish_job(job["id"], worker, "done")
        return got

    first, second = _race([lambda: drain(a, "w1"), lambda: drain(b, "w2")])
    assert sorted(first + second) == sorted(ids)  # every job once, none twice
    assert a.job_counts().get("done") == 30


def test_followers_never_skip_concurrent_commits(backend):
    """Three writers ingest and embed at once while a follower reads ``rev > watermark`` (and
    ``seq > watermark``) as a derived index does: it must see every paper and vector, none skipped
    because a smaller revision committed after a larger one was read."""
    writers, follower = [backend() for _ in range(3)], backend()
    stop = threading.Event()
    seen_papers: set[int] = set()
    seen_vectors: set[int] = set()

    def write(s: Store, w: int) -> None:
        for start in range(w * 1000, w * 1000 + 60, 3):
            s.upsert_papers([arxiv(i) for i in range(start, start + 3)])
            ids = [s.get_paper(f"2401.{i:05d}").id for i in range(start, start + 3)]
            s.put_embeddings("m", [(pid, f"h{pid}", b"\0" * 8) for pid in ids])

    def follow() -> None:
        rev = seq = 0
        while True:
            done = stop.is_set()  # read before the last pass, so the last pass sees everything
            for p in follower.papers_since(rev, limit=7):
                assert p["rev"] > rev
                rev = p["rev"]
                seen_papers.add(p["id"])
            for pid, s, _ in follower.embeddings_since("m", seq, limit=7):
                assert s > seq
                seq = s
                seen_vectors.add(pid)
            if done and rev == follower.max_rev():
                return

    reader = threading.Thread(target=follow)
    reader.start()
    try:
        _race([lambda s=s, w=w: write(s, w) for w, s in enumerate(writers)])
    finally:
        stop.set()
        reader.join(60)
    assert follower.count_rows("papers") == 180 and follower.count_embeddings("m") == 180
    assert len(seen_papers) == 180 and len(seen_vectors) == 180


def test_copy_tables_round_trip_and_check(backend, tmp_path):
    """Rows come out by key in pages and go back in unchanged, ids kept, re-loads skipped."""
    s = backend()
    s.upsert_papers([arxiv(i) for i in range(1, 6)])
    uid = user(s)
    s.set_vote(uid, s.get_paper("2401.00001").id, True)
    assert s.check() == []
    cols = s.table_columns("papers")
    assert cols[0] == "id" and "rev" in cols
    first, rest = s.table_rows("papers", None, 2), s.table_rows("papers", [2], 100)
    assert [r[0] for r in first + rest] == sorted(r[0] for r in first + rest) and len(first + rest) == 5
    assert s.load_rows("papers", cols, first, after=[2]) == 0  # already there: skipped, not doubled
    assert s.copy_progress() == {"papers": [2]}
    with pytest.raises(ValueError):
        s.table_rows("schema_migrations; DROP TABLE papers", None, 1)


def _record_type(tp):
    """The TypedDict inside ``X | None``, ``list[X]`` or ``dict[K, X]``."""
    while not typing.is_typeddict(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        assert args, f"no record type in {tp}"
        tp = args[-1]
    return tp


def test_records_have_their_declared_shape(store):
    """Every row-returning method returns exactly the keys of its declared record (records.py), so a
    backend cannot drift in the shape of what it returns."""
    store.upsert_papers([arxiv(1)])
    pid = store.get_paper("2401.00001").id
    uid = store.create_user("alice", "a@example.org", "h")
    store.create_session("sh", uid, 1)
    store.create_api_token(uid, "t", "th")
    cid = store.add_comment(pid, uid, "hi")
    store.submit(pid, uid, "2024-01-02")
    store.audit(uid, "hide", "comment", cid, "why")
    store.save(uid, pid)
    store.set_feedback(uid, pid, "up")
    store.set_vote(uid, pid, True)
    store.set_interest_pref(uid, "k", name="n")
    store.update_profile(uid, digest="daily")
    store.record_digest(uid, "2024-01-02", [pid], [])
    store.enqueue_job("submit", "k", {"user_id": uid})
    store.follow(uid, "yann-lecun", "Yann LeCun")
    calls = {
        "user_by_name": lambda: store.user_by_name("alice"), "account": lambda: store.account(uid),
        "users_by_email": lambda: store.users_by_email("a@example.org")[0], "list_users": lambda: store.list_users()[0],
        "session_user": lambda: store.session_user("sh"), "api_tokens": lambda: store.api_tokens(uid)[0],
        "token_user": lambda: store.token_user("th"), "comments": lambda: store.comments(pid)[0],
        "comment": lambda: store.comment(cid), "recent_comments": lambda: store.recent_comments()[0],
        "submissions": lambda: store.submissions([pid])[pid], "submission": lambda: store.submission(pid),
        "recent_submissions": lambda: store.recent_submissions()[0], "audit_log": lambda: store.audit_log()[0],
        "saves": lambda: store.saves(uid)[0], "profile": lambda: store.profile(uid), "user": lambda: store.user(uid),
        "subscription": lambda: store.subscription(uid), "interest_prefs": lambda: store.interest_prefs(uid)["k"],
        "digest": lambda: store.digest(uid, "2024-01-02"), "pending_digests": lambda: store.pending_digests()[0],
        "digest_readers": lambda: store.digest_readers(False)[0], "papers_since": lambda: store.papers_since(0)[0],
        "claim_job": lambda: store.claim_job("w", 10), "job": lambda: store.job(1),
        "feedback_rows": lambda: store.feedback_rows(uid)[0], "votes_of": lambda: store.votes_of(uid)[0],
        "comments_of": lambda: store.comments_of(uid)[0], "follows": lambda: store.follows(uid)[0],
    }
    typed = {name for name in dir(Store) if not name.startswith("_") and callable(getattr(Store, name))
             and _has_record(typing.get_type_hints(getattr(Store, name)).get("return"))}
    assert typed - {"record_digest"} == set(calls)  # every method that returns records is checked here
    for name, call in calls.items():
        record = _record_type(typing.get_type_hints(getattr(Store, name))["return"])
        row = call()
        assert row is not None, name
        assert record.__required_keys__ <= set(row) <= set(record.__annotations__), (name, sorted(row))


def _has_record(tp) -> bool:
    return tp is not None and (typing.is_typeddict(tp) or any(_has_record(a) for a in typing.get_args(tp)))


def test_leases_one_holder_until_released_or_expired(backend):
    a, b = backend(), backend()
    assert a.take_lease("digest:1", "host-a", 60)
    assert not b.take_lease("digest:1", "host-b", 60)
    assert a.take_lease("digest:1", "host-a", 60)  # the holder extends it
    b.release_lease("digest:1", "host-b")  # not b's to release
    assert not b.take_lease("digest:1", "host-b", 60)
    a.release_lease("digest:1", "host-a")
    assert b.take_lease("digest:1", "host-b", 2.0)
    assert not a.take_lease("digest:1", "host-a", 60)
    time.sleep(2.1)
    assert a.take_lease("digest:1", "host-a", 60)  # b's lease ran out (b crashed)
    got = _race([lambda s=s, h=f"host-{i}": s.take_lease("harvest:cs", h, 60) for i, s in enumerate([a, b] * 3)])
    assert got.count(True) == 1  # six hosts at once: exactly one holds it
