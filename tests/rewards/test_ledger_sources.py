"""The source keeps the ledger's two rules: one writer, and SQL composed, never spliced.

- Only the ledger package (`rewards/ledger/`) writes ledger rows: transactions, entries, lots and
  balances. Every other module posts through its writer (`rewards.ledger.writer`), so the posting
  rule and the soonest-expiring-first lot logic exist once.
- No SQL in rewards/ or merchants/ is built with f-strings, `str.format` or `%`: statements are
  constants composed with `psycopg.sql`, and values travel as parameters.

Read from the source (tests and migrations aside): a new module that writes ledger rows, or builds
a statement from text, fails here before it can drift from the one writer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("accounts", "activities", "core", "merchants", "operations", "registry", "rewards", "config")
LEDGER_PACKAGE = ROOT / "rewards" / "ledger"

LEDGER_TABLES = r"\"?rewards_(?:ledgertransaction|ledgerentry|coinlot)\b"
LEDGER_WRITES = [
    re.compile(rf"INSERT\s+INTO\s+{LEDGER_TABLES}", re.IGNORECASE),
    re.compile(rf"COPY\s+{LEDGER_TABLES}", re.IGNORECASE),
    re.compile(r"UPDATE\s+\"?rewards_(?:coinlot|ledgerentry|ledgertransaction)\b", re.IGNORECASE),
    re.compile(r"UPDATE\s+\"?rewards_ledgeraccount\"?\s+SET\s+balance\b", re.IGNORECASE),
    re.compile(r"(?<!class )\b(?:LedgerTransaction|LedgerEntry|CoinLot)\((?!\))"),
    re.compile(
        r"\b(?:LedgerTransaction|LedgerEntry|CoinLot)\.objects\.(?:create|bulk_create|get_or_create)\b"
    ),
    re.compile(r"\.update\(\s*(?:balance|remaining_amount)\s*="),
]

# A statement's opening words, as the code base writes them (upper case).
SQL_WORDS = re.compile(
    r"\b(?:SELECT\b.*\bFROM|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|CREATE\s+(?:TEMPORARY\s+|UNLOGGED\s+)?"
    r"(?:TABLE|INDEX)|DROP\s+TABLE|ANALYZE\s|WITH\s+\w+\s+AS)",
    re.DOTALL,
)


def _product_modules() -> list[Path]:
    return [
        path
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def _ledger_writes(path: Path) -> list[str]:
    text = path.read_text()
    return [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for rule in LEDGER_WRITES
        for match in rule.finditer(text)
    ]


def test_only_the_ledger_package_writes_ledger_rows():
    strays = [
        write
        for path in _product_modules()
        if LEDGER_PACKAGE not in path.parents
        for write in _ledger_writes(path)
    ]
    assert strays == []


def test_the_scan_finds_the_ledger_writers_own_writes():
    """The patterns are alive: the writer's own inserts match them."""
    found = _ledger_writes(LEDGER_PACKAGE / "writer.py") + _ledger_writes(LEDGER_PACKAGE / "statements.py")
    assert any("INSERT INTO rewards_ledgerentry" in write for write in found)
    assert any("INSERT INTO rewards_coinlot" in write for write in found)
    assert any("LedgerEntry(" in write for write in found)


def _text_of(node: ast.AST) -> str:
    """The literal text of a string expression (the constant parts of an f-string)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text_of(part) for part in node.values)
    return ""


def _spliced_sql(source: str, name: str) -> list[str]:
    """Statements built from text: an f-string, `"…".format(…)` or `"…" % …` that reads as SQL."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        text = ""
        if isinstance(node, ast.JoinedStr) and any(
            isinstance(part, ast.FormattedValue) for part in node.values
        ):
            text = _text_of(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant | ast.JoinedStr)
        ):
            text = _text_of(node.func.value)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            text = _text_of(node.left)
        if text and SQL_WORDS.search(text):
            found.append(f"{name}:{node.lineno}: {' '.join(text.split())[:80]}")
    return found


def test_no_sql_in_rewards_or_merchants_is_spliced_from_text():
    modules = [
        path
        for package in ("rewards", "merchants")
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]
    spliced = [
        found for path in modules for found in _spliced_sql(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert spliced == []


def test_the_splice_scan_sees_an_f_string_a_format_and_a_percent():
    source = (
        'table = "t"\n'
        'a = f"SELECT id FROM {table}"\n'
        'b = "DELETE FROM {}".format(table)\n'
        'c = "UPDATE %s SET x = 1" % table\n'
        'd = f"the {table} was selected from the list"\n'
        'e = "SELECT id FROM t WHERE x = %(x)s"\n'
    )
    assert [found.split(":")[1] for found in _spliced_sql(source, "spliced.py")] == ["2", "3", "4"]
