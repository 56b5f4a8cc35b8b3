"""Every service has the same files for the same roles, and its imports point one way
(docs/architecture.md, "A service").

Read from the source with ``ast``, nothing imported, as ``test_platform_layers`` reads the
platform. Every import counts: at module level, in a function, under ``TYPE_CHECKING``.

- A service's files are the shared ones (``LAYOUT``) and its own focused modules
  (``EXTRAS``), each named in the map of docs/architecture.md; no ``handlers.py``.
- A service imports the platform, the shared settings and command-line helpers (``SHARED``)
  and its own modules, never another service.
- ``domain.py`` imports only the standard library (no I/O module of it) and the platform's
  pure helpers (``PURE``).
- ``domain``, ``models``, ``commands``, ``consumers`` and ``queries`` never import the
  edges (``api``, ``pages``, ``cli``, ``app``): the edges call the use cases, not the reverse.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES_DIR = ROOT / "src" / "ates" / "services"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SERVICES = ("auth", "tasks", "billing", "analytics", "notifications")

# The same name means the same thing in every service; a service has those it needs.
LAYOUT = frozenset(
    {
        "__init__.py",
        "domain.py",
        "models.py",
        "commands.py",
        "consumers.py",
        "queries.py",
        "api.py",
        "pages.py",
        "cli.py",
        "app.py",
        "migrations",
        "templates",
    }
)
EVERY_SERVICE = frozenset({"domain.py", "models.py", "app.py", "cli.py", "pages.py"})

# Modules of one service each holding one named thing (the map in docs/architecture.md).
EXTRAS: Mapping[str, frozenset[str]] = {
    "auth": frozenset({"oauth", "passwords.py", "session.py"}),
    "tasks": frozenset({"shuffle.py", "finding.py"}),
    "billing": frozenset({"ledger.py", "booking.py", "scheduler.py", "verify.py"}),
    "analytics": frozenset({"projector.py", "chart.py"}),
    "notifications": frozenset({"sender.py", "notifier.py"}),
}

# What a service may import from ``ates`` besides the platform and itself.
SHARED = (
    "ates.platform",
    "ates.config",
    "ates.servicenames",
    "ates.clitools",
    "ates.password_login",  # the command line's sign-in (`ates token`)
    "ates.schemas",  # the typed event payloads, beside their JSON Schemas
)
# (importing module, imported module) -> why it may reach outside its service
OUTSIDE: Mapping[tuple[str, str], str] = {
    ("ates.services.analytics.cli", "ates.services.registry"): (
        "`ates replay SERVICE` looks up the spec of the read model it is asked to rebuild"
    ),
}

# What a domain may import of the platform: helpers that do no I/O.
PURE = ("ates.platform.money", "ates.platform.dates", "ates.platform.text")
PURE_MODULES = ("ates.platform.events.ordering",)
# Standard-library modules that do I/O (or wait on it): not in a domain.
STDLIB_IO = frozenset(
    {
        "asyncio",
        "http",
        "io",
        "logging",
        "os",
        "selectors",
        "shutil",
        "socket",
        "sqlite3",
        "ssl",
        "subprocess",
        "tempfile",
        "urllib.request",
    }
)

CORE = frozenset({"domain", "models", "commands", "consumers", "queries"})
EDGES = frozenset({"api", "pages", "cli", "app"})


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SERVICES_DIR.parents[1]).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    src = SERVICES_DIR.parents[1]
    return (src / relative).with_suffix(".py").is_file() or (src / relative).is_dir()


def imports_in(source: str, text: str, *, package: bool = False) -> Iterator[Import]:
    """Every module ``source`` imports; ``from ates.services.tasks import queries`` (or
    ``from . import queries``) imports ``ates.services.tasks.queries``."""
    here = source.split(".") if package else source.split(".")[:-1]
    nodes = sorted(
        (n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Import | ast.ImportFrom)),
        key=lambda n: n.lineno,
    )
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = here[: len(here) - node.level + 1]
                base = ".".join([*kept, base] if base else kept)
            targets = [
                f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base
                for alias in node.names
            ]
        else:
            continue
        for target in dict.fromkeys(targets):
            yield Import(source, target, node.lineno)


def service_imports(service: str) -> list[Import]:
    return [
        found
        for path in sorted((SERVICES_DIR / service).rglob("*.py"))
        if "migrations" not in path.parts
        for found in imports_in(
            module_name(path), path.read_text(encoding="utf-8"), package=path.stem == "__init__"
        )
    ]


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def role(module: str, service: str) -> str | None:
    """``commands`` for ``ates.services.tasks.commands``; None for a module deeper down."""
    rest = module.removeprefix(f"ates.services.{service}.")
    return rest if rest != module and "." not in rest else None


def files_of(service: str) -> set[str]:
    return {
        p.name
        for p in (SERVICES_DIR / service).iterdir()
        if p.name != "__pycache__" and (p.suffix == ".py" or p.is_dir())
    }


def cross_service_imports(imports: list[Import], service: str) -> list[str]:
    return [
        f"{i.source}:{i.line} imports {i.target}"
        for i in imports
        if within(i.target, "ates")
        and not within(i.target, f"ates.services.{service}")
        and not any(within(i.target, shared) for shared in SHARED)
        and (i.source, i.target) not in OUTSIDE
    ]


def impure_domain_imports(imports: list[Import], service: str) -> list[str]:
    def allowed(target: str) -> bool:
        if within(target, "ates"):
            return any(within(target, pure) for pure in PURE) or target in PURE_MODULES
        root = target.split(".")[0]
        in_stdlib = root in sys.stdlib_module_names or root == "__future__"
        return in_stdlib and not any(within(target, io) for io in STDLIB_IO)

    return [
        f"{i.source}:{i.line} imports {i.target}"
        for i in imports
        if role(i.source, service) == "domain" and not allowed(i.target)
    ]


def edge_imports(imports: list[Import], service: str) -> list[str]:
    return [
        f"{i.source}:{i.line} imports {i.target}"
        for i in imports
        if role(i.source, service) in CORE and role(i.target, service) in EDGES
    ]


def test_no_service_has_a_handlers_module() -> None:
    found = [str(p.relative_to(SERVICES_DIR)) for p in SERVICES_DIR.rglob("handlers.py")]
    assert not found, (
        "handlers.py means nothing in particular: use commands.py (use cases), "
        f"consumers.py (event handlers) or queries.py (reads): {found}"
    )


def test_every_service_has_the_shared_files_and_its_listed_modules_only() -> None:
    assert {p.name for p in SERVICES_DIR.iterdir() if p.is_dir()} - {"__pycache__"} == set(SERVICES)
    problems = []
    for service in SERVICES:
        files = files_of(service)
        if missing := EVERY_SERVICE - files:
            problems.append(f"{service}: no {sorted(missing)}")
        if unknown := files - LAYOUT - EXTRAS[service]:
            problems.append(f"{service}: {sorted(unknown)} not in the map (EXTRAS and the docs)")
        if gone := EXTRAS[service] - files:
            problems.append(f"{service}: {sorted(gone)} listed but gone")
    assert not problems, "\n".join(problems)


def test_the_map_in_the_docs_names_every_file() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text[text.index("\n## A service\n") :]
    section = section[: section.index("\n## ", 1)]
    missing = [
        name
        for name in LAYOUT - {"__init__.py"}
        if f"`{name}" not in section and f"`{name}/`" not in section
    ]
    for service, extras in EXTRAS.items():
        row = re.search(rf"^\| {service} \|.*$", section, re.MULTILINE)
        names = row.group(0) if row else ""
        missing += [
            f"{service}: {name}"
            for name in sorted(extras)
            if f"`{name}`" not in names and f"`{name}/`" not in names
        ]
    assert not missing, f"docs/architecture.md, 'A service', does not name: {missing}"


def test_a_service_never_imports_another() -> None:
    found = [line for s in SERVICES for line in cross_service_imports(service_imports(s), s)]
    assert not found, "imports of another service (send an event instead):\n" + "\n".join(found)


def test_every_import_outside_listed_still_exists() -> None:
    seen = {(i.source, i.target) for s in SERVICES for i in service_imports(s)}
    assert set(OUTSIDE) <= seen, f"listed but gone: {set(OUTSIDE) - seen}"


def test_a_domain_does_no_io() -> None:
    found = [line for s in SERVICES for line in impure_domain_imports(service_imports(s), s)]
    assert not found, "domain.py imports something that does I/O:\n" + "\n".join(found)


def test_use_cases_reads_and_event_handlers_never_import_the_edges() -> None:
    found = [line for s in SERVICES for line in edge_imports(service_imports(s), s)]
    assert not found, "imports of api/pages/cli/app from below them:\n" + "\n".join(found)


def test_the_checks_see_what_they_forbid() -> None:
    """Each rule finds a breach written the ways it could be written."""
    text = """
from typing import TYPE_CHECKING
from sqlalchemy import select
import asyncio
from ates.platform.money import format_cents
from ates.platform.events.ordering import is_newer
from ates.platform import uow
from ates.services.billing import ledger
from . import pages
if TYPE_CHECKING:
    from ates.services.tasks.api import MANAGING

def later() -> None:
    from ates.services.tasks.cli import register
"""
    source = "ates.services.tasks.domain"
    imports = list(imports_in(source, text))
    assert cross_service_imports(imports, "tasks") == [
        f"{source}:8 imports ates.services.billing.ledger"
    ]
    assert impure_domain_imports(imports, "tasks") == [
        f"{source}:3 imports sqlalchemy",
        f"{source}:4 imports asyncio",
        f"{source}:7 imports ates.platform.uow",
        f"{source}:8 imports ates.services.billing.ledger",
        f"{source}:9 imports ates.services.tasks.pages",
        f"{source}:11 imports ates.services.tasks.api",
        f"{source}:14 imports ates.services.tasks.cli",
    ]
    assert edge_imports(imports, "tasks") == [
        f"{source}:9 imports ates.services.tasks.pages",
        f"{source}:11 imports ates.services.tasks.api",
        f"{source}:14 imports ates.services.tasks.cli",
    ]
    assert edge_imports(list(imports_in("ates.services.tasks.pages", text)), "tasks") == []
