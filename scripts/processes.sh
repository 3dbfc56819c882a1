# Sourced by scripts/run.sh and scripts/serve-production.sh: start a web server and job workers
# as children of one shell, and stop them all when any of them ends or on Ctrl-C / SIGTERM / SIGHUP.
#   start_web CMD…     the web server (stopped with SIGTERM: gunicorn finishes running requests)
#   start_worker CMD…  a job worker (stopped with SIGINT: running jobs finish; after
#                      WORKER_STOP_SECONDS, 10 by default, SIGTERM — a job stopped so is found by
#                      its lapsed lease and shown as interrupted, resumable)
#   supervise          wait until one ends or a signal comes, then stop the others
web_pids=() worker_pids=()

start_web() { "$@" & web_pids+=($!); }
start_worker() { "$@" & worker_pids+=($!); }

stop_all() {
  local status=${1:-0} pid
  trap - INT TERM HUP EXIT
  for pid in "${web_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${worker_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  local waited=0 limit=$(( ${WORKER_STOP_SECONDS:-10} * 10 ))
  while [ "$waited" -lt "$limit" ]; do
    local alive=0
    for pid in "${web_pids[@]}" "${worker_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1; waited=$((waited + 1))
  done
  for pid in "${worker_pids[@]}" "${web_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit "$status"
}

supervise() {
  trap 'stop_all 130' INT
  trap 'stop_all 143' TERM
  trap 'stop_all 129' HUP
  trap 'stop_all $?' EXIT
  set +e
  wait -n "${web_pids[@]}" "${worker_pids[@]}"
  stop_all $?
}
