"""Versioned schema migrations, recorded in the ``schema_migrations`` table.

Each migration is (version, name, SQL). SQL here is portable between SQLite and PostgreSQL except
where a backend overrides a type (``{pk}`` is the auto-increment primary key declaration).
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "papers, sources, cursors, ingest runs",
        """
CREATE TABLE papers (
    id {pk},
    canonical_id TEXT NOT NULL UNIQUE,
    arxiv_id TEXT UNIQUE,
    arxiv_version INTEGER,
    versions TEXT NOT NULL DEFAULT '{{}}',
    doi TEXT,
    title TEXT NOT NULL,
    title_key TEXT NOT NULL,
    abstract TEXT NOT NULL DEFAULT '',
    authors TEXT NOT NULL DEFAULT '[]',
    categories TEXT NOT NULL DEFAULT '[]',
    primary_category TEXT,
    submitted TEXT,
    updated TEXT,
    links TEXT NOT NULL DEFAULT '{{}}',
    comments TEXT,
    journal_ref TEXT,
    authority INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL
);
CREATE INDEX papers_doi ON papers (doi);
CREATE INDEX papers_title_key ON papers (title_key);
CREATE INDEX papers_submitted ON papers (submitted);
CREATE TABLE paper_sources (
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    first_seen TEXT NOT NULL,
    extra TEXT,
    PRIMARY KEY (source, source_id)
);
CREATE INDEX paper_sources_paper ON paper_sources (paper_id);
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE ingest_runs (
    id {pk},
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    counts TEXT NOT NULL DEFAULT '{{}}',
    errors TEXT NOT NULL DEFAULT '[]'
);
""",
    ),
    (
        2,
        "change counter for derived indexes, embeddings per (model, paper)",
        """
ALTER TABLE papers ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
UPDATE papers SET rev = id;
CREATE INDEX papers_rev ON papers (rev);
CREATE TABLE embeddings (
    model TEXT NOT NULL,
    paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    content_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (model, paper_id)
);
CREATE INDEX embeddings_seq ON embeddings (model, seq);
CREATE INDEX embeddings_hash ON embeddings (model, content_hash);
""",
    ),
    (
        3,
        "community: users, sessions, API tokens, votes, comments, submissions, login failures",
        """
CREATE TABLE users (
    id {pk},
    name TEXT NOT NULL UNIQUE,
    email TEXT,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE api_tokens (
    id {pk},
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE TABLE votes (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_id)
);
CREATE INDEX votes_paper ON votes (paper_id);
CREATE INDEX votes_created ON votes (created_at);
CREATE TABLE comments (
    id {pk},
    paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX comments_paper ON comments (paper_id);
CREATE TABLE submissions (
    paper_id INTEGER PRIMARY KEY REFERENCES papers (id) ON DELETE CASCADE,
    user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    day TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX submissions_day ON submissions (day);
CREATE INDEX paper_sources_daily ON paper_sources (json_extract(extra, '$.daily_date'));
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);
""",
    ),
    (
        4,
        "libraries: saves, feedback, profiles, interest preferences, digests and the sent ledger",
        """
CREATE TABLE saves (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    folder TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_id, folder)
);
CREATE INDEX saves_created ON saves (created_at);
CREATE TABLE feedback (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_id)
);
CREATE TABLE profiles (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    statement TEXT NOT NULL DEFAULT '',
    include_terms TEXT NOT NULL DEFAULT '[]',
    exclude_terms TEXT NOT NULL DEFAULT '[]',
    categories TEXT NOT NULL DEFAULT '[]',
    digest TEXT NOT NULL DEFAULT 'off',
    digest_hour INTEGER NOT NULL DEFAULT 7,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    quiet_days TEXT NOT NULL DEFAULT 'skip',
    feed_token_hash TEXT UNIQUE,
    updated_at TEXT NOT NULL
);
CREATE TABLE interest_prefs (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    name TEXT,
    muted INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    members TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (user_id, key)
);
CREATE TABLE digests (
    id {pk},
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period TEXT NOT NULL,
    status TEXT NOT NULL,
    paper_ids TEXT NOT NULL,
    trending_ids TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    UNIQUE (user_id, period)
);
CREATE TABLE sent (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    digest_id INTEGER NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, paper_id)
);
""",
    ),
    (
        5,
        "public instance: case-folded names, roles, verification, suspension, token scopes, moderation, "
        "audit log, rate limits, jobs, digest retries",
        """
ALTER TABLE users ADD COLUMN name_key TEXT;
UPDATE users SET name_key = lower(name) || CASE WHEN id = (SELECT MIN(u2.id) FROM users u2
    WHERE lower(u2.name) = lower(users.name)) THEN '' ELSE '#' || id END;
CREATE UNIQUE INDEX users_name_key ON users (name_key);
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
ALTER TABLE users ADD COLUMN email_verified_at TEXT;
ALTER TABLE users ADD COLUMN suspended_at TEXT;
ALTER TABLE users ADD COLUMN deleted_at TEXT;
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'write';
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE comments ADD COLUMN hidden_at TEXT;
ALTER TABLE submissions ADD COLUMN hidden_at TEXT;
ALTER TABLE profiles ADD COLUMN subscribed_at TEXT;
ALTER TABLE digests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN next_attempt_at TEXT;
ALTER TABLE digests ADD COLUMN last_error TEXT;
CREATE TABLE audit_log (
    id {pk},
    at TEXT NOT NULL,
    actor_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id INTEGER,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE TABLE rate_events (
    key TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX rate_events_key ON rate_events (key, at);
CREATE TABLE jobs (
    id {pk},
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{{}}',
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    run_after TEXT NOT NULL,
    locked_by TEXT,
    locked_until TEXT,
    last_error TEXT,
    result TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX jobs_live_key ON jobs (kind, key) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_due ON jobs (status, run_after);
""",
    ),
    (
        6,
        "copy progress of paperboy store copy (per table: the last key copied)",
        """
CREATE TABLE copy_progress (
    name TEXT PRIMARY KEY,
    after_key TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
""",
    ),
    (
        7,
        "leases: one holder at a time for work any host may start (a digest being mailed, a harvest)",
        """
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until TEXT NOT NULL
);
""",
    ),
    (
        8,
        "follows: the authors a reader follows (by author key, with the name as shown when followed)",
        """
CREATE TABLE follows (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    author_key TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, author_key)
);
""",
    ),
]

LATEST = MIGRATIONS[-1][0]
