# The two commands of the README. Everything they need is set up by scripts/bootstrap.sh.
HOST ?= 127.0.0.1
PORT ?= 5000
SERVE_PORT ?= 8000
FLASK = .venv/bin/flask --app app

.PHONY: run serve test lint bench

# The web server and a job worker; migrates only when the schema is behind (scripts/run.sh).
run:
	scripts/bootstrap.sh run
	HOST=$(HOST) PORT=$(PORT) scripts/run.sh

# The production processes in the foreground: gunicorn + a job worker (docs/deploy.md).
serve:
	scripts/bootstrap.sh run
	scripts/serve-production.sh $(SERVE_PORT)

test:
	scripts/bootstrap.sh test
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest -n 2 --dist loadfile

lint:
	.venv/bin/ruff check .

# A benchmark of bench/ (BENCH=customers_list by default; BENCH=load is the load benchmark, whose
# pinned locust comes from the `bench` extra), with its options in BENCH_ARGS.
BENCH ?= customers_list
BENCH_ARGS ?=
bench:
	scripts/bootstrap.sh test
	@[ .venv/.installed-bench -nt pyproject.toml ] || { .venv/bin/pip install -q -e ".[test,bench]" && touch .venv/.installed-bench; }
	.venv/bin/python -m bench.$(BENCH) $(BENCH_ARGS)
