"""Running the desk like production: health endpoints, logs with request ids, and a friendly page
while the database is briefly away.

`init_ops(app)` is called once by the application factory, so every process — the web server,
`flask worker`, the CLI — logs the same way (LOG_FORMAT, LOG_LEVEL): ops.logs, ops.health,
ops.database_away.
"""

from __future__ import annotations

from flask import Flask


def init_ops(app: Flask) -> None:
    """Configure logging for this process and give `app` its request ids, access lines, health
    endpoints and 503 page. Call it right after the configuration is loaded, before the other
    extensions: its request hook runs first, so every later line of a request has the id."""
    from flask.logging import default_handler

    from ops.database_away import init_database_away
    from ops.health import health
    from ops.logs import configure_logging, init_request_logs

    configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    # Flask's own handler would write app.logger's lines a second time, in its own format.
    app.logger.removeHandler(default_handler)
    init_request_logs(app)
    init_database_away(app)
    app.register_blueprint(health)


__all__ = ["init_ops"]
