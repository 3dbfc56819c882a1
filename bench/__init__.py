"""Benchmarks that print figures (see README, "Benchmarks").

`python -m bench.customers_list` measures the customers list at 100,000 customers on SQLite and on
a throwaway PostgreSQL cluster; `bench.dataset` makes the data, `bench.loader` puts it in a fresh
database built by the migrations, `bench.measure` times the pages through the real Flask app.
`python -m bench.load` is the load benchmark: signed-in users (locust, `bench/locustfile.py`)
against the production server (gunicorn and a job worker) on a registry loaded by `bench.fast_load`.
"""
