"""`python scripts/import_cycles.py [project root]`: the import graph of batch_platform (module level and function level, TYPE_CHECKING blocks left
out, and the modules the command line imports by name, `"batch_platform.cli_run:cmd_serve"`), every
cycle in it (strongly connected components of more than one module, or a module importing itself),
and every function-level import of the package, with its line (each says why it is not at the top)."""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
PACKAGE = "batch_platform"
BY_NAME = re.compile(rf"^({PACKAGE}(?:\.\w+)*):\w+$")
"""A function named by its module, `module:function`, which the command line imports when it runs."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.AST, modules: set[str], current: str) -> set[str]:
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE and (target := resolve(alias.name)):
                    found.add(target)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (named := BY_NAME.match(node.value)):
            if target := resolve(named.group(1)):
                found.add(target)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == PACKAGE
        ):
            for alias in node.names:
                target = resolve(f"{node.module}.{alias.name}") or resolve(node.module)
                if target:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(current)
    return found


def function_level(tree: ast.AST) -> list[int]:
    """The lines of the import statements inside a function (TYPE_CHECKING blocks left out)."""
    lines: list[int] = []

    def visit(node: ast.AST, inside: bool) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            return
        if inside and isinstance(node, (ast.Import, ast.ImportFrom)):
            lines.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, inside or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return lines


def main() -> int:
    files = {module_name(p): p for p in (ROOT / PACKAGE).rglob("*.py")}
    modules = set(files)
    trees = {name: ast.parse(path.read_text()) for name, path in files.items()}
    graph = {name: imports(tree, modules, name) for name, tree in trees.items()}
    local = {name: function_level(tree) for name, tree in sorted(trees.items())}
    print(f"{sum(map(len, local.values()))} function-level imports:")
    for name, lines in local.items():
        text = files[name].read_text().splitlines()
        for line in lines:
            print(f"  {files[name].relative_to(ROOT)}:{line}  {text[line - 1].strip()}")
    index, low, stack, on_stack, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            sccs.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    cycles = [c for c in sccs if len(c) > 1]
    print(f"{len(graph)} modules, {sum(len(e) for e in graph.values())} import edges (module and function level)")
    if not cycles:
        print("no import cycle")
        return 0
    for component in cycles:
        print(f"cycle among {len(component)} modules: {', '.join(component)}")
        for v in component:
            inside = sorted(w for w in graph[v] if w in component)
            print(f"  {v} -> {', '.join(inside)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
