"""Customer Desk application factory: extensions, admin views, sign-in and CLI — nothing else."""

from __future__ import annotations

import logging

from flask import Flask

from config import ConfigError, load_config
from database_setup import init_database
from extensions import csrf, db, limiter, login_manager, migrate, password_hashing
from i18n import init_i18n
from ops import init_ops
from security_headers import init_security_headers
from services.limits import guard_lengths
from services.secrets import SecretBox


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    from admin_views.ids import RecordIdConverter

    # Before any route exists: every `<int:…>` id of the panel and the API stops at the largest
    # id a row can have, so a bigger number is a 404, never an overflow in the database.
    app.url_map.converters["int"] = RecordIdConverter
    load_config(app, test_config)
    init_ops(app)  # logs and request ids first, health endpoints, the database-away page
    if app.config["TRUSTED_PROXIES"]:
        # Behind reverse proxies the peer is the nearest proxy: the client's address (sign-in
        # throttle, rate limits, audit) is taken from X-Forwarded-For, as far as they appended it.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])  # type: ignore[method-assign]
    try:
        app.extensions["secret_box"] = SecretBox(app.config["ENCRYPTION_KEY"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    init_database(app)  # SQLite: WAL, busy timeout, foreign keys (database_setup.py)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path) + "/migrations", render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    password_hashing.init_app(app)  # the argon2 profile of the configuration (ARGON2_*)
    init_security_headers(app)
    init_i18n(app)  # Flask-Babel: the operator's (or the browser's) language and time zone
    guard_lengths()

    from admin_views import init_admin
    from admin_views.auth import auth
    from admin_views.refusals import init_refusal_pages

    app.register_blueprint(auth)
    init_admin(app)
    init_refusal_pages(app)

    from api import init_api

    init_api(app)

    from portal import init_portal

    init_portal(app)

    from cli import register_cli

    register_cli(app)

    from jobs import init_jobs

    init_jobs(app)

    from error_pages import init_error_pages

    init_error_pages(app)  # 400–500 in the panel's or the portal's look; JSON for the API

    @app.route("/favicon.ico")
    def favicon():
        # Browsers ask for it on pages that name no icon (JSON, error pages): the same picture.
        return app.send_static_file("favicon.svg")

    @app.route("/")
    def root():
        from flask import redirect, url_for

        return redirect(url_for("admin.index"))

    return app
