"""Whether a worker is ready: a small function of what it serves and the daemon's status.

Ready means a generation, not restoring, a usable model and window, and data neither stale
(older than ``MAX_DATA_AGE_MS``) nor from the future. A usable window holds at least one
series; when it holds exactly one, that series must feed the model (with many, each series
is judged by the requests for it, never all at once). A reason for not being ready starts
with one of ``no data``, ``restoring``, ``no model``, ``insufficient data``, ``future data``,
``stale`` (``/readyz`` sends it as ``X-Not-Ready``) and names the files the reader skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.status import DaemonStatus
from webapp.data_age import signed_age_ms
from webapp.model_cache import ModelCache, NoModelError
from webapp.snapshot_view import SnapshotView, UnusableWindowError

__all__ = ["FUTURE_SLACK_MS", "Readiness", "assess"]

# The daemon shares this host's clock: data published further ahead than this is not current.
FUTURE_SLACK_MS = 1000


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str
    generation: int | None


def assess(
    view: SnapshotView | None,
    models: ModelCache,
    status: DaemonStatus | None,
    max_data_age_ms: int,
    *,
    no_data: str,
    skipped: tuple[str, ...] = (),
) -> Readiness:
    """The readiness of a worker serving ``view`` (None: nothing to serve, for the reason
    ``no_data``), with ``skipped`` the files its reader passed over."""
    if view is None:
        return Readiness(False, f"no data: {no_data}", None)
    verdict = _verdict(view, models, status, max_data_age_ms)
    if verdict.ready or not skipped:
        return verdict
    return Readiness(False, f"{verdict.reason}; skipped {'; '.join(skipped)}", view.generation)


def _verdict(
    view: SnapshotView, models: ModelCache, status: DaemonStatus | None, max_age_ms: int
) -> Readiness:
    gen = view.generation
    if view.meta.state == "restoring":
        return Readiness(False, "restoring", gen)
    try:
        model = models.get(view.meta)
        if view.catalog().count <= 1:
            view.forecast(model)
    except NoModelError as exc:
        return Readiness(False, f"no model: {exc.reason}", gen)
    except UnusableWindowError as exc:
        return Readiness(False, f"insufficient data: {exc.reason}", gen)
    age = signed_age_ms(view.snapshot, status)
    if age < -FUTURE_SLACK_MS:
        return Readiness(False, f"future data: published {-age} ms ahead of this host's clock", gen)
    if age > max_age_ms:
        reason = f"stale: data is {age} ms old (limit {max_age_ms})"
        if status is not None and status.state != "live" and status.last_error:
            reason += f"; daemon {status.state}: {status.last_error[:300]}"
        return Readiness(False, reason, gen)
    return Readiness(True, "ready", gen)
