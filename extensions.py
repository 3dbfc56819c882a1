"""Flask extensions, created unbound and bound to the app in `create_app`."""

from flask import Flask, current_app, has_app_context
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from models import db
from services import passwords

migrate = Migrate()
login_manager = LoginManager()
# The one CSRF mechanism: every POST of the app, Flask-Admin's forms included, is checked
# here before any view runs, so a form whose rules drop the token field is still protected.
csrf = CSRFProtect()
# Limits nothing any more: sign-in limits are counted in the database by
# services.sign_in_throttle (shared by every process and host; correct sign-ins never count).
limiter = Limiter(key_func=get_remote_address, default_limits=[])


class PasswordHashingExtension:
    """Binds the password hashing profile of the configuration (ARGON2_*) to an app: the
    services' hash_password / verify_password use the running app's (services.passwords), one
    bound of concurrent hashes per profile and process."""

    KEY = "password_hashing"

    def init_app(self, app: Flask) -> None:
        app.extensions[self.KEY] = passwords.hashing_for(passwords.HashProfile.from_config(app.config))
        passwords.resolve_with(_app_hashing)


def _app_hashing() -> passwords.PasswordHashing | None:
    if not has_app_context():
        return None
    return current_app.extensions.get(PasswordHashingExtension.KEY)


password_hashing = PasswordHashingExtension()

__all__ = ["db", "migrate", "login_manager", "csrf", "limiter", "password_hashing"]


def take_one(scope: str, limits_text: str, key: str) -> bool:
    """Whether `key` may do one more thing of `scope` within `limits_text` ("10 per minute; 60 per
    hour"), counting it when it may. A moving window over RATELIMIT_STORAGE_URI, one limiter per
    app and scope (Flask-Limiter's decorator keeps one switch for every app of the process, so the
    doors that need their own answer count here). Always True with RATELIMIT_ENABLED off."""
    from limits import parse_many
    from limits.storage import storage_from_string
    from limits.strategies import MovingWindowRateLimiter

    config = current_app.config
    if not config.get("RATELIMIT_ENABLED", True):
        return True
    extensions = current_app.extensions
    name = f"moving-window:{scope}"
    if name not in extensions:
        storage = storage_from_string(config.get("RATELIMIT_STORAGE_URI") or "memory://")
        extensions.setdefault(name, MovingWindowRateLimiter(storage))
    limiter, items = extensions[name], parse_many(limits_text)
    if not all(limiter.test(item, scope, key) for item in items):
        return False
    for item in items:
        limiter.hit(item, scope, key)
    return True
