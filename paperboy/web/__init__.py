"""The web front end: HTML pages, the JSON API (Hugging Face compatible routes), static files."""
