"""The app served over real HTTP in this process, and clients that use it as browsers and scripts do.

For tests that need real concurrent requests (tests/test_concurrent_duplicates.py): the test
client runs one request at a time in the test's thread, a werkzeug server runs each request in
a thread of its own with its own application context and database session, as in production.
The approach of tests/browser/conftest.py (`desk_server`), without Chromium.

What the server logs at ERROR (werkzeug's "Error on request" with the traceback of a 500, the
app's own `log.exception`, e.g. a bulk import that stopped) is kept in `Served.log`, so a test
can show why a request failed instead of only that it did.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape

import requests
from werkzeug.serving import make_server

from tests.conftest import CSRF_INPUT, PASSWORD


class ServerLog(logging.Handler):
    """Every record at ERROR or above, formatted with its traceback; thread-safe."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.entries: list[str] = []
        self._guard = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self._guard:
            self.entries.append(text)
            self._guard.notify_all()

    def since(self, mark: int, *, at_least: int = 0, timeout: float = 5.0) -> list[str]:
        """The entries after `mark`. werkzeug logs a 500's traceback only after it has sent the
        answer: with `at_least`, wait (up to `timeout` seconds) until that many have come."""
        with self._guard:
            self._guard.wait_for(lambda: len(self.entries) - mark >= at_least, timeout)
            return list(self.entries[mark:])

    def mark(self) -> int:
        with self._guard:
            return len(self.entries)


def last_line(traceback: str) -> str:
    """The exception line of a logged traceback ("sqlite3.OperationalError: database is locked")."""
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Warning)\b", line.strip())]
    return (raised or lines or [""])[-1].strip()


@dataclass
class Served:
    url: str
    log: ServerLog


@contextmanager
def served(app) -> Iterator[Served]:
    """Serve `app` on 127.0.0.1 (a free port), one thread per request, until the block ends."""
    log = ServerLog()
    werkzeug_log = logging.getLogger("werkzeug")
    saved = werkzeug_log.level, werkzeug_log.propagate
    # Request lines (INFO) are dropped; errors come here and not, a second time, to the root.
    werkzeug_log.setLevel(logging.ERROR)
    werkzeug_log.propagate = False
    werkzeug_log.addHandler(log)
    root = logging.getLogger()
    root.addHandler(log)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="served-app", daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", log)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        root.removeHandler(log)
        werkzeug_log.removeHandler(log)
        werkzeug_log.setLevel(saved[0])
        werkzeug_log.propagate = saved[1]


def page_text(html: str) -> str:
    """What a user reads on a page: the text without tags, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@dataclass
class WebClient:
    """One browser (its own cookies, its own sign-in) or, with `api_token`, one script."""

    base: str
    api_token: str | None = None
    session: requests.Session = field(default_factory=requests.Session)
    _csrf: str | None = None

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.url(path), allow_redirects=False, timeout=120, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.session.post(self.url(path), allow_redirects=False, timeout=120, **kw)

    def csrf(self) -> str:
        """The session's CSRF token (CSRFProtect: one per session, valid for every form)."""
        if self._csrf is None:
            match = CSRF_INPUT.search(self.get("/admin/customers/").text)
            assert match, "the Customers page has no CSRF token"
            self._csrf = match.group(1)
        return self._csrf

    def submit(self, path: str, data: dict | None = None, **kw) -> requests.Response:
        """POST a form as the browser does: with the session's CSRF token."""
        return self.post(path, data={"csrf_token": self.csrf(), **(data or {})}, **kw)

    def login(self, email: str, password: str = PASSWORD) -> None:
        match = CSRF_INPUT.search(self.get("/login").text)
        assert match, "the login page has no CSRF token"
        answer = self.post("/login", data={"email": email, "password": password,
                                           "csrf_token": match.group(1)})
        assert answer.status_code == 302, (answer.status_code, page_text(answer.text)[:500])
        self._csrf = None  # a new session after signing in

    def api(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.api_token}", **kw.pop("headers", {})}
        return self.session.request(method, self.url("/api/v1" + path), headers=headers,
                                    allow_redirects=False, timeout=120, **kw)

    def close(self) -> None:
        self.session.close()
