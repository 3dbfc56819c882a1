"""Benchmark of the customers and contacts lists at 100,000 and 1,000,000 customers (three
contacts each).

    .venv/bin/python -m bench.customers_list [--customers 100000,1000000] [--repeat 30]
        [--databases sqlite,postgresql] [--explain] [--keep DIR]

For each size and database: a registry built by bench.registry (the migrations' schema, the
generated customers and contacts loaded by bench.fast_load, lookups and operators by bench.enrich;
kept in DIR and reused when --keep names one), then, in a fresh interpreter, every page of
bench.measure timed through the Flask test client as a maintainer next to the same page as
hand-written SQL (bench.raw_pages). Prints a table per size and database and writes the same
as Markdown to bench/results.md.

Targets (issue 19): page 1 and the deep page within 2x of their hand-written SQL; every search
under 20 ms median on SQLite and 40 ms on PostgreSQL; one worker under 200 MB RSS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from bench import measure
from bench.registry import add_size_arguments, read_size_arguments, registry

SEARCH_TARGET_MS = {"sqlite": 20.0, "postgresql": 40.0}
DJANGO_TARGET = {"list": 3.0, "search": 10.0}  # at least this many times faster than Django admin
RAW_RATIO_TARGET = 2.0
RAW_TARGETED = ("page 1", "deep page")
RSS_TARGET_MIB = 200
RESULTS = Path(__file__).with_name("results.md")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser, "100000,1000000")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument("--keep", type=Path, default=None,
                        help="folder of kept registries (built there once, then reused)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Markdown results file")
    parser.add_argument("--no-peers", dest="peers", action="store_false",
                        help="leave out Django admin (bench.peers.django_admin)")
    parser.add_argument("--explain", action="store_true",
                        help="print the query plan of every SELECT of each page")
    return read_size_arguments(parser, parser.parse_args(argv))


def measure_in_child(url: str, repeat: int, explain: bool) -> dict:
    """Run bench.measure in a fresh interpreter: its peak RSS is then the app's, not the
    loader's, and nothing (engine, caches) carries over from the load or the other database."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure.run, url, repeat, explain).result()


def django_in_child(url: str, repeat: int) -> dict:
    """Django admin over the same database (bench.peers.django_admin), in a process of its own."""
    from bench.peers import django_admin

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(django_admin.measure, url, repeat).result()


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (f"{os.cpu_count()} CPU ({cpu}), {mem_kib / 2**20:.0f} GiB RAM, "
            f"Python {platform.python_version()}")


def load_average() -> str:
    return " / ".join(f"{n:.2f}" for n in os.getloadavg())


def _django_target(name: str) -> float:
    return DJANGO_TARGET["search" if "search" in name else "list"]


def _verdict(kind: str, row: dict) -> str:
    checks = []
    if row.get("django"):
        checks.append(row["django"]["median_ms"] >= _django_target(row["name"]) * row["median_ms"])
    if row["name"] in RAW_TARGETED and row["raw"]:
        checks.append(row["median_ms"] <= RAW_RATIO_TARGET * row["raw"]["median_ms"])
    if "search" in row["name"]:
        checks.append(row["median_ms"] < SEARCH_TARGET_MS[kind])
    if not checks:
        return ""
    return "ok" if all(checks) else "MISSED"


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _result_rows(kind: str, result: dict) -> list[list[str]]:
    rows = []
    for r in result["results"]:
        raw = r["raw"]
        rows.append([r["name"], f"{r['matched']:,}", _ms(r["median_ms"]), _ms(r["p95_ms"]), _ms(r["max_ms"]),
                     str(r["statements"]), _ms(r["sql_median_ms"]), _ms(raw["median_ms"]) if raw else "",
                     f"{r['median_ms'] / raw['median_ms']:.1f}x" if raw else "",
                     f"{r['sql_median_ms'] / raw['median_ms']:.1f}x" if raw else "",
                     _ms(r["django"]["median_ms"]) if r.get("django") else "",
                     f"{r['django']['median_ms'] / r['median_ms']:.1f}x" if r.get("django") else "",
                     f"{r['peak_alloc_mib']:.1f}", f"{r['max_rss_mib']:.0f}", _verdict(kind, r)])
    return rows


RESULT_HEADER = ["page", "matched", "median ms", "p95 ms", "max ms", "SQL/request", "SQL exec ms",
                 "raw SQL ms", "vs raw", "SQL vs raw", "Django ms", "Django / ours", "peak alloc MiB",
                 "max RSS MiB", "target"]
LOAD_HEADER = ["phase", "seconds"]


def _load_rows(built: dict) -> list[list[str]]:
    rows = [[phase, f"{seconds:.1f}"] for phase, seconds in built["seconds"].items()]
    return rows + [["total", f"{sum(built['seconds'].values()):.1f}"]]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([line.format(*header), line.format(*("-" * w for w in widths)),
                      *(line.format(*row) for row in rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    cells = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells)


def urls(results: dict) -> str:
    first = next(iter(results.values()))
    return "\n".join(f"- {r['name']}: `{r['url']}`" for r in first["results"])


def _built_line(built: dict) -> str:
    how = "reused from --keep; it was built" if built.get("kept") else "built"
    return f"Registry {how} in {sum(built['seconds'].values()):.0f} s (bench.registry):"


def report(args, results: dict[tuple[int, str], dict], table) -> str:
    """The whole report, as text tables (`table=text_table`) or Markdown (`markdown_table`)."""
    parts = [f"Customers and contacts lists; timed requests per page after {measure.WARMUPS} "
             "warm-ups (an export: 3), signed in as a maintainer, through the Flask test client, beside "
             "the same page as hand-written SQL through the bare driver.", f"Machine: {machine()}."]
    for (customers, kind), result in sorted(results.items()):
        rows = result["built"]["rows"]
        parts += [f"### {customers:,} customers, {rows['contact']:,} contacts: {kind} ({result['server']})",
                  f"Measured {result['measured_at']}, {result['repeat']} requests per page; load average "
                  f"(1 / 5 / 15 min) when done: {result['load_average']}.",
                  table(RESULT_HEADER, _result_rows(kind, result)),
                  _built_line(result["built"]),
                  table(LOAD_HEADER, _load_rows(result["built"]))]
    parts += ["Pages:", urls(results),
              "SQL/request: statements sent per page. SQL exec ms: median time inside "
              "cursor.execute. raw SQL ms: the page's rows, their operators and an exact "
              "count(*) by hand through sqlite3 / psycopg; a search there is a LIKE / ILIKE scan "
              "of display_name, as the peers search (bench.raw_pages). vs raw: the whole page against "
              "it; SQL vs raw: the page's SQL exec ms against it. Peak alloc: Python heap "
              "peak of one request (tracemalloc). Max RSS: the measuring process (VmHWM), which "
              "never held the registry. Django ms: Django admin over the same tables, 20 per page, "
              "the same columns (bench.peers.django_admin). target: ok when page 1 and the deep page "
              f"are within {RAW_RATIO_TARGET:.0f}x of raw SQL, a search is under "
              f"{SEARCH_TARGET_MS['sqlite']:.0f} ms (SQLite) / {SEARCH_TARGET_MS['postgresql']:.0f} ms "
              f"(PostgreSQL) median, and a page is {DJANGO_TARGET['list']:.0f}x (a search "
              f"{DJANGO_TARGET['search']:.0f}x) faster than Django admin."]
    return "\n\n".join(parts) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    saved = args.output.with_suffix(".json")
    # The sizes and databases not measured this time keep their last figures.
    results: dict[tuple[int, str], dict] = {
        (int(size), kind): result for key, result in
        (json.loads(saved.read_text()) if saved.exists() else {}).items()
        for size, kind in [key.split("/")]}
    for customers in args.customers:
        contacts = customers * args.contacts_per_customer
        for kind in args.databases:
            print(f"[{kind}] {customers:,} customers, {contacts:,} contacts", flush=True)
            with registry(kind, customers, contacts, args.keep) as (url, built):
                print(f"[{kind}] measuring…", flush=True)
                measured = measure_in_child(url, args.repeat, args.explain)
                if args.peers:
                    print(f"[{kind}] measuring Django admin…", flush=True)
                    django = django_in_child(url, args.repeat)
                    for row in measured["results"]:
                        row["django"] = django.get(row["name"])
            result = {**measured, "built": built, "load_average": load_average(), "repeat": args.repeat,
                      "measured_at": f"{datetime.now():%Y-%m-%d %H:%M}"}
            results[(customers, kind)] = result
            if args.explain:
                plans = "\n".join(result["plans"])
                print(f"\n[{kind}, {customers:,}] query plans\n{plans}", flush=True)
                args.output.with_name(f"plans-{customers}-{kind}.txt").write_text(plans + "\n")
            print(text_table(RESULT_HEADER, _result_rows(kind, result)), flush=True)
    print("\n" + report(args, results, text_table))
    saved.write_text(json.dumps({f"{size}/{kind}": {k: v for k, v in result.items() if k != "plans"}
                                 for (size, kind), result in results.items()}, indent=1))
    args.output.write_text("## Customers list benchmark\n\n" + report(args, results, markdown_table))
    print(f"Markdown written to {args.output}")


if __name__ == "__main__":
    main()
