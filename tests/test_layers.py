"""Layers point down (DESIGN.md): front ends -> services -> indexes/embed -> store -> models.

Every ``import`` in paperboy/ is read with ``ast`` (function-level, ``TYPE_CHECKING`` and relative
imports included: an import circle is one even when only the type checker follows it) and checked
against the layer it may not reach. Modules outside these rules (``paperboy.normalize``,
``paperboy.query``, ``paperboy.models``, ``paperboy.records``, ``paperboy.errors``,
``paperboy.settings``) are the bottom layer, which anyone may import."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Protocol

import pytest

ROOT = Path(__file__).resolve().parents[1] / "paperboy"

BOTTOM = ("paperboy.normalize", "paperboy.query", "paperboy.models", "paperboy.records", "paperboy.errors",
          "paperboy.settings")
FRONT = ("paperboy.engine", "paperboy.web", "paperboy.cli", "paperboy.cli_ops", "paperboy.cli_users",
         "paperboy.cli_mcp", "paperboy.mcp_server")

# package -> the packages (or modules) above it, which it must never import
RULES: dict[str, tuple[str, ...]] = {
    "paperboy.services": FRONT,
    "paperboy.index": ("paperboy.services",) + FRONT,
    "paperboy.embed": ("paperboy.services",) + FRONT,
    "paperboy.store": ("paperboy.index", "paperboy.embed", "paperboy.services") + FRONT,
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file; ``from X import y`` counts as
    ``X.y`` too, so that ``from .. import engine`` is seen as importing ``paperboy.engine``."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names if a.name != "*"]
    return out


def within(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def violations(package: str, root: Path = ROOT) -> list[str]:
    found: dict[tuple[str, int, str], str] = {}  # one line per import statement and layer
    for path in sorted((root / package.split(".", 1)[1]).rglob("*.py")):
        where = str(path.relative_to(root.parent))
        for line, mod in imports(path, root):
            if any(within(mod, b) for b in BOTTOM):
                continue
            for above in RULES[package]:
                if within(mod, above):
                    found.setdefault((where, line, above), f"{where}:{line} imports {mod} ({package} is below {above})")
    return [found[k] for k in sorted(found)]


def test_the_checker_sees_relative_function_level_and_type_checking_imports(tmp_path):
    pkg = tmp_path / "paperboy" / "services"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..engine import Engine\n"
                              "def f():\n    from .. import web\n    import paperboy.cli\n    from ..query import Q\n")
    root = tmp_path / "paperboy"
    assert [m for _, m in imports(pkg / "x.py", root)] == ["typing", "typing.TYPE_CHECKING", "paperboy.engine",
                                                    "paperboy.engine.Engine", "paperboy", "paperboy.web",
                                                    "paperboy.cli", "paperboy.query", "paperboy.query.Q"]
    assert violations("paperboy.services", root) == [
        "paperboy/services/x.py:3 imports paperboy.engine (paperboy.services is below paperboy.engine)",
        "paperboy/services/x.py:5 imports paperboy.web (paperboy.services is below paperboy.web)",
        "paperboy/services/x.py:6 imports paperboy.cli (paperboy.services is below paperboy.cli)"]


@pytest.mark.parametrize("package", sorted(RULES))
def test_layers_point_down(package):
    assert violations(package) == []


def test_the_recommender_is_put_together_in_one_place():
    """``services.recommend.build_recommender`` is the only constructor call: the engine keeps
    what it builds, and ``paperboy eval recs`` measures that same recommender."""
    calls = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Recommender":
                calls.append(str(path.relative_to(ROOT.parent)))
    assert calls == ["paperboy/services/recommend.py"]


def protocol_members(proto: type) -> set[str]:
    names: set[str] = set()
    for cls in proto.__mro__:
        if cls in (object, Protocol) or cls.__module__ == "typing":
            continue
        names |= set(getattr(cls, "__annotations__", {}))
        names |= {n for n, v in vars(cls).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))}
    return names


@pytest.mark.parametrize("proto", ["library.ImportDeps", "library.RecommendDeps", "library.SearchDeps",
                                   "digest.DigestDeps", "jobs.JobDeps"])
def test_the_engine_has_what_each_service_asks_for(proto, tmp_path):
    """The services name what they use as protocols and the engine is handed in their place:
    every member they name must be the engine's (a method or property, or an attribute it sets)."""
    import importlib

    from paperboy.engine import Engine

    module, name = proto.split(".")
    members = protocol_members(getattr(importlib.import_module(f"paperboy.services.{module}"), name))
    engine = Engine.from_settings(home=tmp_path)  # opens nothing until used
    assert members and not {m for m in members if not hasattr(Engine, m) and m not in vars(engine)}
