"""Baselines that ``bench.compare`` measures against the service, minimal but faithful.

* :mod:`bench.baselines.seed`: the seed report's design (one uvicorn process, a Kafka
  consumer thread, a lock and ``df.copy(deep=True)`` per request);
* :mod:`bench.baselines.private`: Gunicorn workers, each with a private copy of the window
  and its own consumer (``gunicorn_private.py``);
* :mod:`bench.baselines.redis_cache`: the window pickled into Redis, fetched and unpickled
  per request (needs ``redis-server``: ``make bench-redis``).

All of them use the service's model and its tail-only feature preparation, so only the way
a request reaches the window differs. Settings: :class:`BaselineConfig` (environment).
"""

from bench.baselines.config import BaselineConfig
from bench.baselines.errors import BaselineConfigError, BaselineError, BaselineUnavailableError

__all__ = ["BaselineConfig", "BaselineConfigError", "BaselineError", "BaselineUnavailableError"]
