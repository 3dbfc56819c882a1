#!/usr/bin/env bash
# The production processes on one machine, in the foreground: gunicorn (gunicorn.conf.py) and
# JOB_WORKERS `flask worker` processes — what docs/deploy.md runs as systemd units, here for a
# local rehearsal or the load benchmark (bench/). Ctrl-C or SIGTERM stops them all; so does
# the end of any one of them.
#   scripts/serve-production.sh [PORT]      PORT: 8000, on 127.0.0.1 (or GUNICORN_BIND)
#   DATABASE_URL     the database (default: SQLite in the instance folder); migrated first only
#                    when behind (`flask setup --schema-only`)
#   WEB_CONCURRENCY, GUNICORN_THREADS, …    see gunicorn.conf.py
#   JOB_WORKERS      worker processes (1); WORKER_THREADS: jobs each runs at once (2)
# The app's own environment (SECRET_KEY, ENCRYPTION_KEY, APP_ENV, LOG_FORMAT, …) is passed on
# as it is. APP_ENV=production marks the session cookie Secure: behind plain http on
# 127.0.0.1 (a benchmark) leave it unset.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/processes.sh
flask=(.venv/bin/flask --app app)
export GUNICORN_BIND=${GUNICORN_BIND:-127.0.0.1:${1:-${PORT:-8000}}}

"${flask[@]}" setup --schema-only
for _ in $(seq "${JOB_WORKERS:-1}"); do
  start_worker "${flask[@]}" worker --threads "${WORKER_THREADS:-2}"
done
start_web .venv/bin/gunicorn -c gunicorn.conf.py "app:create_app()"
echo "Customer Desk (gunicorn) on http://$GUNICORN_BIND/ with ${JOB_WORKERS:-1} job worker(s) — Ctrl-C stops all."
supervise
