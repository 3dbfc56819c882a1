"""Flask extensions, created unbound and bound to the app in `create_app`."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from models import db

migrate = Migrate()
login_manager = LoginManager()
# The one CSRF mechanism: every POST of the app, Flask-Admin's forms included, is checked
# here before any view runs, so a form whose rules drop the token field is still protected.
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])

__all__ = ["db", "migrate", "login_manager", "csrf", "limiter"]
