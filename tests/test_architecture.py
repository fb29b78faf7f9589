"""The house by stage holds: no import cycle among vadctl's modules, at most six modules at the top
of the package, and a CLI that starts without the heavy libraries. (The layers themselves are
import-linter's contracts in pyproject.toml, run by `nox -s lint`.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vadctl

PACKAGE = Path(vadctl.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.Module) -> list[ast.ImportFrom | ast.Import]:
    """Every import statement, in functions too, except those under `if TYPE_CHECKING:`."""
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """vadctl module → the vadctl modules it imports (at run time)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                names = []
            for name in names:
                target = resolve(name) if name.startswith("vadctl.") else None
                if target and target != module and target != "vadctl":
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_at_most_six_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top


def test_only_the_cli_and_the_demo_import_the_facade():
    importers = {m for m, targets in import_graph().items() if "vadctl.api" in targets}
    assert {m for m in importers if not m.startswith("vadctl.cli") and m != "vadctl.demo"} == set()


def test_help_starts_without_heavy_libraries():
    code = (
        "import sys\n"
        "from vadctl.cli import main\n"
        "sys.argv = ['vadctl', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'sklearn', 'scipy', 'zarr', 'ray', 'cv2', 'polars') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in done.stderr, done.stderr[-2000:]


def test_old_module_paths_still_import_for_plug_ins():
    code = (
        "import warnings\n"
        "warnings.simplefilter('error')\n"
        "try:\n    from vadctl.specs import ArraySpec\n"
        "except DeprecationWarning as warning:\n    print('WARNED', warning)\n"
        "warnings.simplefilter('ignore')\n"
        "from vadctl.specs import ArraySpec\n"
        "from vadctl.results import VideoScores\n"
        "import vadctl.common.specs, vadctl.models.scores\n"
        "assert ArraySpec is vadctl.common.specs.ArraySpec and VideoScores is vadctl.models.scores.VideoScores\n"
        "print('OK')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "WARNED vadctl.specs moved to vadctl.common.specs" in done.stdout and "OK" in done.stdout, done.stderr
