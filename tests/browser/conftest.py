"""Browser tier: Debian's Chromium driven by Playwright against the app served in-process.

The app runs on a werkzeug server in a daemon thread of this process, on a SQLite file built
by the migrations. Each test starts from empty tables plus the reference rows, one maintainer
and a few lookups (`desk`), and signs in through the login page itself.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from extensions import db
from models import Building, Site, SlaLevel
from models.enums import OperatorRole
from services.operators import create_operator
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from tests.conftest import PASSWORD, empty_all_tables, make_app, migrate_to_head, unavailable

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MAINTAINER_EMAIL = "boss@example.com"


@pytest.fixture(scope="session")
def browser_home(tmp_path_factory) -> dict[str, str]:
    """TMPDIR and XDG folders for Chromium: it writes crash reports and caches outside its
    profile otherwise."""
    home = tmp_path_factory.mktemp("chromium-home")
    env = {"TMPDIR": str(home / "tmp"), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_CACHE_HOME": str(home / "cache")}
    for folder in env.values():
        Path(folder).mkdir()
    return env


@pytest.fixture(scope="session")
def _driver_environment(browser_home):
    mp = pytest.MonkeyPatch()
    for name, value in browser_home.items():
        mp.setenv(name, value)
    yield mp
    mp.undo()


@pytest.fixture(scope="session")
def playwright(_driver_environment, playwright):
    """pytest-playwright's own fixture, started while `_driver_environment` (set up first, as
    the first argument) holds the browser's folders: the driver makes the Chromium profile
    under its TMPDIR and passes its environment on. This process's environment is restored at
    once, so the other tiers of the session never see it changed."""
    _driver_environment.undo()
    return playwright


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, browser_home):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        with warnings.catch_warnings():
            # unavailable() warns before it skips; with filterwarnings=error (pyproject.toml)
            # that warning would be raised and the tier would error instead of skipping.
            # It still shows in the warnings summary.
            warnings.filterwarnings("always", "SKIPPING a test tier", pytest.PytestWarning)
            unavailable(f"Chromium: {CHROMIUM} is missing (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
        ],
        "env": {**os.environ, **browser_home},
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # Bootstrap skips its fades: no waiting for modals and alerts to finish animating.
    return {**browser_context_args, "reduced_motion": "reduce"}


@pytest.fixture(scope="session")
def desk_app(tmp_path_factory):
    """The application on its own migrated SQLite file (not the root `app` fixture, which is
    parametrized over SQLite and PostgreSQL and holds an app context for the test)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-db') / 'desk.db'}"
    migrate_to_head(url)
    app = make_app(url)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def desk_server(desk_app):
    logging.getLogger("werkzeug").disabled = True  # no request log lines in the test output
    server = make_server("127.0.0.1", 0, desk_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="desk-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    logging.getLogger("werkzeug").disabled = False


@pytest.fixture(scope="session")
def base_url(desk_server):
    return desk_server


@dataclass
class Desk:
    """What each browser test starts from, by name (the rows belong to a closed session)."""

    app: object
    maintainer_email: str
    site: str
    buildings: tuple[str, str]
    sla_level: str
    password: str = PASSWORD

    def run(self, fn, *args, **kwargs):
        """Call fn(session, ...) in an app context of its own, as a request would, and in a unit
        of work, as a door does: what fn writes is committed when it returns."""
        with self.app.app_context():
            try:
                with unit_of_work(db.session):
                    return fn(db.session, *args, **kwargs)
            finally:
                db.session.remove()


@pytest.fixture
def desk(desk_app, desk_server):
    def seed(session):
        ensure_reference_data(session)
        create_operator(session, email=MAINTAINER_EMAIL, password=PASSWORD, first_name="Mia",
                        last_name="Maintainer", role=OperatorRole.MAINTAINER)
        site = Site(name="Bratislava HQ")
        site.buildings = [Building(name="Tower A"), Building(name="Tower B")]
        session.add_all([site, SlaLevel(name="Gold")])

    desk = Desk(desk_app, MAINTAINER_EMAIL, "Bratislava HQ", ("Tower A", "Tower B"), "Gold")
    desk.run(lambda _session: empty_all_tables())
    desk.run(seed)
    return desk


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    """Type the credentials into the login page and submit it, as a user would."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def signed_in(page, desk):
    sign_in(page, desk.maintainer_email)
    page.wait_for_url("**/admin/")
    return page

