"""The HTTP face: a Flask app serving forecasts from the shared window (see webapp.app)."""

from webapp.app import create_app, warm_up
from webapp.config import Settings
from webapp.errors import ConfigError, FieldError, ProblemError, WebappError

__all__ = [
    "ConfigError",
    "FieldError",
    "ProblemError",
    "Settings",
    "WebappError",
    "create_app",
    "warm_up",
]
