"""The HTTP face: a Flask app serving forecasts from the shared window (see webapp.app).

Importing the package (or any of its light modules, such as :mod:`webapp.server_settings`)
imports neither numpy nor prometheus_client: ``gunicorn.conf.py`` reads its settings from
here before it caps native thread pools and chooses the metrics directory, which must both
happen before those libraries load. :func:`create_app` and :func:`warm_up` are imported on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webapp.config import Settings
from webapp.errors import ConfigError, FieldError, ProblemError, WebappError

if TYPE_CHECKING:
    from webapp.app import create_app, warm_up

__all__ = [
    "ConfigError",
    "FieldError",
    "ProblemError",
    "Settings",
    "WebappError",
    "create_app",
    "warm_up",
]


def __getattr__(name: str) -> Any:
    if name in {"create_app", "warm_up"}:
        from webapp import app  # noqa: PLC0415 (deferred: see the module docstring)

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
