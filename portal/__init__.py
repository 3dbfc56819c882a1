"""The customer portal (/portal): portal accounts sign in, see and raise their requests, discuss,
accept and rate; signed links from our e-mails land here too. Its own look, its own session
(services.portal_sessions) and sign-in limits; never the admin panel."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("portal", __name__, url_prefix="/portal", template_folder="../templates")


def init_portal(app: Flask) -> None:
    # Importing the modules adds their routes to `bp`.
    import portal.links  # noqa: F401  # signed links from e-mails (no sign-in)
    import portal.views  # noqa: F401  # sign-in, requests, password

    app.register_blueprint(bp)
