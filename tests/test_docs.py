"""Every setting, command and format is documented (as datasette's test_docs does)."""

import re
from pathlib import Path

from paperboy import sources
from paperboy.cli import main
from paperboy.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_documented():
    doc = (ROOT / "docs" / "settings.md").read_text()
    for s in SETTINGS:
        assert f"| `{s.name}` | `PAPERBOY_{s.name.upper()}` |" in doc, s.name


def test_every_command_documented():
    names = []
    for name, cmd in main.commands.items():
        names += [f"{name} {sub}" for sub in getattr(cmd, "commands", {})] or [name]
    for name in names:
        assert f"`paperboy {name}" in README, name


def test_every_format_documented():
    table = "\n".join(line for line in README.splitlines() if line.startswith("| `"))
    documented = set(re.findall(r"`([a-z-]+)`", table))
    assert set(sources.FORMATS) <= documented


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert len(blocks) == 2
    assert blocks[1] in (ROOT / ".ci" / "run").read_text()


def test_every_api_route_documented():
    from paperboy.web import api, authors_pages, export_api, paper_files, topics_pages

    documented = [r for m in (authors_pages, topics_pages) for r in m.router.routes if r.path.startswith("/api/")]
    for route in api.router.routes + export_api.router.routes + paper_files.router.routes + documented:
        for method in route.methods - {"HEAD"}:
            assert f"`{method} {route.path.replace('{ref:path}', '{id}').replace('{key:path}', '{key}').split('?')[0]}" in README, (method, route.path)
