"""SQL lives only in gateway/store/: the repository modules there (plain async functions taking a connection,
named for what they do) hold every statement, and the rest of the gateway calls them. Outside store/ no
string looks like SQL and nothing calls a connection's query methods; store/ in turn stays the bottom layer
(above domain/) and imports no use case or channel."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "gateway"
STORE = ROOT / "store"

# Upper-case SQL as the gateway writes it; prose in docstrings is not looked at (see _docstrings).
SQL = re.compile(r"\b(?:SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|COPY \w+|CREATE |ALTER |DROP |TRUNCATE |LOCK TABLE"
                 r"|ANALYZE|SET LOCAL|SAVEPOINT|pg_advisory)")

# asyncpg's methods that send SQL (on a connection, a pool or a transaction's connection).
DB_CALLS = frozenset({"fetch", "fetchrow", "fetchval", "execute", "executemany", "copy_records_to_table",
                      "copy_to_table", "copy_from_query", "copy_from_table", "prepare", "cursor"})

# Packages (and top-level modules) of gateway/ that store/ must not import.
ABOVE_STORE = frozenset({"bills", "settlement", "staff", "demo", "banksim", "payment", "inquiry", "service", "http",
                         "iso8583", "cli", "console", "engine", "serve", "bootstrap"})


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (module, class, function): prose, where COPY or SELECT is a word."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def _store_aliases(tree: ast.AST) -> set[str]:
    """Names a module binds to gateway.store modules: ``bill_store.fetch(...)`` calls a repository function,
    not a connection."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "gateway.store" or node.module.startswith("gateway.store."):
                names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.asname for alias in node.names
                         if alias.asname and alias.name.startswith("gateway.store."))
    return names


def _text(node: ast.Constant | ast.JoinedStr) -> str | None:
    """The text of a string constant, or of an f-string with each replacement field read as ``x``."""
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "x"
                       for v in node.values)
    return node.value if isinstance(node.value, str) else None


def sql_findings(source: str, name: str) -> list[str]:
    """``name:line: why`` for every SQL-looking string and every query call in ``source``, by line."""
    tree = ast.parse(source, filename=name)
    skip = _docstrings(tree)
    store_names = _store_aliases(tree)
    findings: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):     # judged whole; its pieces are not judged again
            skip.update(id(v) for v in node.values)
        if isinstance(node, (ast.Constant, ast.JoinedStr)):
            text = _text(node)
            if text is not None and id(node) not in skip and (match := SQL.search(text)):
                findings.append((node.lineno, f"SQL in a string ({match.group(0).strip()!r}...)"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DB_CALLS:
            receiver = node.func.value
            if not (isinstance(receiver, ast.Name) and receiver.id in store_names):
                findings.append((node.lineno, f"database call {ast.unparse(node.func)}()"))
    return [f"{name}:{line}: {why}" for line, why in sorted(findings)]


def _outside_store() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if STORE not in p.parents and "__pycache__" not in p.parts)


def test_no_sql_outside_the_store():
    findings = []
    for path in _outside_store():
        findings += sql_findings(path.read_text(encoding="utf-8"), path.relative_to(ROOT.parent).as_posix())
    assert not findings, ("SQL belongs in a gateway/store/ repository function; call that instead:\n"
                          + "\n".join(findings))


def test_the_check_sees_the_whole_gateway():
    names = {p.relative_to(ROOT).as_posix() for p in _outside_store()}
    assert {"bills/loader.py", "settlement/close.py", "staff/accounts.py"} <= names
    assert not any(n.startswith("store/") for n in names)


def test_the_check_flags_sql_and_query_calls():
    source = '''
"""Module docstring: a binary COPY into staging, then SELECT what was staged."""
from gateway.store import bills as bill_store
import gateway.store.settlements as settlements

QUERY = "SELECT id FROM bills WHERE nop = $1"
HINT = "Selected bills are shown; select one"

async def run(conn, pool, table, ids):
    """Docstrings may say INSERT INTO or UPDATE bills SET in prose."""
    await conn.fetchrow(QUERY, 1)
    await pool.execute(f"UPDATE {table} SET x = 1")
    await conn.execute(f"DELETE FROM bills WHERE id = ANY($1)", ids)
    await conn.copy_records_to_table(table, records=[])
    await bill_store.payable_bills(conn, ["PBB"], 10)
    await settlements.recon_reports(conn, None)
    await conn.execute("SELECT pg_advisory_xact_lock(1)")
'''
    assert sql_findings(source, "example.py") == [
        "example.py:6: SQL in a string ('SELECT'...)",
        "example.py:11: database call conn.fetchrow()",
        "example.py:12: SQL in a string ('UPDATE x SET'...)",
        "example.py:12: database call pool.execute()",
        "example.py:13: SQL in a string ('DELETE FROM'...)",
        "example.py:13: database call conn.execute()",
        "example.py:14: database call conn.copy_records_to_table()",
        "example.py:17: SQL in a string ('SELECT'...)",
        "example.py:17: database call conn.execute()",
    ]


def _imported_units(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, x) for every import of ``gateway.x`` (or ``from gateway import x``), TYPE_CHECKING ones too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "gateway":
                found += [(node.lineno, alias.name) for alias in node.names]
            elif node.module.startswith("gateway."):
                found.append((node.lineno, node.module.split(".")[1]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[1]) for alias in node.names
                      if alias.name.startswith("gateway.")]
    return found


def test_the_store_imports_no_use_case_or_channel():
    bad = []
    for path in sorted(STORE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        bad += [f"{path.relative_to(ROOT.parent).as_posix()}:{line}: gateway.{unit}"
                for line, unit in _imported_units(tree) if unit in ABOVE_STORE]
    assert not bad, "store/ is the bottom layer (above domain/): pass plain values instead\n" + "\n".join(bad)
