"""The layer order holds (issue 12): cli → connect → jobs (blueprint, migrate, links) →
portal → client; the sandbox apart, sharing only the wire encoding. Every import in every
module is checked, those inside functions included, so a late import cannot dodge it."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "b24kit"
BASE = {
    "encoding",
    "asgi",
    "locks",
    "errors",
    "clock",
    "__init__",
}  # shared helpers below every layer
JOBS = {"blueprint", "migrate", "links", "reports"}
# what each part may import from b24kit (besides itself and BASE)
ALLOWED: dict[str, set[str]] = {
    "cli": {"connect", *JOBS, "portal", "client", "sandbox"},
    "connect": {"client", "sandbox"},
    "__main__": {"cli"},
    **{job: JOBS | {"portal", "client"} for job in JOBS},
    "portal": {"client"},
    "client": set(),
    "sandbox": set(),
    **{base: BASE for base in BASE},
}


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _statements(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Every statement, those nested in any block included (a function's, a class's, an
    if's, a try's handlers, a match's cases). An import is a statement, so this finds what
    ``ast.walk`` would, without going through every expression (a tenth of the nodes)."""
    for node in nodes:
        yield node
        for block in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, block, None)
            if isinstance(inner, list):
                yield from _statements(inner)


@functools.cache
def _parsed(source: str) -> ast.Module:
    """Each module parsed once per test process (several tests read every module)."""
    return ast.parse(source)


def _type_only(tree: ast.Module) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` (never run)."""
    lines: set[int] = set()
    for node in _statements(tree.body):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines |= {
                n.lineno
                for n in _statements(node.body)
                if isinstance(n, (ast.Import, ast.ImportFrom))
            }
    return lines


def imports(
    module: str, source: str, is_package: bool = False, run_only: bool = False
) -> list[tuple[int, str]]:
    """The b24kit modules ``module`` imports, with their lines (relative ones resolved);
    ``run_only``: without those only a type checker reads."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    tree = _parsed(source)
    skip = _type_only(tree) if run_only else set()
    for node in _statements(tree.body):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return [(line, name) for line, name in found if name.split(".")[0] == "b24kit"]


def check(module: str, source: str, is_package: bool = False) -> list[str]:
    mine = part_of(module)
    if mine == "__init__":
        return []
    allowed = ALLOWED.get(mine)
    assert allowed is not None, f"{module}: add its part to the layer table"
    return [
        f"{module}:{line}: {mine} imports {name}"
        for line, name in imports(module, source, is_package)
        if part_of(name) not in (mine, *BASE) and part_of(name) not in allowed
    ]


def modules() -> list[tuple[str, Path]]:
    return [
        (".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__"), p)
        for p in sorted(SRC.rglob("*.py"))
    ]


def test_no_import_breaks_the_layer_order() -> None:
    found = [
        v
        for module, path in modules()
        for v in check(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")
    ]
    assert found == []
    assert len(modules()) > 60, "every module was read"


def test_client_knows_no_sandbox_and_no_job() -> None:
    for module, path in modules():
        if part_of(module) == "client":
            names = [n for _, n in imports(module, path.read_text(encoding="utf-8"))]
            assert all(
                n.startswith(("b24kit.client", "b24kit.encoding", "b24kit.errors", "b24kit.clock"))
                for n in names
            ), path


@pytest.mark.parametrize(
    ("module", "bad"),
    [
        ("b24kit.client.core", "b24kit.sandbox.app"),
        ("b24kit.client.core", "b24kit.portal.ids"),
        ("b24kit.portal.ids", "b24kit.blueprint.model"),
        ("b24kit.blueprint.plan", "b24kit.cli"),
        ("b24kit.sandbox.app", "b24kit.client"),
        ("b24kit.migrate.run", "b24kit.connect"),
    ],
)
def test_the_check_catches_a_wrong_import(module: str, bad: str) -> None:
    """A late import inside a function is found too: the check can fail."""
    source = f"def late() -> None:\n    import {bad}  # noqa\n"
    assert check(module, source) == [f"{module}:2: {part_of(module)} imports {bad}"]
    relative = "from ..sandbox import app\n" if bad.startswith("b24kit.sandbox") else None
    if relative and module.startswith("b24kit.client"):
        assert check(module, relative)[0].endswith("imports b24kit.sandbox")


def test_no_import_cycles() -> None:
    """No two modules need each other, late imports inside functions included (a cycle
    dodged by importing inside a function is still a cycle)."""
    found = dict(modules())
    graph: dict[str, set[str]] = {}
    for module, path in found.items():
        edges = set()
        for _, name in imports(
            module, path.read_text(encoding="utf-8"), path.name == "__init__.py", run_only=True
        ):
            while name and name not in found:
                name = name.rpartition(".")[0]
            if name and name != module and found[name].name != "__init__.py":
                edges.add(name)
        graph[module] = edges
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_cli_loads_the_sandbox_only_when_asked() -> None:
    """No module the CLI imports at start imports the sandbox at its top level (every
    method handler would load for `b24kit --help` and for runs against a real portal)."""
    from b24kit.cli import sandbox as cli_sandbox
    from b24kit.sandbox.app import DEFAULT_DB

    assert cli_sandbox.DEFAULT_DB == DEFAULT_DB
    for module, path in modules():
        if part_of(module) not in ("cli", "connect"):
            continue
        tree = _parsed(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.startswith("b24kit.sandbox")], module
