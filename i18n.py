"""Languages and time zones: English, Slovak and Czech (Flask-Babel; catalogs in translations/).

An operator's language and time zone are their own choice on the profile page; without one,
the browser's language and the desk's DISPLAY_TIME_ZONE. The sign-in page and the portal follow
the browser. Flask-Admin translates its own words from the catalogs it ships (its "admin"
domain) with the same locale.

Times are stored in UTC without a zone (models.base.utcnow); `when` shows one to the minute in
the reader's time zone and language — the one format of every page, report and summary.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel.dates import DateTimePattern, parse_pattern
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import (
    Babel,
    format_date,
    format_decimal,
    get_locale,
    get_timezone,
    ngettext,  # noqa: F401
)
from flask_babel import gettext as _  # noqa: F401  (re-exported: `from i18n import _`)
from flask_babel import lazy_gettext as _l  # noqa: F401
from flask_login import current_user

LANGUAGES = {"en": "English", "sk": "Slovenčina", "cs": "Čeština"}


def _operator():
    if not has_request_context():
        return None
    user = current_user
    return user if getattr(user, "is_authenticated", False) and hasattr(user, "time_zone") else None


def select_locale() -> str:
    operator = _operator()
    if operator is not None and operator.language in LANGUAGES:
        return operator.language
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    if has_request_context():
        return request.accept_languages.best_match(list(LANGUAGES)) or default
    return default


def select_time_zone() -> str:
    operator = _operator()
    if operator is not None and operator.time_zone and is_time_zone(operator.time_zone):
        return operator.time_zone
    return current_app.config["DISPLAY_TIME_ZONE"]


def is_time_zone(name: str | None) -> bool:
    if not name or name not in _zones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


def time_zone_choices() -> list[str]:
    hidden = ("Etc/", "SystemV/", "posix/", "right/")
    return sorted(z for z in _zones() if "/" in z and not z.startswith(hidden))


@lru_cache(maxsize=16)
def _minute_pattern(locale: Locale) -> DateTimePattern:
    """The locale's medium date and the time to the minute ("Jan 1, 2024 09:03")."""
    return parse_pattern(f"{locale.date_formats['medium'].pattern} HH:mm")


def when(value: datetime | date | None) -> str:
    """A stored UTC time to the minute in the reader's zone and language ("" for none)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        # Babel directly: through Flask-Babel's format_datetime a list page's twenty times cost
        # more than its database query.
        locale = get_locale() or Locale.parse("en")
        try:
            shifted = value.replace(tzinfo=UTC).astimezone(get_timezone())
            return _minute_pattern(locale).apply(shifted, locale)
        except (OverflowError, ValueError):  # at the edge of the calendar: no zone to shift to
            return f"{format_date(value.date(), 'medium')} {value:%H:%M} UTC"
    return format_date(value, "medium")


def number(value) -> str:
    return "" if value is None else format_decimal(value)


def locale_name() -> str:
    return str(get_locale() or "en")


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    if app.config["BABEL_DEFAULT_LOCALE"] not in LANGUAGES:
        from config import ConfigError

        raise ConfigError(f"DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}.")
    if not is_time_zone(app.config["DISPLAY_TIME_ZONE"]):
        from config import ConfigError

        raise ConfigError("DISPLAY_TIME_ZONE must be a time zone name such as Europe/Bratislava.")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(app.root_path) + "/translations")
    Babel(app, locale_selector=select_locale, timezone_selector=select_time_zone)

    @app.before_request
    def _decide_language_per_request() -> None:
        # Flask-Babel keeps its choice on `g`, which lives as long as the app context: where one
        # context serves several requests (a test's, a CLI's), each request still decides anew.
        g.pop("_flask_babel", None)

    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["number"] = number
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["locale_name"] = locale_name
    from services import wording

    app.jinja_env.globals.update(wording.TEMPLATE_GLOBALS)
