"""Benchmark of the customers list (/admin/customers/) at 100,000 customers and 300,000 contacts.

    .venv/bin/python -m bench.customers_list [--customers 100000] [--contacts 300000]
        [--repeat 30] [--databases sqlite,postgresql] [--explain]

For each database: a fresh one (SQLite in a temporary file, PostgreSQL in a throwaway cluster from
testing.postgres) built by the migrations, the dataset bulk-loaded and ANALYZEd, then page 1,
page 500, two searches and two filters timed through the Flask test client as a maintainer.
Prints a table per database and writes the same figures as Markdown to bench/results.md.
The issue's target: page 1 and a search under 50 ms median at 100,000 customers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import secrets
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from bench import dataset, measure
from bench.loader import load
from services.operators import hash_password
from testing.postgres import PostgresCluster

DATABASES = ("sqlite", "postgresql")
TARGET_MS = 50.0
TARGETED = ("page 1", "search kovac", "search nov", "duplicates kovac", "duplicates common name",
            "duplicates company")
RESULTS = Path(__file__).with_name("results.md")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument("--databases", default=",".join(DATABASES),
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--batch-size", type=int, default=10_000, help="rows per INSERT batch")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Markdown results file")
    parser.add_argument("--explain", action="store_true",
                        help="print the query plan of every SELECT of each page")
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(args.databases) - set(DATABASES)
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    return args


@contextmanager
def fresh_database(kind: str):
    """URL of an empty database, removed afterwards (the PostgreSQL cluster is stopped)."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="cd-bench-")
        try:
            yield f"sqlite:///{folder}/bench.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        cluster = PostgresCluster().start()
        try:
            yield cluster.create_database("customer_desk_bench")
        finally:
            cluster.stop()


def measure_in_child(url: str, repeat: int, explain: bool) -> dict:
    """Run bench.measure in a fresh interpreter: its peak RSS is then the app's, not the
    loader's, and nothing (engine, caches) carries over from the load or the other database."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure.run, url, repeat, explain).result()


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (f"{os.cpu_count()} CPU ({cpu}), {mem_kib / 2**20:.0f} GiB RAM, "
            f"Python {platform.python_version()}")


def _verdict(row: dict) -> str:
    if row["name"] not in TARGETED:
        return ""
    return "ok" if row["median_ms"] < TARGET_MS else "MISSED"


def _result_rows(result: dict) -> list[list[str]]:
    return [[r["name"], r["url"], f"{r['matched']:,}", f"{r['median_ms']:.1f}", f"{r['p95_ms']:.1f}",
             str(r["statements"]), f"{r['sql_median_ms']:.1f}", f"{r['peak_alloc_mib']:.1f}",
             f"{r['max_rss_mib']:.0f}", _verdict(r)] for r in result["results"]]


RESULT_HEADER = ["page", "URL", "customers matched", "median ms", "p95 ms", "SQL/request",
                 "SQL exec ms", "peak alloc MiB", "max RSS MiB", f"<{TARGET_MS:.0f} ms"]
LOAD_HEADER = ["phase", "seconds", "rows"]


def _load_rows(result: dict, counts: dict[str, int]) -> list[list[str]]:
    rows = [[phase, f"{seconds:.1f}", f"{counts[phase]:,}" if phase in counts else ""]
            for phase, seconds in result["load"].items()]
    return rows + [["total", f"{sum(result['load'].values()):.1f}", ""]]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([line.format(*header), line.format(*("-" * w for w in widths)),
                      *(line.format(*row) for row in rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    cells = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells)


def report(args, data: dataset.Dataset, results: dict[str, dict], table) -> str:
    """The whole report, as text tables (`table=text_table`) or Markdown (`markdown_table`)."""
    counts = {"customer": len(data.customers), "contact": len(data.contacts),
              "customer_search_token": len(data.customer_tokens),
              "contact_search_token": len(data.contact_tokens),
              "customer_operator": len(data.customer_operators)}
    parts = [f"Customers list at {len(data.customers):,} customers and {len(data.contacts):,} "
             f"contacts; {args.repeat} timed requests per page after {measure.WARMUPS} warm-ups, "
             f"signed in as a maintainer, through the Flask test client.",
             f"Machine: {machine()}. {datetime.now():%Y-%m-%d %H:%M}.",
             f"Dataset built once in {data.build_seconds:.1f} s (derived names and search tokens "
             "by the models' own refresh_derived)."]
    for kind, result in results.items():
        parts += [f"### {kind} ({result['server']})", table(RESULT_HEADER, _result_rows(result)),
                  "Load (bulk Core inserts, batches of "
                  f"{args.batch_size:,}; migrate = schema by the migrations):",
                  table(LOAD_HEADER, _load_rows(result, counts))]
    parts.append("SQL/request: statements sent per page (before_cursor_execute). SQL exec ms: "
                 "median time inside cursor.execute (psycopg has every row by then; SQLite may "
                 "still step through rows while fetching); the rest of a request is Python: "
                 "Flask-Admin, Jinja, the test client. Peak alloc: Python heap peak of one "
                 "request (tracemalloc). Max RSS: the measuring process (VmHWM), which never "
                 "held the dataset.")
    return "\n\n".join(parts) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    print(f"Building {args.customers:,} customers and {args.contacts:,} contacts…", flush=True)
    data = dataset.build(args.customers, args.contacts, hash_password(secrets.token_urlsafe(16)))
    results = {}
    for kind in args.databases:
        with fresh_database(kind) as url:
            print(f"[{kind}] loading…", flush=True)
            timings = load(url, data, args.batch_size)
            print(f"[{kind}] measuring…", flush=True)
            results[kind] = {**measure_in_child(url, args.repeat, args.explain), "load": timings}
        if args.explain:
            print(f"\n[{kind}] query plans\n" + "\n".join(results[kind]["plans"]), flush=True)
    print("\n" + report(args, data, results, text_table))
    args.output.write_text("## Customers list benchmark\n\n" + report(args, data, results,
                                                                     markdown_table))
    print(f"Markdown written to {args.output}")


if __name__ == "__main__":
    main()
