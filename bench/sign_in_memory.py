"""What sixteen sign-ins at once cost one process in memory: the old argon2 profile against the new.

    .venv/bin/python -m bench.sign_in_memory [--sign-ins 16] [--rounds 3]

Each profile runs in a process of its own: the desk on a fresh SQLite file, served by werkzeug's
threaded server (one thread per request, as a gunicorn worker with threads), sixteen operators
whose hashes were made with that profile, then sixteen browsers (threads of the same process)
signing in from one barrier, a few rounds. The process's peak RSS is reset before the rounds
(/proc/self/clear_refs) and read after them (VmHWM), so the figure is what the sign-ins added.

Profiles: "old" is argon2-cffi's default (64 MiB, 3 passes, 4 lanes), which the desk used before,
with nothing bounding concurrent hashes; "new, unbounded" is OWASP's minimum (19 MiB, 2 passes,
1 lane) without a bound; "new" is that profile with ARGON2_CONCURRENT_HASHES=2, the default.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROFILES = {
    "old (64 MiB, t=3, p=4, unbounded)": {"ARGON2_MEMORY_KIB": 65536, "ARGON2_TIME_COST": 3,
                                          "ARGON2_PARALLELISM": 4, "ARGON2_CONCURRENT_HASHES": 64},
    "new, unbounded (19 MiB, t=2, p=1)": {"ARGON2_MEMORY_KIB": 19456, "ARGON2_TIME_COST": 2,
                                          "ARGON2_PARALLELISM": 1, "ARGON2_CONCURRENT_HASHES": 64},
    "new (19 MiB, t=2, p=1, 2 at once)": {"ARGON2_MEMORY_KIB": 19456, "ARGON2_TIME_COST": 2,
                                          "ARGON2_PARALLELISM": 1, "ARGON2_CONCURRENT_HASHES": 2},
}
PASSWORD = "correct horse battery"


def _status(field: str) -> int:
    """A /proc/self/status figure in KiB (VmRSS: now, VmHWM: the peak since the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(config: dict, sign_ins: int, rounds: int) -> dict:
    """One profile, in this process: the figures as a dict."""
    from extensions import db
    from services.operators import create_operator
    from services.transactions import unit_of_work
    from tests.conftest import make_app, migrate_to_head
    from tests.served_app import WebClient, served

    folder = Path(tempfile.mkdtemp(prefix="cd-sign-in-memory-"))
    url = f"sqlite:///{folder / 'desk.db'}"
    migrate_to_head(url)
    app = make_app(url, **config)
    emails = [f"rush.{n}@example.com" for n in range(sign_ins)]
    with app.app_context():
        with unit_of_work(db.session):
            for n, email in enumerate(emails):
                create_operator(db.session, email=email, password=PASSWORD, first_name="Rush",
                                last_name=f"Hour {n}")
        db.session.remove()
    seconds = []
    with served(app) as server:
        browsers = [WebClient(server.url) for _ in emails]
        for browser in browsers:  # connections and sessions made before the measurement
            browser.get("/login")
        before = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from now
        for _ in range(rounds):
            barrier = threading.Barrier(sign_ins)

            def sign_in(browser: WebClient, email: str, barrier=barrier) -> None:
                barrier.wait(timeout=120)
                browser.login(email)
                browser.session.cookies.clear()

            threads = [threading.Thread(target=sign_in, args=pair)
                       for pair in zip(browsers, emails, strict=True)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds.append(time.perf_counter() - started)
        peak = _status("VmHWM")
        for browser in browsers:
            browser.close()
    return {"before_mib": before / 1024, "peak_mib": peak / 1024, "added_mib": (peak - before) / 1024,
            "seconds": max(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sign-ins", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child), args.sign_ins, args.rounds)))
        return
    print(f"{args.sign_ins} sign-ins at once, {args.rounds} rounds, one process per profile")
    print(f"{'profile':38} {'RSS before':>11} {'peak RSS':>10} {'added':>9} {'slowest round':>14}")
    for name, config in PROFILES.items():
        done = subprocess.run(
            [sys.executable, "-m", "bench.sign_in_memory", "--sign-ins", str(args.sign_ins),
             "--rounds", str(args.rounds), "--child", json.dumps(config)],
            capture_output=True, text=True, check=False)
        if done.returncode:
            print(f"{name:38} failed:\n{done.stderr[-2000:]}")
            continue
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name:38} {figures['before_mib']:>7.0f} MiB {figures['peak_mib']:>6.0f} MiB "
              f"{figures['added_mib']:>5.0f} MiB {figures['seconds']:>12.2f} s")


if __name__ == "__main__":
    main()
