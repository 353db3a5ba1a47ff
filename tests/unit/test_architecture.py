"""The packages of `gateway/` form a one-way graph (docs/architecture.md): no two packages import each other,
directly or round a longer loop, so that each can be read, tested and changed from the bottom up."""
from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parents[2] / "gateway"


def _unit(module: str) -> str:
    """The package (or top-level module) of ``gateway.x.y``: ``x``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        source = rel.parts[1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "gateway":
                    targets = [f"gateway.{a.name}" for a in node.names]
                elif node.module.startswith("gateway."):
                    targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("gateway.")]
            for target in targets:
                unit = _unit(target)
                if unit != source:
                    graph[source].add(unit)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_packages_form_a_one_way_graph():
    cycle = find_cycle(package_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_domain_imports_nothing_of_the_project():
    assert package_graph().get("domain", set()) == set()


# The adapters translate between a channel (a socket, an HTTP request, a command line) and the services;
# they never reach the store: no SQL, no connection of their own (issue: "adapters never import store").
ADAPTERS = ("http", "iso8583", "cli", "console")


def test_adapters_never_import_the_store():
    graph = package_graph()
    reaching = {adapter: sorted(graph.get(adapter, set()) & {"store"}) for adapter in ADAPTERS}
    assert reaching == {adapter: [] for adapter in ADAPTERS}


def test_the_service_kernel_depends_on_no_use_case_or_adapter():
    # gateway/service is what every use case builds on: it may use the rules, the store and the settings,
    # never a use case (payment, inquiry, settlement, staff, bills) or a channel.
    allowed = {"domain", "store", "config", "clock", "proofs", "metrics", "logs"}
    assert package_graph().get("service", set()) <= allowed, package_graph().get("service")
