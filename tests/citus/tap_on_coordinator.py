#!/usr/bin/env python3
"""Rewrites a pgTAP file of db/tests so that every assertion is evaluated on the Citus
coordinator (make test-citus; scripts/test_citus.sh).

pgTAP keeps its plan and its counters in temporary tables of the session. Citus sends a query
that reads one shard to that shard's worker as a whole, assertion function included, and the
worker's session has no plan. A query that also reads a table local to the coordinator is never
sent whole: its subqueries on distributed tables run first and the rest runs on the coordinator.
So each top-level `SELECT <assertion>(...)` gets the one-row temporary table
pg_temp.coordinator added to its FROM list (created right after `SELECT plan(n);`), and
citus.local_table_join_policy is 'prefer-distributed', so that Citus brings the distributed
rows to the coordinator rather than the local row to a worker. Nothing else changes: the
statements under test are the file's own.

Usage: tap_on_coordinator.py <file.sql>   (the rewritten file on stdout)
"""
import re
import sys

ASSERTIONS = {
    "is", "isnt", "ok", "cmp_ok", "matches", "imatches", "doesnt_match", "doesnt_imatch",
    "alike", "unalike", "set_eq", "set_ne", "bag_eq", "results_eq", "results_ne", "is_empty",
    "isnt_empty", "row_eq", "pass", "fail",
}


def statements(text):
    """Yields (start, end) of each top-level statement, end just past its ';'."""
    i, n, start, depth = 0, len(text), 0, 0
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == "'":
            i += 1
            while i < n:
                if text[i] == "'" and i + 1 < n and text[i + 1] == "'":
                    i += 2
                    continue
                if text[i] == "'":
                    break
                i += 1
            i += 1
            continue
        if c == '"':
            j = text.find('"', i + 1)
            i = n if j < 0 else j + 1
            continue
        if c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:])
            if m:
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
                continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == ";" and depth == 0:
            yield start, i + 1
            start = i + 1
        i += 1
    if start < n:
        yield start, n


def call_end(stmt, open_paren):
    """The index just past the ')' closing the call whose '(' is at open_paren."""
    depth = 0
    i, n = open_paren, len(stmt)
    while i < n:
        c = stmt[i]
        if c == "'":
            i += 1
            while i < n and not (stmt[i] == "'" and not stmt.startswith("''", i)):
                i += 2 if stmt.startswith("''", i) else 1
        elif c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", stmt[i:])
            if m:
                j = stmt.find(m.group(0), i + len(m.group(0)))
                i = n if j < 0 else j + len(m.group(0)) - 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def rewrite(text):
    out, planned = [], False
    for start, end in statements(text):
        stmt = text[start:end]
        # Leading blank lines and -- comments stay as they are.
        lead_match = re.match(r"(?:\s+|--[^\n]*\n)*", stmt)
        lead = lead_match.group(0)
        body = stmt[len(lead):]
        m = re.match(r"SELECT\s+([a-z_]+)\s*\(", body)
        if m and m.group(1) == "plan" and not planned:
            out.append(stmt + "\nCREATE TEMPORARY TABLE coordinator AS SELECT 1 AS one;"
                       "\nSET LOCAL citus.local_table_join_policy TO 'prefer-distributed';")
            planned = True
            continue
        if m and m.group(1) in ASSERTIONS and planned:
            close = call_end(body, m.end() - 1)
            rest = body[close:] if close > 0 else ""
            tail = rest.rstrip()
            if tail == ";":
                body = body[:close] + " FROM pg_temp.coordinator" + rest
            elif re.match(r"\s*FROM\s", rest):
                k = close + re.match(r"\s*FROM\s", rest).end()
                body = body[:k] + "pg_temp.coordinator, " + body[k:]
            # an assertion with AS, WHERE or another tail is left as written
            out.append(lead + body)
            continue
        out.append(stmt)
    return "".join(out)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(rewrite(f.read()))
