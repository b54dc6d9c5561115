"""DESIGN.md §3 import rules, read from the source: imports point downward, resources have one owner."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "digest"

# Which of our own modules each module may import. A new module must be added here on purpose.
ALLOWED: dict[str, set[str]] = {
    "digest": set(),
    "digest.__main__": {"digest.cli"},
    "digest.models": set(),
    "digest.errors": set(),
    "digest.config": {"digest.errors"},
    "digest.ingest": {"digest.models", "digest.errors"},
    "digest.store": {
        "digest.store.db",
        "digest.store.digests",
        "digest.store.ledger",
        "digest.store.papers",
        "digest.store.schema",
        "digest.store.subscribers",
    },
    "digest.store.schema": set(),
    "digest.store.db": {"digest.errors", "digest.store.schema"},
    "digest.store.papers": {"digest.models", "digest.store.db"},
    "digest.store.subscribers": {"digest.models", "digest.store.db"},
    "digest.store.digests": {"digest.models", "digest.store.db"},
    "digest.store.ledger": {"digest.models", "digest.store.db"},
    "digest.profiles": {"digest.models", "digest.errors"},
    "digest.rank": {"digest.models", "digest.errors"},
    "digest.render": {"digest.models", "digest.errors", "digest.templating"},
    "digest.templating": set(),
    "digest.cadence": {"digest.models"},
    "digest.schedule": {
        "digest",
        "digest.config",
        "digest.cadence",
        "digest.errors",
        "digest.models",
        "digest.pipeline",
        "digest.profiles",
        "digest.store",
    },
    "digest.channels": {
        "digest.channels.base",
        "digest.channels.email",
        "digest.channels.files",
        "digest.channels.webhook",
    },
    "digest.channels.base": {"digest.models"},
    "digest.channels.email": {"digest.channels.base", "digest.config", "digest.errors"},
    "digest.channels.files": {"digest.channels.base", "digest.config", "digest.errors"},
    "digest.channels.webhook": {"digest.channels.base", "digest.config", "digest.errors"},
    "digest.pipeline": {
        "digest",
        "digest.ingest",
        "digest.profiles",
        "digest.cadence",
        "digest.rank",
        "digest.render",
        "digest.store",
        "digest.channels",
        "digest.config",
        "digest.models",
        "digest.errors",
    },
    "digest.cli": {
        "digest",
        "digest.channels",
        "digest.config",
        "digest.ingest",
        "digest.pipeline",
        "digest.profiles",
        "digest.render",
        "digest.schedule",
        "digest.cadence",
        "digest.store",
        "digest.models",
        "digest.errors",
    },
}
# Outside resources and the one module that owns each.
OWNERS = {
    "sqlite3": {  # only the store speaks SQL
        "digest.store.db",
        "digest.store.papers",
        "digest.store.subscribers",
        "digest.store.digests",
        "digest.store.ledger",
    },
    "smtplib": {"digest.channels.email"},
    "httpx": {"digest.channels.webhook"},
    "socket": {"digest.channels.webhook"},  # resolving a webhook's host before checking where it points
    "apscheduler": {"digest.schedule"},
    "fcntl": {"digest.schedule"},
}
# Pure modules: no files, network, environment or clock.
PURE = {"digest.models", "digest.errors"}
IMPURE_CALLS = {"open", "now", "today", "utcnow", "getenv", "read_text", "read_bytes", "write_text", "stat", "time"}


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "digest":
                names.update(f"digest.{alias.name}" for alias in node.names)
    return names


def test_every_module_is_in_the_table() -> None:
    assert set(modules()) == set(ALLOWED)


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_imports_point_downward(name: str) -> None:
    ours = imports(modules()[name]) & set(ALLOWED)
    extra = ours - ALLOWED[name]
    assert not extra, f"{name} may not import {sorted(extra)}"


@pytest.mark.parametrize("resource", sorted(OWNERS))
def test_each_resource_has_one_owner(resource: str) -> None:
    users = {name for name, tree in modules().items() if any(i.split(".")[0] == resource for i in imports(tree))}
    assert users <= OWNERS[resource]


def _calls(node: ast.AST) -> set[str]:
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def test_ingest_parse_touches_no_file_clock_or_environment() -> None:
    tree = modules()["digest.ingest"]
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    reachable, todo = set(), ["parse"]
    while todo:  # parse and every module function it calls
        name = todo.pop()
        if name in reachable or name not in functions:
            continue
        reachable.add(name)
        todo.extend(_calls(functions[name]))
    assert {"read", "load", "_open_regular"}.isdisjoint(reachable)
    for name in reachable:
        assert not (_calls(functions[name]) & IMPURE_CALLS), f"ingest.{name} does I/O"
        used = {node.id for node in ast.walk(functions[name]) if isinstance(node, ast.Name)}
        assert not (used & {"os", "stat", "Path"}), f"ingest.{name} touches the file system"


@pytest.mark.parametrize("name", ["digest.rank", "digest.render", "digest.cadence"])
def test_rank_and_render_touch_no_file_clock_or_environment(name: str) -> None:
    tree = modules()[name]
    assert not (_calls(tree) & IMPURE_CALLS)
    assert imports(tree).isdisjoint({"os", "time", "socket", "sqlite3", "io", "smtplib", "httpx"})


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_modules_import_only_stdlib_values(name: str) -> None:
    assert imports(modules()[name]) <= {"__future__", "dataclasses", "datetime", "typing"}  # typing: NamedTuple
