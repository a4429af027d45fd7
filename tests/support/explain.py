"""Capture the SQL a block of code runs, and EXPLAIN it to prove an index serves each query."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection, Iterator
from typing import Any

import sqlalchemy as sa

#: Tables that grow with every payment and are never pruned: a scan of one of them gets
#: slower every day, so every query on them must be served by an index.
GROWING_TABLES = frozenset({"payments", "payment_events", "raw_callbacks", "payment_queries"})

#: (statement, parameters) exactly as SQLAlchemy handed them to the DBAPI cursor
Captured = tuple[str, Any]

# Only these can be EXPLAINed; INSERTs are skipped too (they scan nothing).
_EXPLAINABLE = re.compile(r"\s*(SELECT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
_FROM = re.compile(r"\bFROM\b", re.IGNORECASE)
_SELECT_LIST = re.compile(r"(SELECT\s+(?:DISTINCT\s+)?)(.+?)(\s+FROM\s)", re.IGNORECASE)
# An IN list SQLAlchemy expanded into one placeholder per value.
_IN_LIST = re.compile(r" IN \((%\(\w+\)s(?:::\w+)?)(?:, %\(\w+\)s(?:::\w+)?)*\)")
#: longest plan filter quoted in a description (an IN list can hold hundreds of ids)
_FILTER_MAX = 200
# Plan nodes that read all their input before passing a row up: a Limit above them does not
# bound how much of an index they read.
_BLOCKING = frozenset({"Sort", "Incremental Sort", "Aggregate", "Hash", "Materialize", "SetOp"})


@contextlib.contextmanager
def capture_statements(engine: sa.Engine) -> Iterator[list[Captured]]:
    """Yield a list that collects every (statement, parameters) the engine executes inside."""
    captured: list[Captured] = []

    def record(
        _conn: sa.Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> None:
        # An executemany (a batch of INSERTs or version-checked UPDATEs) shares one plan:
        # its first parameter set stands for all.
        captured.append((statement, parameters[0] if executemany else parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield captured
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def compact(statement: str) -> str:
    """The statement on one line, a long SELECT list and IN lists shortened to "…".

    The WHERE is what decides the plan; an IN list of any length is one statement to read.
    """
    text = " ".join(statement.split())
    match = _SELECT_LIST.match(text)
    if match and len(match.group(2)) > 60:
        text = match.group(1) + "…" + text[match.end(2) :]
    return _IN_LIST.sub(r" IN (\1, …)", text)


def explainable(statement: str) -> bool:
    """SELECT (with a FROM), UPDATE, DELETE or WITH; not INSERT, BEGIN, SAVEPOINT, SET..."""
    match = _EXPLAINABLE.match(statement)
    if match is None:
        return False
    return match.group(1).upper() != "SELECT" or _FROM.search(statement) is not None


def plan_nodes(
    node: dict[str, Any], parents: tuple[dict[str, Any], ...] = ()
) -> Iterator[tuple[dict[str, Any], tuple[dict[str, Any], ...]]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan with its ancestors, nearest last."""
    yield node, parents
    for child in node.get("Plans", ()):
        yield from plan_nodes(child, (*parents, node))


def _bounded_by_limit(parents: tuple[dict[str, Any], ...]) -> bool:
    for parent in reversed(parents):
        if parent["Node Type"] == "Limit":
            return True
        if parent["Node Type"] in _BLOCKING:
            return False
    return False


def scan_problems(plan: dict[str, Any], watched: Callable[[str], bool]) -> list[str]:
    """Nodes of `plan` that read a whole watched table (or a whole index on it).

    With sequential scans disabled the planner reaches for any index, even one that only
    hands rows over in order: an Index Scan with no Index Cond reads the whole index and
    filters, which costs as much as the Seq Scan it replaced. It is fine only under a Limit
    with nothing to filter out ("the newest row").
    """
    problems = []
    for node, parents in plan_nodes(plan):
        table = node.get("Relation Name")
        if table is None or not watched(table):
            continue
        kind = node["Node Type"]
        where = ""
        if "Filter" in node:
            condition = node["Filter"]
            if len(condition) > _FILTER_MAX:
                condition = condition[:_FILTER_MAX] + "…"
            where = f" (filter: {condition})"
        if kind == "Seq Scan":
            problems.append(f"Seq Scan on {table}{where}")
        elif kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node:
            if "Filter" in node or not _bounded_by_limit(parents):
                problems.append(
                    f"{kind} using {node['Index Name']} on {table} with no index condition:"
                    f" reads the whole index{where}"
                )
    return problems


def explain(cursor: Any, statement: str, parameters: Any) -> dict[str, Any]:
    """The JSON plan of one captured statement, its parameters bound exactly as they were."""
    try:
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
    except Exception as exc:
        exc.add_note(f"while explaining: {statement} with {parameters!r}")
        raise
    (document,) = cursor.fetchone()
    return document[0]["Plan"]


def plans_without_index(
    conn: sa.Connection, captured: list[Captured], tables: Collection[str] = GROWING_TABLES
) -> list[str]:
    """Describe every captured query whose plan still scans one of `tables` without an index.

    EXPLAIN runs with enable_seqscan off, inside a transaction rolled back at the end, so that
    on a small test table the planner still picks an index whenever one can serve the query.
    The statements go through the DBAPI cursor with their captured parameters: psycopg binds
    them exactly as it did when the code ran (casts, IN lists, escaped percent signs).
    """
    problems = []
    transaction = conn.begin_nested() if conn.in_transaction() else conn.begin()
    try:
        with conn.connection.dbapi_connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            for statement, parameters in captured:
                if not explainable(statement):
                    continue
                plan = explain(cursor, statement, parameters)
                found = scan_problems(plan, tables.__contains__)
                if found:
                    lines = [compact(statement), f"  parameters: {parameters!r}"]
                    problems.append("\n".join(lines + [f"  -> {problem}" for problem in found]))
    finally:
        transaction.rollback()
    return problems
