"""Benchmark of duplicate matching: its quality on a labelled set and its speed, at any size.

    .venv/bin/python -m bench.duplicates --size 100000 [--db sqlite|postgres|both]
        [--contacts N] [--queries 1200] [--actor-sample 200] [--explain-slowest 3]

For each database: a fresh one (SQLite in a temporary file, PostgreSQL in a throwaway cluster
from testing.postgres) built by the migrations, the generated registry of tests/labelled_duplicates
(`--size` customers, three contacts per customer unless `--contacts`) loaded by bench.fast_load,
then — in a fresh interpreter, so its memory is the lookups' and not the loader's — every labelled
query through `services.duplicates.find_duplicates(session, None, make_probe(...))` as the quick
form and the API send them, a sample again as a maintainer and as an ordinary operator responsible
for 1 % of the customers (access rules in the lookups), and the live list's partial probes.

Printed, and written to bench/duplicates_results.md (one section per size and database, kept
across runs): listed-in-top-5 recall, strong recall and the false-refusal rate; median / p95 /
max per lookup, SQL statements per lookup, peak memory; the query plans of a typical lookup and
of the slowest ones (EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import multiprocessing
import re
import statistics
import subprocess
import time
import tracemalloc
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from bench.customers_list import machine, markdown_table, text_table
from bench.fast_load import MAINTAINER_EMAIL, OPERATOR_EMAIL, assign, load, prepare
from bench.registry import fresh_database
from tests.labelled_duplicates import TOP, Background, Query, Scores, judge

RESULTS = Path(__file__).with_name("duplicates_results.md")
DATABASES = {"sqlite": "sqlite", "postgres": "postgresql"}
LIVE_TERMS = ("Tatra", "nov", "jana horv", "kovac pe", "Kovac", "Šťastný", "horv")
LIVE_REPEAT = 20
WARMUPS = 30
TARGET_P95_MS = 25.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="customers in the background")
    parser.add_argument("--contacts", type=int, default=None, help="contacts (default: 3 per customer)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--queries", type=int, default=1200, help="labelled queries (about)")
    parser.add_argument("--actor-sample", type=int, default=200,
                        help="queries run again as a maintainer and as an ordinary operator")
    parser.add_argument("--explain-slowest", type=int, default=3, help="plans of the slowest lookups")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


# -- the measuring child ----------------------------------------------------------------------------

def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * share)) - 1]


def _timing(values: list[float]) -> dict:
    return {"median": statistics.median(values), "p95": _percentile(values, 0.95), "max": max(values),
            "n": len(values)}


def _probe_arguments(query: Query, make_probe) -> dict:
    arguments = query.probe_arguments()
    if "partial" in inspect.signature(make_probe).parameters:
        arguments["partial"] = False
    return arguments


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Statements:
    """The SQL statements sent while `on`, each with its parameters and milliseconds."""

    def __init__(self) -> None:
        self.on, self.sent, self.started = False, [], 0.0

    def before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.on:
            self.started = time.perf_counter()

    def after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.on:
            self.sent.append((statement, parameters, (time.perf_counter() - self.started) * 1000))


def _explain(conn, statements: list[tuple[str, object, float]]) -> list[str]:
    postgres = conn.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    lines = []
    for statement, params, ms in statements:
        if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        lines.append(f"  SQL ({ms:.1f} ms): " + " ".join(statement.split())[:600])
        for row in conn.exec_driver_sql(prefix + statement, params):
            lines.append("    " + (row[0] if postgres else f"{row[1]:>3} {row[3]}"))
    return lines


def run(url: str, queries: list[Query], actor_sample: int, explain_slowest: int) -> dict:
    """Every query through find_duplicates, timed; returns plain data (it crosses processes)."""
    from sqlalchemy import event, func, select

    from bench.loader import make_app
    from extensions import db
    from models import Operator
    from services.duplicates import find_duplicates, make_probe

    app = make_app(url)
    log = Statements()
    partial = "partial" in inspect.signature(make_probe).parameters
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", log.before)
        event.listen(db.engine, "after_cursor_execute", log.after)
        sqlite = db.engine.dialect.name == "sqlite"
        server = str(db.session.scalar(select(func.sqlite_version() if sqlite else func.version())))
        actors = {role: db.session.scalar(select(Operator.id).where(Operator.email == email))
                  for role, email in (("maintainer", MAINTAINER_EMAIL), ("operator", OPERATOR_EMAIL))}
        session = db.session

        def lookup(probe, actor_id=None) -> tuple[list, float, list, float]:
            actor = session.get(Operator, actor_id) if actor_id else None
            log.sent = []
            log.on = True
            started = time.perf_counter()
            found = find_duplicates(session, actor, probe)
            elapsed = (time.perf_counter() - started) * 1000
            log.on = False
            statements = log.sent
            sql_ms = sum(ms for _, _, ms in statements)
            session.remove()
            return found, elapsed, statements, sql_ms

        probes = [make_probe(**_probe_arguments(q, make_probe)) for q in queries]
        for probe in probes[:WARMUPS]:
            lookup(probe)
        rows, verdicts = [], []
        for query, probe in zip(queries, probes, strict=True):
            found, ms, statements, sql_ms = lookup(probe)
            verdict = judge(query, found)
            verdicts.append(verdict)
            rows.append({"ms": ms, "statements": len(statements), "sql_ms": sql_ms, "case": query.case,
                         "sent": [(" ".join(sql.split())[:140], round(t, 2)) for sql, _, t in statements]})
        tracemalloc.start()
        peaks = []
        for probe in probes[:50]:
            tracemalloc.reset_peak()
            lookup(probe)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()

        as_actor: dict[str, dict] = {}
        for role, actor_id in actors.items():
            if not actor_id or not actor_sample:
                continue
            actor_rows, actor_verdicts = [], []
            for query, probe in list(zip(queries, probes, strict=True))[:actor_sample]:
                found, ms, statements, _ = lookup(probe, actor_id)
                actor_verdicts.append(judge(query, found))
                actor_rows.append({"ms": ms, "statements": len(statements)})
            as_actor[role] = {"id": actor_id, "rows": actor_rows, "verdicts": actor_verdicts}
        live_slowest = None

        live = []
        if partial:
            for term in LIVE_TERMS:
                probe = make_probe(kind=None, name=term, partial=True)
                for _ in range(2):
                    lookup(probe)
                samples = [lookup(probe) for _ in range(LIVE_REPEAT)]
                found = samples[-1][0]
                if live_slowest is None or max(s[1] for s in samples) > live_slowest[0]:
                    live_slowest = (max(s[1] for s in samples), term)
                live.append({"term": term, "timing": _timing([s[1] for s in samples]),
                             "statements": max(len(s[2]) for s in samples),
                             "sql_ms": statistics.median(s[3] for s in samples),
                             "found": len(found), "first": [c.label for c in found[:3]]})

        plans = []
        typical = next((i for i, q in enumerate(queries) if "typo in the name, phone" in q.case), 0)
        company = next((i for i, q in enumerate(queries)
                        if q.case.startswith("company: typo in the first")), 0)
        chosen = [("typical lookup", typical, None), ("company typo lookup", company, None)]
        slowest = sorted(range(len(rows)), key=lambda i: -rows[i]["ms"])[:explain_slowest]
        chosen += [(f"slow lookup ({rows[i]['ms']:.1f} ms in the run)", i, None) for i in slowest]
        for role, sample in as_actor.items():
            index = max(range(len(sample["rows"])), key=lambda i: sample["rows"][i]["ms"])
            took = sample["rows"][index]["ms"]
            chosen.append((f"slowest lookup as the {role} ({took:.1f} ms in the run)", index, sample["id"]))
        chosen_live = []
        if partial:
            terms = ["nov", "jana horv"] + ([live_slowest[1]] if live_slowest else [])
            chosen_live = [(f"live search {term!r}", make_probe(kind=None, name=term, partial=True))
                           for term in dict.fromkeys(terms)]
        with db.engine.connect() as conn:
            for title, index, actor_id in chosen:
                query = queries[index]
                _, ms, statements, _ = lookup(probes[index], actor_id)
                plans += [f"== {title}: {query.case}: {query.kind} {query.name!r} "
                          f"({ms:.1f} ms now, {len(statements)} statements)", *_explain(conn, statements)]
            for title, probe in chosen_live:
                _, ms, statements, _ = lookup(probe)
                plans += [f"== {title} ({ms:.1f} ms, {len(statements)} statements)",
                          *_explain(conn, statements)]

    times = [r["ms"] for r in rows]
    slow = [{"ms": rows[i]["ms"], "sql_ms": rows[i]["sql_ms"], "describe": verdicts[i].describe(),
             "sent": rows[i]["sent"]} for i in slowest]
    by_case = {}
    for verdict, row in zip(verdicts, rows, strict=True):
        entry = by_case.setdefault(verdict.query.case, {"n": 0, "missed": 0, "ms": []})
        entry["n"] += 1
        entry["missed"] += verdict.missed
        entry["ms"].append(row["ms"])
    return {
        "server": server.split(" on ")[0],
        "scores": Scores.of(verdicts).__dict__,
        "timing": _timing(times),
        "sql_ms": statistics.median(r["sql_ms"] for r in rows),
        "statements": {"median": statistics.median(r["statements"] for r in rows),
                       "max": max(r["statements"] for r in rows)},
        "peak_alloc_mib": max(peaks) if peaks else 0.0,
        "max_rss_mib": _peak_rss_mib(),
        "actors": {role: {"scores": Scores.of(sample["verdicts"]).__dict__,
                          "timing": _timing([r["ms"] for r in sample["rows"]]),
                          "statements": max(r["statements"] for r in sample["rows"])}
                   for role, sample in as_actor.items()},
        "live": live,
        "missed": [v.describe() for v in verdicts if v.missed],
        "by_case": {case: {"n": e["n"], "missed": e["missed"], "p95": _percentile(e["ms"], 0.95)}
                    for case, e in by_case.items()},
        "slow": slow,
        "plans": plans,
    }


def measure_in_child(url: str, queries: list[Query], args) -> dict:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run, url, queries, args.actor_sample, args.explain_slowest).result()


# -- the report ------------------------------------------------------------------------------------

def _scores(raw: dict) -> Scores:
    return Scores(**raw)


def summary_row(size: int, contacts: int, kind: str, result: dict) -> list[str]:
    scores, timing = _scores(result["scores"]), result["timing"]
    return [f"{size:,}", f"{contacts:,}", kind, f"{scores.recall:.3f}", f"{scores.strong_recall:.3f}",
            f"{scores.false_refusals:.2%}", f"{timing['median']:.1f}", f"{timing['p95']:.1f}",
            f"{timing['max']:.1f}", f"{result['sql_ms']:.1f}",
            f"{result['statements']['median']:.0f} / {result['statements']['max']}",
            " / ".join(f"{result['actors'][r]['timing']['p95']:.1f}" if r in result["actors"] else "–"
                       for r in ("maintainer", "operator")),
            f"{result['peak_alloc_mib']:.1f}", f"{result['max_rss_mib']:.0f}",
            f"{sum(result['load']['seconds'].values()):.0f}"]


SUMMARY_HEADER = ["customers", "contacts", "database", f"listed in top {TOP}", "strong recall",
                  "false refusals", "median ms", "p95 ms", "max ms", "in SQL ms (median)",
                  "SQL/lookup (median / max)", "p95 ms as maintainer / operator",
                  "peak alloc MiB", "max RSS MiB", "load s"]
LIVE_HEADER = ["live probe (partial)", "median ms", "p95 ms", "max ms", "SQL", "found", "first three"]
CASE_HEADER = ["case", "queries", "missed", "p95 ms"]


BRIEF_PLANS = ("== typical lookup", "== slow lookup", "== slowest lookup as the operator",
               "== live search 'nov'")


def brief_plans(lines: list[str]) -> list[str]:
    """The plans worth keeping in the results file: a typical lookup, the slowest one, the
    operator's slowest and one live search (the printed report has them all)."""
    kept, keep, seen = [], False, set()
    for line in lines:
        if line.startswith("== "):
            prefix = next((p for p in BRIEF_PLANS if line.startswith(p)), None)
            keep = prefix is not None and prefix not in seen
            seen.add(prefix)
        if keep:
            kept.append(line)
    return kept


def section(args, kind: str, result: dict, table, *, with_plans: bool, all_plans: bool = True) -> str:
    scores = _scores(result["scores"])
    load_report = result["load"]
    parts = [f"### {args.size:,} customers, {load_report['rows']['contact']:,} contacts — {kind} "
             f"({result['server']})",
             f"Measured {datetime.now():%Y-%m-%d %H:%M} at commit {result.get('revision', 'unknown')} "
             f"on {machine()}; load average before the lookups {result['load_average']}.",
             f"Quality: {scores}.",
             table(SUMMARY_HEADER, [summary_row(args.size, load_report["rows"]["contact"], kind, result)])]
    for role, sample in result["actors"].items():
        timing = sample["timing"]
        quality = (f"{_scores(sample['scores'])}" if role == "maintainer" else
                   "records outside their 1 % are hidden, so recall is not theirs to measure")
        parts.append(f"As the {role} (first {timing['n']} queries): median {timing['median']:.1f} ms, "
                     f"p95 {timing['p95']:.1f} ms, max {timing['max']:.1f} ms, up to {sample['statements']} "
                     f"statements; {quality}.")
    if result["live"]:
        parts.append(table(LIVE_HEADER, [[f"{r['term']!r}", f"{r['timing']['median']:.1f}",
                                          f"{r['timing']['p95']:.1f}", f"{r['timing']['max']:.1f}",
                                          str(r["statements"]), str(r["found"]), "; ".join(r["first"])]
                                         for r in result["live"]]))
    parts.append(table(CASE_HEADER, [[case, str(e["n"]), str(e["missed"]), f"{e['p95']:.1f}"]
                                     for case, e in sorted(result["by_case"].items())]))
    rows = [[phase, f"{seconds:.1f}"] for phase, seconds in load_report["seconds"].items()]
    parts.append("Load (bench.fast_load): " + ", ".join(f"{p} {s} s" for p, s in rows) + "; rows: " +
                 ", ".join(f"{t} {n:,}" for t, n in load_report["rows"].items()) + ".")
    if result["missed"]:
        parts.append("Missed queries:\n\n```\n" + "\n".join(result["missed"]) + "\n```")
    if with_plans:
        slow = []
        for s in result["slow"]:
            slow.append(f"{s['ms']:.1f} ms ({s['sql_ms']:.1f} ms in SQL) {s['describe']}")
            slow += [f"      {ms:6.2f} ms  {sql}" for sql, ms in s["sent"]]
        parts.append("Slowest lookups, with the time of each statement:\n\n```\n" + "\n".join(slow) + "\n```")
        plans = result["plans"] if all_plans else brief_plans(result["plans"])
        parts.append("Query plans:\n\n```\n" + "\n".join(plans) + "\n```")
    return "\n\n".join(parts)


SECTION = re.compile(r"<!-- section (?P<key>\S+) (?P<summary>\[.*?\]) -->\n(?P<body>.*?)<!-- end -->\n",
                     re.S)


def write_markdown(path: Path, key: str, summary: list[str], body: str) -> None:
    """Replace this size and database's section of the results file, keep the others, and
    rebuild the summary table from every section."""
    sections = {}
    if path.exists():
        for match in SECTION.finditer(path.read_text()):
            sections[match["key"]] = (json.loads(match["summary"]), match["body"])
    sections[key] = (summary, body + "\n")

    def order(item):
        size, database = item[0].split("/")
        return int(size), database

    ordered = sorted(sections.items(), key=order)
    head = ["## Duplicate matching benchmark", "",
            "`.venv/bin/python -m bench.duplicates --size N --db sqlite|postgres|both` "
            "(bench/duplicates.py): a generated registry (tests/labelled_duplicates.py) loaded by "
            "bench/fast_load.py, then every "
            "labelled query through `services.duplicates.find_duplicates` in a fresh process. Targets "
            f"(issue 13): listed in top {TOP} ≥ 0.97, false refusals ≤ 1 %, p95 ≤ {TARGET_P95_MS:.0f} ms at "
            "1,000,000 customers.", "",
            markdown_table(SUMMARY_HEADER, [row for _, (row, _) in ordered]), ""]
    body_parts = [f"<!-- section {k} {json.dumps(row, ensure_ascii=False)} -->\n{text}<!-- end -->\n"
                  for k, (row, text) in ordered]
    path.write_text("\n".join(head) + "\n" + "\n".join(body_parts))


class Progress:
    """Prints the loader's progress every 30 seconds."""

    def __init__(self, label: str):
        self.label, self.last = label, time.perf_counter()

    def __call__(self, message: str) -> None:
        if time.perf_counter() - self.last > 30:
            print(f"[{self.label}]   {message}", flush=True)
            self.last = time.perf_counter()


def _revision() -> str:
    """The commit measured, and whether the matching code had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "services", "models", "migrations"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes" if dirty else "")


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv=None) -> None:
    args = parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for kind in kinds:
        with fresh_database(DATABASES[kind]) as url:
            print(f"[{kind}] preparing the schema…", flush=True)
            prepare(url)
            background = Background(args.size, args.contacts)
            print(f"[{kind}] generating and loading {args.size:,} customers and "
                  f"{background.contact_total:,} contacts…", flush=True)
            report = load(url, background, progress=Progress(kind))
            report.rows["customer_operator"] = assign(url)
            print(f"[{kind}] loaded in {report.total:.0f} s: " +
                  ", ".join(f"{p} {s:.0f} s" for p, s in report.seconds.items()), flush=True)
            queries = background.queries(args.queries)
            cases = Counter(q.target is None for q in queries)
            print(f"[{kind}] {len(queries)} labelled queries ({cases[False]} duplicates, {cases[True]} new "
                  f"records); measuring…", flush=True)
            del background
            load_average = _load_average()
            result = measure_in_child(url, queries, args)
            result["load"] = {"seconds": report.seconds, "rows": report.rows}
            result["load_average"] = load_average
            result["revision"] = _revision()
        print("\n" + section(args, kind, result, text_table, with_plans=True) + "\n", flush=True)
        summary = summary_row(args.size, report.rows["contact"], kind, result)
        write_markdown(args.output, f"{args.size}/{kind}", summary,
                       section(args, kind, result, markdown_table, with_plans=True, all_plans=False))
        print(f"Markdown written to {args.output}", flush=True)


if __name__ == "__main__":
    main()
