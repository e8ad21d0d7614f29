"""Regenerate docs/settings.md from the settings table: python scripts/settings_doc.py"""

from pathlib import Path

from paperboy.settings import SETTINGS

lines = ["# Settings", "",
         "Precedence: environment variable `PAPERBOY_<NAME>` (upper case) > config file > default.",
         "The config file is TOML at `PAPERBOY_CONFIG`, else `<home>/config.toml`, with the names below as keys;",
         "an unknown key or a value of the wrong type is an error. `paperboy settings` prints the current values.",
         "", "| name | environment | default | what it does |", "|---|---|---|---|"]
for s in SETTINGS:
    default = "per-user data dir (e.g. `~/.local/share/paperboy`)" if s.name == "home" else f"`{s.default}`"
    lines.append(f"| `{s.name}` | `PAPERBOY_{s.name.upper()}` | {default} | {s.help} |")
lines += ["", "Example `config.toml`:", "", "```toml", "batch_size = 2000", 'oai_prefix = "arXiv"',
          "oai_delay = 5.0", 'search_fusion = "rrf"', "```"]
(Path(__file__).resolve().parents[1] / "docs" / "settings.md").write_text("\n".join(lines) + "\n")
