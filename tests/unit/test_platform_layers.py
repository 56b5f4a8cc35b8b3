"""The platform's imports point one way (docs/architecture.md, "Layers of the platform").

Read from the source with ``ast``, nothing imported: every import of an ``ates.platform``
module inside ``src/ates/platform`` — at module level, in a function, or under
``TYPE_CHECKING`` — goes to a module of the same layer or a lower one, and no chain of
them comes back to where it started. An import inside a function is how a cycle hides, so
there is none of a platform module unless it is listed in ``LAZY`` with its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from pathlib import Path

PLATFORM = Path(__file__).resolve().parents[2] / "src" / "ates" / "platform"
PREFIX = "ates.platform"

# Lowest first. A module belongs to the layer of the longest name here that is it or a
# package holding it (``broker`` holds ``broker.nats.adapter``).
LAYERS: tuple[tuple[str, ...], ...] = (
    # plumbing that knows no other part of the platform
    (
        "api_errors",
        "apidocs",
        "closing",
        "dates",
        "groupcommit",
        "headers",
        "limits",
        "money",
        "params",
        "redaction",
        "security",
        "server_process",
        "sql",
        "sqlite",
        "sqltypes",
        "standing",
        "tcp",
        "telemetry",
        "text",
    ),
    ("events",),
    ("db", "tables", "migrations"),
    ("broker",),
    ("tracing", "uow"),
    ("consumer", "outbox"),
    ("runtime",),
    ("rebuild", "deadletters", "gauges", "status", "sessions"),
    ("dependencies", "pages", "middleware", "web", "login", "admin", "catalog"),
    ("service",),
)

# (importing module, imported module) -> why the import waits until the function runs
LAZY: Mapping[tuple[str, str], str] = {
    (f"{PREFIX}.broker", f"{PREFIX}.broker.nats.adapter"): (
        "create_broker: a process loads the client library of its own broker only"
    ),
    (f"{PREFIX}.broker", f"{PREFIX}.broker.rabbitmq.adapter"): (
        "create_broker: a process loads the client library of its own broker only"
    ),
    (f"{PREFIX}.broker", f"{PREFIX}.broker.kafka.adapter"): (
        "create_broker: a process loads the client library of its own broker only"
    ),
}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PLATFORM).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PREFIX, *parts])


def resolve(module: str, name: str) -> str:
    """``from ates.platform import sessions`` imports a module; ``from
    ates.platform.broker import Ack`` a name of one."""
    candidate = f"{module}.{name}"
    relative = candidate.removeprefix(PREFIX).lstrip(".").replace(".", "/")
    if (PLATFORM / f"{relative}.py").is_file() or (PLATFORM / relative).is_dir():
        return candidate
    return module


def imports_of(path: Path) -> Iterator[Import]:
    return imports_in(module_name(path), path.read_text(encoding="utf-8"))


def imports_in(source: str, text: str) -> Iterator[Import]:
    tree = ast.parse(text)
    functions = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    in_functions = {id(inner) for f in functions for inner in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [resolve(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            if target == PREFIX or target.startswith(f"{PREFIX}."):
                yield Import(source, target, node.lineno, id(node) in in_functions)


def layer_of(module: str) -> int:
    name = module.removeprefix(PREFIX).lstrip(".")
    best: tuple[int, int] | None = None  # (length of the match, layer)
    for index, layer in enumerate(LAYERS):
        for entry in layer:
            if (name == entry or name.startswith(f"{entry}.")) and (
                best is None or len(entry) > best[0]
            ):
                best = (len(entry), index)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (and the docs)")
    return best[1]


def find_cycle(graph: Mapping[str, Set[str]]) -> list[str] | None:
    """A chain of imports that comes back to its start, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def platform_imports() -> list[Import]:
    return [found for path in sorted(PLATFORM.rglob("*.py")) for found in imports_of(path)]


def test_no_platform_module_is_imported_inside_a_function_unless_listed() -> None:
    hidden = [
        f"{i.source}:{i.line} imports {i.target}"
        for i in platform_imports()
        if i.in_function and (i.source, i.target) not in LAZY
    ]
    assert not hidden, "imports inside functions (hide cycles; import at the top):\n" + "\n".join(
        hidden
    )


def test_every_lazy_import_listed_still_exists() -> None:
    lazy = {(i.source, i.target) for i in platform_imports() if i.in_function}
    assert set(LAZY) <= lazy, f"listed but gone: {set(LAZY) - lazy}"


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{i.source}:{i.line} (layer {layer_of(i.source)}) imports {i.target} "
        f"(layer {layer_of(i.target)})"
        for i in platform_imports()
        if layer_of(i.target) > layer_of(i.source)
    ]
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_no_import_cycle_in_the_platform() -> None:
    graph: dict[str, set[str]] = {}
    for i in platform_imports():
        if i.target != i.source:
            graph.setdefault(i.source, set()).add(i.target)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"web": {"pages", "dates"}, "pages": {"sessions"}, "sessions": {"web"}, "dates": set()}
    assert find_cycle(graph) == ["pages", "sessions", "web", "pages"]
    assert find_cycle({"web": {"pages"}, "pages": {"sessions"}}) is None


def test_the_import_scan_sees_every_kind_of_import() -> None:
    text = """
from typing import TYPE_CHECKING
from ates.platform import sessions
from ates.platform.broker import Ack
if TYPE_CHECKING:
    from ates.platform.runtime import Runtime

def render() -> None:
    from ates.platform.pages import SESSION_KEY
"""
    found = {(i.target, i.in_function) for i in imports_in(f"{PREFIX}.web", text)}
    assert found == {
        (f"{PREFIX}.sessions", False),
        (f"{PREFIX}.broker", False),
        (f"{PREFIX}.runtime", False),
        (f"{PREFIX}.pages", True),
    }
