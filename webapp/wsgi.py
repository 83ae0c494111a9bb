"""WSGI entry point: ``gunicorn -c gunicorn.conf.py webapp.wsgi:app``.

Builds the settings from the environment and configures JSON logging (this is an entry
point). Importing it opens no shared state, so it is safe to preload in the Gunicorn master.
"""

from __future__ import annotations

import os

from contract.logs import configure
from webapp.app import create_app
from webapp.config import Settings

__all__ = ["app"]

settings = Settings.from_env(os.environ)
configure(settings.log_level)
app = create_app(settings)
