#!/usr/bin/env bash
# `make run`: Customer Desk on this machine — the web server and one job worker, both stopped by
# Ctrl-C (or when either of them ends). `flask setup` prepares the database first: it migrates
# only when the schema is behind and creates a first maintainer only when there is none. The
# packages are installed by scripts/bootstrap.sh, only when pyproject.toml changed.
#   HOST, PORT       where the web server listens (127.0.0.1:5000)
#   WORKER_THREADS   jobs the worker runs at once (2)
#   SETUP_ARGS       extra arguments for `flask setup` (e.g. --no-demo)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/processes.sh
flask=(.venv/bin/flask --app app)
host=${HOST:-127.0.0.1} port=${PORT:-5000}

# shellcheck disable=SC2086  # SETUP_ARGS is a list of words on purpose
"${flask[@]}" setup ${SETUP_ARGS:-}
start_worker "${flask[@]}" worker --threads "${WORKER_THREADS:-2}"
start_web "${flask[@]}" run --host "$host" --port "$port"
echo "Customer Desk: http://$host:$port/ with a job worker — Ctrl-C stops both."
supervise
