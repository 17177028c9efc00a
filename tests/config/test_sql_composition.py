"""SQL has one home and is never spliced together as text.

1. No SQL is spliced as text: every statement handed to a cursor, `RawSQL`, `.raw()` or `.extra()`
   is a constant or a `psycopg.sql` composition, values passed as parameters. Scans the project's
   own source (not the tests, not the migrations) with `ast` for a call of `execute` /
   `executemany` / `RawSQL` / `raw` / `extra` whose SQL argument is an f-string, a `.format(...)`
   call, a `%` or `+` expression, or a name bound to one of those in the same function.
2. Every raw statement lives in a statements module of its app or package (`statements.py`, or a
   `statements/` or `sql_statements/` package that holds SQL), as named `psycopg.sql` constants. A
   raw statement is a string literal starting with SELECT / INSERT / UPDATE / DELETE / WITH / CREATE
   / ALTER / DROP / LOCK (after blanks, comments and an opening parenthesis), alone or in
   `sql.SQL(…)`, that is handed to `execute` (and the others above), assigned to a module constant
   (also inside a tuple or call, as a list of checks does), or wrapped in `sql.SQL(…)` anywhere;
   found outside a statements module, it fails. Fragments (`sql.SQL(", ")`, a `WHERE` clause added
   to a statement) are not statements and may stay where they are composed.
   - `bench/` keeps its SQL beside the scenario that measures it: a benchmark's set-up (bulk loads,
     databases created and dropped, reference queries it compares the app with) is read together
     with its timing, and bench is tooling, not the product. Its SQL is still held to rule 1.
   - Tests and migrations are not scanned (a migration's SQL is frozen history).
   - A few modules are named for the product's carbon *statements*, not for SQL; they are
     checked like any other module (`NOT_SQL_HOMES`).
3. What a statements module holds is composed: a raw statement there is `sql.SQL(…)`, not text.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRECTORIES = {"tests", "migrations", ".venv", "var", "node_modules", "__pycache__", "stack"}
EXECUTING = {"execute", "executemany", "RawSQL", "raw", "extra"}

# Files still building SQL as text (none): an entry must name a file that still does.
STILL_SPLICED: dict[str, str] = {}


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


# --- 2. Every raw statement lives in a statements module ---------------------------------------

RAW_STATEMENT = re.compile(
    r"(?:\s|--[^\n]*\n|\()*(?:SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|LOCK)\s"
)
# Named for the product's carbon statements (issued, imported, peer platforms'), not homes of SQL.
NOT_SQL_HOMES = ("activities/statements/", "rewards/services/statements.py", "config/settings/")

# Files whose raw statements are not yet in a statements module: remove an entry when its SQL
# moves (the test fails on an entry that no longer holds any, so the list stays true).
RAW_OUTSIDE_STATEMENTS: dict[str, str] = {}


def _is_sql_home(relative: Path) -> bool:
    text = relative.as_posix()
    if any(text.startswith(prefix) for prefix in NOT_SQL_HOMES):
        return False
    return relative.name == "statements.py" or bool(
        {"statements", "sql_statements"} & set(relative.parts[:-1])
    )


def _statement_text(node: ast.AST) -> str | None:
    """The SQL text of a literal, of `sql.SQL(literal)`, or of either's `.format(…)`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value for part in node.values if isinstance(part, ast.Constant))
    if isinstance(node, ast.Call):
        name = _called_name(node)
        if name == "SQL" and node.args:
            return _statement_text(node.args[0])
        if name == "format" and isinstance(node.func, ast.Attribute):
            return _statement_text(node.func.value)
    return None


def _is_raw_statement(node: ast.AST) -> bool:
    text = _statement_text(node)
    return text is not None and RAW_STATEMENT.match(text) is not None


def _raw_statements(relative: Path) -> list[str]:
    tree = ast.parse((ROOT / relative).read_text(), filename=str(relative))
    found: set[int] = set()
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if value is not None:
            found.update(inner.lineno for inner in ast.walk(value) if _is_raw_statement(inner))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if _called_name(node) in EXECUTING:
            found.update(node.lineno for argument in _sql_arguments(node) if _is_raw_statement(argument))
        elif _called_name(node) == "SQL" and _is_raw_statement(node):
            found.add(node.lineno)
    return [f"{relative}:{line}" for line in sorted(found)]


def _checked_for_homes():
    for relative in _source_files():
        if relative.parts[0] != "bench" and not _is_sql_home(relative):
            yield relative


def test_every_raw_statement_lives_in_a_statements_module():
    outside = [line for path in _checked_for_homes() for line in _raw_statements(path)]
    unlisted = [line for line in outside if line.split(":")[0] not in RAW_OUTSIDE_STATEMENTS]
    assert not unlisted, (
        "a raw statement outside a statements module (name it in the statements.py of its app or "
        "package, composed with psycopg.sql):\n" + "\n".join(unlisted)
    )


def test_the_list_of_statements_not_yet_moved_is_true():
    holding = {line.split(":")[0] for path in _checked_for_homes() for line in _raw_statements(path)}
    assert sorted(set(RAW_OUTSIDE_STATEMENTS) - holding) == []


def test_the_check_finds_raw_statements_where_they_hide(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "app.py").write_text(
        "from psycopg import sql\n"
        'CHECKS = (Check(\'name\', """\n    -- a comment\n    SELECT 1"""),)\n'
        "ROWS = sql.SQL('(SELECT id FROM t)')\n"
        "FRAGMENT = sql.SQL(' AND day >= %(since)s')\n"
        "def f(cursor):\n"
        "    cursor.execute('DELETE FROM t WHERE id = %s', [1])\n"
        "    rows = sql.SQL('WITH x AS (SELECT 1) SELECT * FROM x')\n"
        "    cursor.execute('SET LOCAL jit TO OFF')\n"
    )
    assert _raw_statements(Path("app.py")) == ["app.py:2", "app.py:5", "app.py:8", "app.py:9"]


# --- 3. What a statements module holds is composed ------------------------------------------

# Statements modules that still hold text (their owners compose them as they rewrite them).
TEXT_IN_STATEMENTS: dict[str, str] = {}


def _text_statements(relative: Path) -> list[str]:
    tree = ast.parse((ROOT / relative).read_text(), filename=str(relative))
    return [
        f"{relative}:{node.lineno}"
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        and isinstance(node.value, ast.Constant | ast.JoinedStr)
        and _is_raw_statement(node.value)
    ]


def test_statements_modules_hold_compositions_not_text():
    homes = [path for path in _source_files() if _is_sql_home(path)]
    text = [line for path in homes for line in _text_statements(path)]
    unlisted = [line for line in text if line.split(":")[0] not in TEXT_IN_STATEMENTS]
    assert not unlisted, "a statement held as text (wrap it in sql.SQL):\n" + "\n".join(unlisted)
    assert sorted(set(TEXT_IN_STATEMENTS) - {line.split(":")[0] for line in text}) == []
