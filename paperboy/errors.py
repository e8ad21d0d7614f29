"""One small error hierarchy; front ends turn these into clear messages."""


class PaperboyError(Exception):
    """Base class of every error paperboy raises on purpose."""


class ConfigError(PaperboyError):
    """A setting or config file is invalid."""


class FormatError(PaperboyError):
    """An input file is not the format it claims to be."""


class SourceError(PaperboyError):
    """A remote source (OAI-PMH, arXiv API) failed or answered with an error."""


class NotFound(PaperboyError):
    """The requested object does not exist."""


class StoreError(PaperboyError):
    """The store cannot be opened or migrated."""
