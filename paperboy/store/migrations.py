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
]

LATEST = MIGRATIONS[-1][0]
