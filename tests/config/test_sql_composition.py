"""No SQL is spliced together as text: every statement handed to a cursor, `RawSQL`, `.raw()` or
`.extra()` is a constant or a `psycopg.sql` composition, values passed as parameters.

Scans the project's own source (not the tests, not the migrations) with `ast` for a call of
`execute` / `executemany` / `RawSQL` / `raw` / `extra` whose SQL argument is an f-string, a
`.format(...)` call, a `%` or `+` expression, or a name bound to one of those in the same function.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRECTORIES = {"tests", "migrations", ".venv", "var", "node_modules", "__pycache__", "stack"}
EXECUTING = {"execute", "executemany", "RawSQL", "raw", "extra"}

# Files still building SQL as text, each being rewritten on its own branch: remove an entry when
# that branch merges (the test fails on an entry that no longer violates, so the list stays true).
STILL_SPLICED: dict[str, str] = {
    # Rewritten on the branches that own this SQL (remove each entry as its branch merges):
    # Not yet rewritten: identifiers (partition, table and index names) spliced as text, to be
    # composed with sql.Identifier in a statements module of their app.
    "bench/city.py": "table names of the synthetic city's bulk loads",
    "bench/harness.py": "table names of the benchmarks' set-up",
    "bench/run.py": "table names of the benchmarks' set-up",
    "core/migration_operations.py": "constraint and index names (schema_editor.quote_name)",
}


def _source_files():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if SKIPPED_DIRECTORIES.intersection(relative.parts[:-1]):
            continue
        yield relative


def _composed_names(tree: ast.Module) -> frozenset[str]:
    """Names bound to psycopg.sql objects: imported from a statements module, or assigned a
    composed expression (to a fixed point, so a name built from another counts too)."""
    names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and _is_statements_module(node.module)
        for alias in node.names
    }
    while True:
        found = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and _is_composed(node.value, frozenset(names))
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        if found <= names:
            return frozenset(names)
        names |= found


def _is_statements_module(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last in {"statements", "sql_statements", "lots"} or ".sql_statements." in f".{name}."


def _is_spliced(node: ast.AST, composed_names: frozenset[str] = frozenset()) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return not _is_composed(node, composed_names)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and not _is_composed(node.func.value, composed_names)
    )


SQL_CONSTRUCTORS = {"SQL", "Identifier", "Literal", "Placeholder", "Composed"}


def _is_composed(node: ast.AST, composed_names: frozenset[str] = frozenset()) -> bool:
    """psycopg.sql's own composition, not text: `sql.SQL("…")` and the other constructors, their
    `.format(…)` and `.join(…)` and `+`, a name bound to one, and a constant of a statements module
    (`statements.X`, whose constants are all composed: tests/config/test_sql_composition.py)."""
    if isinstance(node, ast.Name):
        return node.id in composed_names
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and _is_statements_module(node.value.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_composed(node.left, composed_names) and _is_composed(node.right, composed_names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        if name in SQL_CONSTRUCTORS:
            return True
        if name in {"format", "join"} and isinstance(node.func, ast.Attribute):
            return _is_composed(node.func.value, composed_names)
    return False


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _sql_arguments(call: ast.Call) -> list[ast.AST]:
    name = _called_name(call)
    if name == "extra":
        return [keyword.value for keyword in call.keywords if keyword.arg in {"select", "where", "tables"}]
    arguments = call.args[:1]
    arguments += [keyword.value for keyword in call.keywords if keyword.arg in {"sql", "query", "raw_query"}]
    return arguments


def _spliced_names(scope: ast.AST, composed: frozenset[str]) -> set[str]:
    names = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and _is_spliced(node.value, composed):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(node.op, ast.Add | ast.Mod)
        ) or (
            isinstance(node, ast.AnnAssign)
            and node.value is not None
            and _is_spliced(node.value, composed)
            and isinstance(node.target, ast.Name)
        ):
            names.add(node.target.id)
    return names


def _violations(relative: Path) -> list[str]:
    tree = ast.parse((ROOT / relative).read_text(), filename=str(relative))
    composed = _composed_names(tree)
    top_level = [
        node
        for node in tree.body
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    module_names = _spliced_names(ast.Module(body=top_level, type_ignores=[]), composed)
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    found: list[str] = []
    seen: set[int] = set()
    # Each function with the names it binds, then what is left at module level.
    for scope, names in [(f, module_names | _spliced_names(f, composed)) for f in functions] + [
        (tree, module_names)
    ]:
        for node in ast.walk(scope):
            if not isinstance(node, ast.Call) or _called_name(node) not in EXECUTING or id(node) in seen:
                continue
            seen.add(id(node))
            for argument in _sql_arguments(node):
                if _is_spliced(argument, composed) or (
                    isinstance(argument, ast.Name) and argument.id in names
                ):
                    found.append(f"{relative}:{node.lineno}")
    return found


def test_no_statement_is_spliced_as_text():
    violations = [line for path in _source_files() for line in _violations(path)]
    unlisted = [line for line in violations if line.split(":")[0] not in STILL_SPLICED]
    assert not unlisted, (
        "SQL built as text (compose it with psycopg.sql in a statements module):\n" + "\n".join(unlisted)
    )


def test_the_list_of_files_still_being_rewritten_is_true():
    violating = {line.split(":")[0] for path in _source_files() for line in _violations(path)}
    assert sorted(set(STILL_SPLICED) - violating) == []
