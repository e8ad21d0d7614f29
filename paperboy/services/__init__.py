"""Ranking services shared by every front end: search (and later similar, trending, recommend)."""
