# The two commands of the README. Everything they need is set up by scripts/bootstrap.sh.
HOST ?= 127.0.0.1
PORT ?= 5000
FLASK = .venv/bin/flask --app app

.PHONY: run test lint bench

run:
	scripts/bootstrap.sh run
	$(FLASK) db upgrade
	$(FLASK) setup
	$(FLASK) run --host $(HOST) --port $(PORT)

test:
	scripts/bootstrap.sh test
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest -n 2 --dist loadfile

lint:
	.venv/bin/ruff check .

bench:
	scripts/bootstrap.sh test
	.venv/bin/python -m bench.customers_list
