"""The Flask application factory."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from webapp import metrics, shard_route
from webapp.config import Settings
from webapp.deadline import BodyDeadline
from webapp.docs_page import install_docs
from webapp.follower import Follower
from webapp.problem import install_error_handlers
from webapp.views import blueprint
from webapp.worker_state import WorkerState

__all__ = ["create_app", "warm_up"]

# Metric labels must stay bounded whatever clients send.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def create_app(settings: Settings) -> Flask:
    """Build the app. Opens nothing: the shm reader and the model are opened lazily in the
    process that serves (each Gunicorn worker, after fork), see :func:`warm_up`."""
    # No static folder: the one static route is /docs/static (webapp.docs_page).
    app = Flask("webapp", static_folder=None)
    app.config.update(
        DEBUG=False,
        TESTING=False,
        PROPAGATE_EXCEPTIONS=False,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.extensions["webapp"] = WorkerState(settings)
    app.wsgi_app = BodyDeadline(app.wsgi_app, settings.body_timeout_s)  # type: ignore[method-assign]
    app.register_blueprint(blueprint)
    install_docs(app)
    install_error_handlers(app)
    shard_route.install(app, settings)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            method = request.method if request.method in _METHODS else "other"
            metrics.observe_request(
                route, method, response.status_code, time.perf_counter() - started
            )
        return response

    return app


def warm_up(app: Flask) -> Follower:
    """Prepare this worker process to serve and start its :class:`Follower`; call once per
    process, after fork and before serving (Gunicorn's ``post_worker_init``)."""
    state: WorkerState = app.extensions["webapp"]
    state.after_fork()
    follower = Follower(state, state.settings.follow_interval_ms / 1000)
    follower.poll()  # opens the reader, loads the model, derives the forecast
    follower.start()
    return follower
