"""Configuration: defaults in code, secrets from the environment or the instance folder.

Nothing here is read at import time; `load_config` is called by the application factory.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

DEFAULT_SECRET_KEY = "dev-insecure-secret-key"


class ConfigError(RuntimeError):
    """The configuration would make the application unsafe or unable to run."""


def _instance_secret(instance_path: str, name: str, make) -> str:
    """A development secret kept in the instance folder, so sessions and encrypted
    values survive a restart without anyone typing a key."""
    path = Path(instance_path) / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value


def load_config(app, overrides: dict | None = None) -> None:
    """Fill app.config from defaults, the environment and `overrides` (tests pass theirs here)."""
    env = os.environ
    instance = app.instance_path
    cfg = app.config
    cfg.update(
        APP_ENV=env.get("APP_ENV", "development"),
        SQLALCHEMY_DATABASE_URI=env.get("DATABASE_URL")
        or f"sqlite:///{Path(instance) / 'customer_desk.db'}",
        # hide_parameters: a database error's text (a 500's log line, a message) never carries
        # the bound values — a row's data, a key's hash (services.secrets scrubs the rest).
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "hide_parameters": True},
        SECRET_KEY=env.get("SECRET_KEY"),
        ENCRYPTION_KEY=env.get("ENCRYPTION_KEY"),
        PHONE_DEFAULT_REGION=env.get("PHONE_DEFAULT_REGION", "SK"),
        # Failed sign-ins per client address over all accounts, counted in the database
        # (services.sign_in_throttle); correct sign-ins are never counted.
        LOGIN_RATE_LIMIT=env.get("LOGIN_RATE_LIMIT", "10 per minute"),
        # Reverse proxies in front of the desk whose X-Forwarded-For is trusted (0: none, the
        # header is ignored — anybody can send it).
        TRUSTED_PROXIES=int(env.get("TRUSTED_PROXIES", "0")),
        # Failed sign-ins, counted in the database (services.sign_in_throttle): per account and
        # address, and per account over the addresses it has never signed in from.
        LOGIN_ADDRESS_FAILURE_LIMIT=int(env.get("LOGIN_ADDRESS_FAILURE_LIMIT", "5")),
        LOGIN_ACCOUNT_FAILURE_LIMIT=int(env.get("LOGIN_ACCOUNT_FAILURE_LIMIT", "20")),
        LOGIN_FAILURE_WINDOW_SECONDS=int(env.get("LOGIN_FAILURE_WINDOW_SECONDS", "900")),
        LOGIN_FAMILIAR_ADDRESS_DAYS=int(env.get("LOGIN_FAMILIAR_ADDRESS_DAYS", "90")),
        RATELIMIT_STORAGE_URI=env.get("RATELIMIT_STORAGE_URI", "memory://"),
        # Test connection buttons, per operator over all of them (admin_views/connection_tests.py).
        TEST_CONNECTION_RATE_LIMIT=env.get("TEST_CONNECTION_RATE_LIMIT", "10 per minute; 60 per hour"),
        RATELIMIT_ENABLED=True,
        PAGE_SIZE=int(env.get("PAGE_SIZE", "20")),
        PHOTO_DIR=env.get("PHOTO_DIR") or str(Path(instance) / "photos"),
        # Photos and import files are refused above 5 MB by their services; this stops a far
        # bigger upload before it is buffered at all.
        MAX_CONTENT_LENGTH=12 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead: long forms must not expire
        FLASK_ADMIN_SWATCH="default",
        # Background jobs (jobs/): the queue's storage — empty: beside the database (a SQLite file in
        # the instance folder, or the PostgreSQL database's job_queue_* tables). IMMEDIATE runs each
        # job in the thread that enqueues it (tests; never with real users).
        # Mail (issue 17). PUBLIC_URL: where customers reach this desk (links in e-mails).
        PUBLIC_URL=env.get("PUBLIC_URL", ""),  # required in production; http://localhost:5000 in development
        MAIL_DOMAIN=env.get("MAIL_DOMAIN", "customer-desk.invalid"),  # right-hand side of our Message-IDs
        MAIL_FROM_ADDRESS=env.get("MAIL_FROM_ADDRESS", ""),  # empty: the intake address (services.mail_send)
        MAIL_CA_FILE=env.get("MAIL_CA_FILE") or None,  # a CA bundle trusted besides the system's
        MAIL_LINK_DAYS=int(env.get("MAIL_LINK_DAYS", "14")),
        # Seconds each POP3 step may take, and mails read per mailbox per run (services.pop3_reader).
        MAIL_POP3_TIMEOUT=float(env.get("MAIL_POP3_TIMEOUT", "30")),
        MAIL_FETCH_BATCH=int(env.get("MAIL_FETCH_BATCH", "100")),
        # Signed-link pages (portal/links.py), per client address, GETs and POSTs alike.
        MAIL_LINK_RATE_LIMIT=env.get("MAIL_LINK_RATE_LIMIT", "30 per minute; 300 per hour"),
        MAIL_SEND_ATTEMPTS=int(env.get("MAIL_SEND_ATTEMPTS", "5")),
        MAIL_RETRY_SECONDS=int(env.get("MAIL_RETRY_SECONDS", "60")),  # doubled after each failed attempt
        # Seconds each SMTP step (connect, TLS handshake, every reply) may take (services.mail_send).
        MAIL_SMTP_TIMEOUT=float(env.get("MAIL_SMTP_TIMEOUT", "30")),
        # Where a customer's own SMTP servers (typed by any operator) may be: "limited" (the SMTP ports on
        # hosts outside the desk's machine and link, services.outbound_policy) or "any".
        MAIL_OWN_SERVER_REACH=env.get("MAIL_OWN_SERVER_REACH", "limited"),
        # Bytes: a larger mail is refused; a larger attachment is dropped with a note.
        MAIL_MESSAGE_LIMIT=int(env.get("MAIL_MESSAGE_LIMIT", str(10 * 1024 * 1024))),
        MAIL_ATTACHMENT_LIMIT=int(env.get("MAIL_ATTACHMENT_LIMIT", str(5 * 1024 * 1024))),
        # The portal's own session and sign-in limits (services.portal_sessions).
        # Times are stored in UTC and shown in the operator's time zone, this one until they
        # choose theirs on the profile page (i18n.py).
        DISPLAY_TIME_ZONE=env.get("DISPLAY_TIME_ZONE", "Europe/Bratislava"),
        # The language of customers' e-mails and of pages for a browser that asks for none.
        BABEL_DEFAULT_LOCALE=env.get("DEFAULT_LANGUAGE", "en"),
        PORTAL_SESSION_HOURS=int(env.get("PORTAL_SESSION_HOURS", "8")),
        JOB_QUEUE_URL=env.get("JOB_QUEUE_URL", ""),
        JOB_QUEUE_IMMEDIATE=env.get("JOB_QUEUE_IMMEDIATE", "") == "1",
        # A running job beats at least every few seconds; one silent this long is dead (killed worker).
        JOB_LEASE_SECONDS=int(env.get("JOB_LEASE_SECONDS", "60")),
        # Rows of a CSV/XLSX import committed together (a resumed import goes on from the last batch).
        BULK_IMPORT_BATCH_SIZE=int(env.get("BULK_IMPORT_BATCH_SIZE", "200")),
        # SQLite: how long a writer waits for another's write lock before it gives up.
        SQLITE_BUSY_TIMEOUT_MS=int(env.get("SQLITE_BUSY_TIMEOUT_MS", "15000")),
        # Password hashing (argon2id): memory per hash in KiB, passes, and hashes at once per process.
        ARGON2_MEMORY_KIB=int(env.get("ARGON2_MEMORY_KIB", str(19 * 1024))),
        ARGON2_TIME_COST=int(env.get("ARGON2_TIME_COST", "2")),
        ARGON2_PARALLELISM=int(env.get("ARGON2_PARALLELISM", "1")),
        ARGON2_CONCURRENT_HASHES=int(env.get("ARGON2_CONCURRENT_HASHES", "2")),
        # Logs: "json" (one object a line, with the request id) or "text".
        LOG_FORMAT=env.get("LOG_FORMAT", "text"),
        LOG_LEVEL=env.get("LOG_LEVEL", "INFO"),
    )
    if overrides:
        cfg.update(overrides)
    cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"hide_parameters": True, **cfg["SQLALCHEMY_ENGINE_OPTIONS"]}

    production = cfg["APP_ENV"] == "production"
    if production:
        if not cfg["SECRET_KEY"] or cfg["SECRET_KEY"] == DEFAULT_SECRET_KEY:
            raise ConfigError("APP_ENV=production needs SECRET_KEY set to a long random value.")
        if not cfg["ENCRYPTION_KEY"]:
            raise ConfigError("APP_ENV=production needs ENCRYPTION_KEY (a Fernet key).")
        if not cfg["PUBLIC_URL"]:
            raise ConfigError("APP_ENV=production needs PUBLIC_URL: the address customers reach the desk at "
                              "(the links in its e-mails), e.g. https://desk.example.com.")
        cfg["SESSION_COOKIE_SECURE"] = True
    else:
        cfg["PUBLIC_URL"] = cfg["PUBLIC_URL"] or "http://localhost:5000"
        if not cfg["SECRET_KEY"]:
            cfg["SECRET_KEY"] = _instance_secret(
                instance, "secret_key", lambda: secrets.token_urlsafe(48)
            )
        if not cfg["ENCRYPTION_KEY"]:
            cfg["ENCRYPTION_KEY"] = _instance_secret(
                instance, "encryption_key", lambda: Fernet.generate_key().decode()
            )
