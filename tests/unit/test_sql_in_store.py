"""All SQL lives in runctl_server/store/: elsewhere in the server no string holds an SQL statement, no
`text()` is called, nothing but the `Engine` type and the error class is imported from SQLAlchemy;
and no `noqa: S608` (string-built SQL) is anywhere, store/ included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "server" / "runctl_server"
STORE = SERVER / "store"

STATEMENT = re.compile(
    r"^\s*(SELECT\s.+\sFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|WITH\s+\w+\s+AS\s*\()",
    re.DOTALL,  # keywords in capitals, as all of runctl's SQL is written: prose is left alone
)
# Types only: the database handle is passed around above the store, never used to run statements, and
# its errors are caught where they are reported.
ALLOWED_IMPORTS = {("sqlalchemy.engine", "Engine"), ("sqlalchemy.exc", "SQLAlchemyError")}


def sql_problems(source: str) -> list[str]:
    """What in one module outside store/ is SQL: statement strings, text() calls, SQLAlchemy imports."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and STATEMENT.search(node.value):
            problems.append(f"line {node.lineno}: SQL text {node.value[:40]!r}")
        elif isinstance(node, ast.JoinedStr):
            # Each interpolated part stands in as a word, as a table or column name would.
            literal = "".join(
                part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "x"
                for part in node.values
            )
            if STATEMENT.search(literal):
                problems.append(f"line {node.lineno}: SQL built in an f-string")
        elif isinstance(node, ast.Call):
            called = node.func
            if (isinstance(called, ast.Name) and called.id == "text") or (
                isinstance(called, ast.Attribute)
                and isinstance(called.value, ast.Name)
                and called.value.id in ("sa", "sqlalchemy")
            ):
                problems.append(f"line {node.lineno}: {ast.unparse(called)}() builds SQL")
        elif isinstance(node, ast.Import):
            problems += [
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] == "sqlalchemy"
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            problems += [
                f"line {node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if (node.module, alias.name) not in ALLOWED_IMPORTS
            ]
    return problems


def test_no_sql_outside_the_store() -> None:
    found = {
        str(path.relative_to(SERVER)): problems
        for path in sorted(SERVER.rglob("*.py"))
        if STORE not in path.parents and (problems := sql_problems(path.read_text()))
    }
    assert found == {}


def test_no_string_built_sql_anywhere() -> None:
    marked = [
        f"{path.relative_to(SERVER)}:{number}"
        for path in sorted(SERVER.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"noqa:[^#\n]*S608", line)
    ]
    assert marked == []


def test_the_scan_finds_sql() -> None:
    """The checks above would see each kind of SQL they forbid."""
    source = """
from sqlalchemy import select
import sqlalchemy as sa
from sqlalchemy.engine import Engine
a = "SELECT id FROM executions WHERE id = :id"
b = f"UPDATE {table} SET status = :s"
c = text("DELETE FROM events")
d = sa.text("x")
e = "INSERT INTO tasks (id) VALUES (:id)"
f = "Select a run from the list"
"""
    lines = {int(problem.split(":")[0].removeprefix("line ")) for problem in sql_problems(source)}
    assert sorted(lines) == [2, 3, 5, 6, 7, 8, 9]
