"""The house rules that a change can silently break: imports run one way (no cycle among
archsearch's modules, counting imports inside functions too), and the deployment path stays light."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "archsearch"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                lines.add(getattr(child, "lineno", -1))
    return lines


def import_graph(type_only: bool = False) -> dict[str, set[str]]:
    """module -> archsearch modules it imports (at any depth of the file; with ``type_only``, the
    imports under ``if TYPE_CHECKING:`` too)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        tree = ast.parse(path.read_text())
        skip = set() if type_only else _type_checking_lines(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, module, is_package)
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != module and target.startswith("archsearch"):
                    graph[module].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _ignoring_packages(graph):
    """A package's __init__ re-exporting its modules is not a cycle with them."""
    return {m: {t for t in targets if not (m.startswith(t + ".") and t in graph)} for m, targets in graph.items()}


def test_no_import_cycles():
    cycles = find_cycles(_ignoring_packages(import_graph()))
    assert cycles == [], f"import cycles among archsearch modules: {cycles}"


def test_no_import_cycles_even_through_type_only_imports():
    """A type-only import is still a dependency a reader follows: no cycle through one either."""
    cycles = find_cycles(_ignoring_packages(import_graph(type_only=True)))
    assert cycles == [], f"import cycles among archsearch modules (type-only imports included): {cycles}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_search_uses_no_private_optuna_api():
    """Optuna's private names (``optuna._hypervolume``, ``study._storage``, ``trial._trial_id``,
    ``distribution._contains``) change between releases without notice; the package uses none."""
    import re

    private = re.compile(r"optuna\._|\._storage\b|\._trial_id\b|\._contains\b")
    found = [f"{path.relative_to(PACKAGE.parent)}:{n}" for path in sorted(PACKAGE.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if private.search(line)]
    assert not found, found
    assert private.search("study._storage.get_trial(1)")   # the pattern does catch one
