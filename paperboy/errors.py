"""One small error hierarchy; front ends turn these into clear messages."""


class PaperboyError(Exception):
    """Base class of every error paperboy raises on purpose."""


class ConfigError(PaperboyError):
    """A setting or config file is invalid."""


class FormatError(PaperboyError):
    """An input file is not the format it claims to be."""


class SourceError(PaperboyError):
    """A remote source (OAI-PMH, arXiv API) failed or answered with an error."""


class BadRequest(PaperboyError):
    """The request or input is malformed or out of bounds (HTTP 400)."""


class NotFound(PaperboyError):
    """The requested object does not exist."""


class StoreError(PaperboyError):
    """The store cannot be opened or migrated."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now (down, restarting, out of connections): try later."""


class Conflict(PaperboyError):
    """The change clashes with existing data (a taken user name)."""


class Forbidden(PaperboyError):
    """The caller may not do this (not signed in, not the owner, rate limited)."""


class RateLimited(Forbidden):
    """Too many attempts (failed logins): wait and try again."""
