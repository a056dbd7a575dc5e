#!/usr/bin/env python3
"""bench/report.py: turns the measurements of bench/run.sh into bench/RESULTS.md.

    report.py RESULTS.jsonl RESULTS.md   write the report and print it
    report.py --meta META.tsv            the first line of RESULTS.jsonl: the run's facts as JSON
    report.py --line JSON                one progress line for one measurement

RESULTS.jsonl holds everything the report needs: its first line {"meta": {...}} (date,
machine, command, commit, server settings), then one line per measurement.

Every verdict in the "Targets" section is computed here from the numbers in RESULTS.jsonl, so
the report can be regenerated (and checked) from the raw data. Python's standard library only.
"""

import json
import os
import sys

SCENARIOS = {
    "orders-new": "POST /orders, a new Idempotency-Key per request",
    "orders-replay": "POST /orders, replaying one key",
    "process-new": "POST /api/orders/process, a new orderId per request",
    "process-replay": "POST /api/orders/process, replaying a completed workflow",
    "workflow-get": "GET /api/orders/{orderId} of a completed workflow",
}
NEW = ("orders-new", "process-new")
RATIO_TARGET = {"orders-new": 0.85, "process-new": 0.85,
                "orders-replay": 0.70, "process-replay": 0.70, "workflow-get": 0.70}
REPLAY_OVER_NEW = 4.0
P99_LIMIT_MS = 25.0
P99_CONCURRENCY = 64
RSS_LIMIT_MIB = 64.0
HISTORY_TARGET = 1_000_000
HISTORY_KEEP = 0.90


# --- derived numbers -------------------------------------------------------------------------

def front_rps(r):
    return r["wrk"]["requests"] / (r["wrk"]["duration_us"] / 1e6)


def front_errors(r):
    """Answers that were not what the scenario expects, plus socket errors and timeouts."""
    w = r["wrk"]
    return w["unexpected"] + w["connect"] + w["read"] + w["write"] + w["timeout"]


def pg_errors(r):
    return r["pgbench"]["failed"] + r["pgbench"]["aborted_clients"]


def ratio(r):
    tps = r["pgbench"]["tps"]
    return front_rps(r) / tps if tps else float("nan")


def rss_mib(r):
    return r["rss_kib"] / 1024


def fmt_n(n):
    return f"{n:,.0f}".replace(",", " ")


def fmt_history(n):
    return fmt_n(n) if n else "0"


def short(value, limit, higher_is_better, unit=""):
    """'met' or 'missed by …' for one number against its limit."""
    if value != value:  # NaN: nothing to compare
        return "not measured"
    if (value >= limit) if higher_is_better else (value <= limit):
        return "met"
    gap = (limit - value) if higher_is_better else (value - limit)
    side = "below" if higher_is_better else "above"
    return f"**missed** by {gap:.2f}{unit} ({100 * gap / limit:.0f} % {side} the target)"


# --- the report --------------------------------------------------------------------------------

def progress_line(r):
    return (f"history {fmt_history(r['history']):>9}  {r['scenario']:<14} c={r['concurrency']:<3} "
            f"front {front_rps(r):8.0f} req/s  p50 {r['wrk']['p50_ms']:6.2f} ms  "
            f"p99 {r['wrk']['p99_ms']:6.2f} ms  errors {front_errors(r)}  |  pgbench "
            f"{r['pgbench']['tps']:8.0f} tps  errors {pg_errors(r)}  |  ratio {ratio(r):.2f}  "
            f"RSS {rss_mib(r):.1f} MiB")


def scenario_table(rows):
    out = ["| history | connections | front req/s | p50 ms | p99 ms | front errors | pgbench tps "
           "| pgbench errors | front/pgbench | server peak RSS MiB |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {fmt_history(r['history'])} | {r['concurrency']} | {fmt_n(front_rps(r))} "
                   f"| {r['wrk']['p50_ms']:.2f} | {r['wrk']['p99_ms']:.2f} | {front_errors(r)} "
                   f"| {fmt_n(r['pgbench']['tps'])} | {pg_errors(r)} | {ratio(r):.2f} "
                   f"| {rss_mib(r):.1f} |")
    return out


def summary_table(rows):
    """One row per scenario and connection count: the empty database, and how the largest
    history compares with it. README quotes this table."""
    sizes = sorted({r["history"] for r in rows})
    base, big = sizes[0], sizes[-1]
    by = {(r["history"], r["scenario"], r["concurrency"]): r for r in rows}
    head = (f"| scenario | connections | front req/s | p50 ms | p99 ms | pgbench tps "
            f"| front/pgbench |")
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    if big != base:
        head += f" front req/s at {fmt_history(big)} of history |"
        rule += " ---: |"
    out = [head, rule]
    for s in SCENARIOS:
        for c in sorted({r["concurrency"] for r in rows}):
            r = by.get((base, s, c))
            if r is None:
                continue
            line = (f"| {s} | {c} | {fmt_n(front_rps(r))} | {r['wrk']['p50_ms']:.1f} "
                    f"| {r['wrk']['p99_ms']:.1f} | {fmt_n(r['pgbench']['tps'])} | {ratio(r):.2f} |")
            if big != base:
                b = by.get((big, s, c))
                line += (f" {fmt_n(front_rps(b))} ({front_rps(b) / front_rps(r):.0%}) |"
                         if b else " — |")
            out.append(line)
    return out


def checks(rows):
    """Errors and row counts: a benchmark that silently measures failures is worthless."""
    notes = []
    for r in rows:
        where = f"{r['scenario']}, history {fmt_history(r['history'])}, c={r['concurrency']}"
        w, p = r["wrk"], r["pgbench"]
        if front_errors(r):
            notes.append(f"- {where}: the front gave {w['unexpected']} unexpected answers "
                         f"({w['status_4xx_5xx']} with status ≥ 400), {w['connect']} connect, "
                         f"{w['read']} read, {w['write']} write errors, {w['timeout']} timeouts.")
        if pg_errors(r):
            notes.append(f"- {where}: pgbench had {p['failed']} failed transactions and "
                         f"{p['aborted_clients']} clients aborted on an error.")
        if r["scenario"] in NEW:
            ok = w["requests"] - w["unexpected"]
            if r["wrk_rows"] is not None and r["wrk_rows"] < ok:
                notes.append(f"- {where}: the front answered {ok} successes but only "
                             f"{r['wrk_rows']} rows exist.")
            if p["rows"] is not None and p["rows"] != p["transactions"]:
                notes.append(f"- {where}: pgbench counted {p['transactions']} transactions but "
                             f"{p['rows']} rows exist.")
    return notes


def targets(rows):
    out = ["| target | measured (worst case) | verdict |", "| --- | --- | --- |"]

    def row(target, measured, verdict):
        out.append(f"| {target} | {measured} | {verdict} |")

    by = {(r["history"], r["scenario"], r["concurrency"]): r for r in rows}
    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in rows)]

    errors = sum(front_errors(r) + pg_errors(r) for r in rows)
    row("no errors in any run (front and pgbench)", f"{errors} errors",
        "met" if errors == 0 else "**missed**: see Checks; those runs' numbers are not valid")

    for s in scenarios:
        mine = [r for r in rows if r["scenario"] == s]
        worst = min(mine, key=ratio)
        row(f"{s}: front/pgbench ≥ {RATIO_TARGET[s]:.2f}",
            f"{ratio(worst):.2f} (history {fmt_history(worst['history'])}, "
            f"c={worst['concurrency']}); {sum(ratio(r) < RATIO_TARGET[s] for r in mine)} of "
            f"{len(mine)} runs below", short(ratio(worst), RATIO_TARGET[s], True))

    pairs = [(by[k[0], "process-replay", k[2]], r) for k, r in by.items()
             if k[1] == "process-new" and (k[0], "process-replay", k[2]) in by]
    if pairs:
        worst = min(pairs, key=lambda p: front_rps(p[0]) / front_rps(p[1]))
        x = front_rps(worst[0]) / front_rps(worst[1])
        row(f"front: replay of a completed workflow ≥ {REPLAY_OVER_NEW:.0f}× a new workflow",
            f"{x:.2f}× (history {fmt_history(worst[1]['history'])}, c={worst[1]['concurrency']})",
            short(x, REPLAY_OVER_NEW, True))
    else:
        row(f"replay ≥ {REPLAY_OVER_NEW:.0f}× new workflow", "needs process-new and process-replay",
            "not measured")

    at64 = [r for r in rows if r["concurrency"] == P99_CONCURRENCY]
    for s in scenarios:
        mine = [r for r in at64 if r["scenario"] == s]
        if not mine:
            row(f"{s}: p99 ≤ {P99_LIMIT_MS:.0f} ms at {P99_CONCURRENCY} connections",
                f"no run at {P99_CONCURRENCY} connections", "not measured")
            continue
        worst = max(mine, key=lambda r: r["wrk"]["p99_ms"])
        row(f"{s}: p99 ≤ {P99_LIMIT_MS:.0f} ms at {P99_CONCURRENCY} connections",
            f"{worst['wrk']['p99_ms']:.2f} ms (history {fmt_history(worst['history'])})",
            short(worst["wrk"]["p99_ms"], P99_LIMIT_MS, False, " ms"))

    worst = max(rows, key=rss_mib)
    row(f"server peak RSS ≤ {RSS_LIMIT_MIB:.0f} MiB",
        f"{rss_mib(worst):.1f} MiB ({worst['scenario']}, history "
        f"{fmt_history(worst['history'])}, c={worst['concurrency']})",
        short(rss_mib(worst), RSS_LIMIT_MIB, False, " MiB"))

    sizes = sorted({r["history"] for r in rows})
    if 0 in sizes and len(sizes) > 1:
        big = HISTORY_TARGET if HISTORY_TARGET in sizes else sizes[-1]
        caveat = "" if big == HISTORY_TARGET else (
            f" — measured at {fmt_history(big)}, not {fmt_history(HISTORY_TARGET)}: "
            "the target itself is not measured")
        for s in scenarios:
            for c in sorted({r["concurrency"] for r in rows}):
                if (0, s, c) in by and (big, s, c) in by:
                    keep = front_rps(by[big, s, c]) / front_rps(by[0, s, c])
                    keep_pg = by[big, s, c]["pgbench"]["tps"] / by[0, s, c]["pgbench"]["tps"]
                    row(f"{s}, c={c}: throughput at {fmt_history(big)} of history ≥ "
                        f"{HISTORY_KEEP:.0%} of the empty database",
                        f"front {keep:.0%}, pgbench {keep_pg:.0%}",
                        short(keep, HISTORY_KEEP, True) + caveat)
    else:
        row("throughput at 1 000 000 of history within 10 % of the empty database",
            "needs history 0 and a larger size", "not measured")
    return out


def report(meta, rows):
    mem_gib = int(meta["mem_kib"]) / 1024 / 1024
    out = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (bench/run.sh, bench/report.py); the raw numbers are in",
        "RESULTS.jsonl beside this file. A benchmark, not a test: it reports, it never fails.",
        "",
        f"- date: {meta['date']} (finished {meta['finished']})",
        f"- command: `{meta['command']}`",
        f"- commit: {meta['commit']}",
        f"- machine: {meta['cores']} cores ({meta['cpu']}), {mem_gib:.1f} GiB memory; load average "
        f"{meta['loadavg_start']} at the start, {meta['loadavg_end']} at the end",
        f"- PostgreSQL {meta['postgres']} (scripts/pg.sh's private cluster: "
        f"{meta.get('pg_settings', 'settings not recorded')}), {meta['wrk']}",
        f"- server {meta['build']}, {meta['server']}",
        f"- database time of one request (bench/dbtime.sh: pgbench at 1 client, synchronous_commit "
        f"off, minus SELECT 1): {meta.get('dbtime') or 'not measured'}",
        f"- instructions PostgreSQL spends on one request (bench/dbcost.sh, valgrind, net of "
        f"SELECT 1): {meta.get('dbcost') or 'not measured'}",
        "",
    ]
    # The load at the end is the benchmark's own (wrk, the server, PostgreSQL, pgbench); only the
    # load when it started says whether other work was sharing the machine.
    before = float(meta["loadavg_start"].split()[0])
    if before > int(meta["cores"]):
        out += [f"**Noisy:** the load average was {before:.1f} on {meta['cores']} cores when the run "
                "started, so other work shared the machine; wrk and pgbench ran at different "
                "moments, so their ratio is noisy too. Re-measure on a quiet machine before "
                "reading much into these numbers.", ""]
    else:
        out += ["The load average at the end is the benchmark's own work (wrk, the server, "
                "PostgreSQL, pgbench on two cores). Even on a quiet machine the same statement "
                "varies by up to a third between runs minutes apart, so read single ratios "
                "with that in mind.", ""]
    out += [
        "How to read it: for each history size (finished workflows and orders already in the",
        "tables) and connection count, wrk runs against the server, then pgbench calls the same",
        "SQL statement with the same arguments, with as many clients, on the same database",
        "(`pgbench -M prepared -j 2`); front/pgbench is the front's share of that ceiling. wrk",
        "runs with 2 threads on the same machine as the server and PostgreSQL. Latencies are",
        "wrk's. Each history size starts from a fresh database; every wrk and pgbench run "
        "starts after a CHECKPOINT and, once the tables hold data, a VACUUM ANALYZE (so that",
        "autovacuum does not run inside a measured window). \"front errors\" counts every answer with another status than the scenario",
        "expects (or a workflow that is not completed) and every socket error or timeout.",
        "Server peak RSS is VmHWM of the server process "
        + ("during that wrk run (reset before each run through /proc/<pid>/clear_refs)."
           if meta["rss_scope"] == "run" else
           "since the server started for that history size (the reset was refused)."),
        "",
    ]
    sizes = sorted({r["history"] for r in rows})
    out += [f"## Summary (history {fmt_history(sizes[0])})", ""] + summary_table(rows) + [
        "", f"Server peak RSS over all runs: {max(rss_mib(r) for r in rows):.1f} MiB. "
        "Errors over all runs: "
        f"{sum(front_errors(r) for r in rows)} (front), {sum(pg_errors(r) for r in rows)} (pgbench).",
        ""]
    for s, title in SCENARIOS.items():
        mine = sorted((r for r in rows if r["scenario"] == s),
                      key=lambda r: (r["history"], r["concurrency"]))
        if mine:
            out += [f"## {s}: {title}", ""] + scenario_table(mine) + [""]

    out += ["## Targets", "",
            "Computed from the tables above; why the misses happen is in the next section.",
            ""] + targets(rows) + [""]
    # The profile analysis is written by hand (bench/PROFILE.md) from measurements made
    # beside the benchmark; it is included as it is.
    profile = os.path.join(os.path.dirname(os.path.abspath(__file__)), "PROFILE.md")
    if os.path.exists(profile):
        with open(profile) as f:
            out += [f.read().rstrip("\n"), ""]
    notes = checks(rows)
    out += ["## Checks", ""] + (notes or [
        "Every run: no error, no unexpected answer; for new orders and new workflows, every",
        "success of either client left its row (an idempotency key, a completed workflow)."]) + [""]
    return "\n".join(out)


def main(argv):
    if len(argv) == 3 and argv[1] == "--line":
        print(progress_line(json.loads(argv[2])), flush=True)
        return 0
    if len(argv) == 3 and argv[1] == "--meta":
        with open(argv[2]) as f:
            meta = dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)
        print(json.dumps({"meta": meta}))
        return 0
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    meta = next((line["meta"] for line in lines if "meta" in line), None)
    rows = [line for line in lines if "meta" not in line]
    if meta is None or not rows:
        print(f"report.py: {argv[1]} has no meta line or no measurements", file=sys.stderr)
        return 1
    text = report(meta, rows)
    with open(argv[2], "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
