"""The shape of the code: no import cycle among seqcast's modules, no module reaching into another's
private names, no library file past about 400 lines and no command body past about 40. Read from the source with ``ast``, so nothing is imported.

Every ``import`` and ``from ... import`` counts, at module level and inside functions (a function-level
import still ties the two modules together); those under ``if TYPE_CHECKING:`` do not, since they never
run. ``models/__init__.py`` registers the families through importlib, which is no static edge.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "seqcast"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(path): (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
            for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every import statement that runs (skipping the bodies of ``if TYPE_CHECKING:``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                yield from _imports_of(child)
            continue
        yield from _imports_of(node)


def _imports_of(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    yield from _imports(node)


def _base(module: str, path: Path, node: ast.ImportFrom) -> str | None:
    """The absolute module a ``from`` statement names (relative levels resolved)."""
    if node.level == 0:
        return node.module
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if node.level > 1:
        package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _edges(modules: dict[str, tuple[Path, ast.Module]]):
    """(importer, imported module, the names it takes) for every import of one seqcast module by another."""
    for module, (path, tree) in modules.items():
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        yield module, alias.name, ()
                continue
            base = _base(module, path, node)
            if base is None or not (base == "seqcast" or base.startswith("seqcast.")):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:  # ``from . import training``: the module itself
                    yield module, submodule, ()
                elif base in modules:
                    yield module, base, (alias.name,)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), or of one importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # iterative, so that a deep graph cannot exhaust the recursion limit
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_seqcast_modules():
    modules = _modules()
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for importer, imported, _ in _edges(modules):
        # a package's __init__ runs before its modules, so a module importing its own package is no cycle
        if not importer.startswith(imported + "."):
            graph[importer].add(imported)
    cycles = _cycles(graph)
    assert not cycles, "import cycles among seqcast's modules:\n" + "\n".join(
        f"  {', '.join(cycle)}" for cycle in cycles)


def test_no_module_imports_another_modules_private_names():
    modules = _modules()
    offenders = sorted({f"{importer} imports {imported}.{name}"
                        for importer, imported, names in _edges(modules) for name in names
                        if name.startswith("_") and not name.startswith("__")})
    assert not offenders, "private names used across modules:\n" + "\n".join(f"  {o}" for o in offenders)


def test_the_checks_see_what_they_should():
    """The graph is read as meant: relative imports resolve, TYPE_CHECKING imports are skipped, and a
    module whose name starts with an underscore (models/_layers) is a module, not a private name."""
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from ..forecaster import Forecaster\n"
              "def f():\n    from ..windows import Split\n    from ._layers import Covariates\n"
              "from ..errors import _hidden\nfrom . import _layers\n")
    empty = ast.parse("")
    modules = {"seqcast.models.x": (PACKAGE / "models" / "x.py", ast.parse(source)),
               **{name: (PACKAGE / "unused.py", empty) for name in
                  ("seqcast.models", "seqcast.models._layers", "seqcast.windows", "seqcast.errors",
                   "seqcast.forecaster")}}
    assert sorted(_edges(modules)) == [("seqcast.models.x", "seqcast.errors", ("_hidden",)),
                                       ("seqcast.models.x", "seqcast.models._layers", ()),
                                       ("seqcast.models.x", "seqcast.models._layers", ("Covariates",)),
                                       ("seqcast.models.x", "seqcast.windows", ("Split",))]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}) == [["a", "b", "c"], ["e"]]


LIBRARY_LINES = 420  # "about 400": a file past this is doing more than one job
COMMAND_BODY_LINES = 40


def test_no_library_file_is_over_about_400_lines():
    """issue 31: each module has one job; a file past about 400 lines is split by job."""
    long = {str(path.relative_to(PACKAGE.parent)): n for path in sorted(PACKAGE.rglob("*.py"))
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > LIBRARY_LINES}
    assert not long, f"split these by job: {long}"


def test_every_command_body_is_short_and_ends_in_the_library():
    """issue 31: a command parses its options, builds typed requests, makes one library call and renders:
    about 20-40 lines (the docstring and the signature's options not counted)."""
    from seqcast.cli import app

    long = {}
    for registered in app.registered_commands:
        function = inspect.unwrap(registered.callback)
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        body = tree.body[0].body
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        lines = body[-1].end_lineno - body[0].lineno + 1
        if lines > COMMAND_BODY_LINES:
            long[registered.name or function.__name__] = lines
    assert not long, f"move the work of these commands into seqcast/runs: {long}"
