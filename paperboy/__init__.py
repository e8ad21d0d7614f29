"""paperboy: a self-hostable daily-papers engine."""

__version__ = "0.1.0"
