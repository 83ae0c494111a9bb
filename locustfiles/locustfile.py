"""Locust entry point: ``locust -f locustfiles --host http://127.0.0.1:8000``.

Users, one per mode, weighted by ``LOCUST_WEIGHT_<MODE>`` or ``--weight-<mode>``:

- ``CachedUser`` (cached): ``{}`` and ``{"inference_length": k}`` on the service's window;
- ``SyntheticUser`` (synthetic): generated series on the model's step, in many time zones;
- ``RealUser`` (real): contiguous windows of the real series (S3 when ``S3_*`` and a
  bucket/key are set, else the bundled sample);
- ``BadInputUser`` (bad): every invalid case, right only when answered with the documented
  4xx problem+json;
- ``IngestUser`` (ingest, off by default): Kafka -> ``/cache`` freshness under load.

``--shape steady|ramp|spike`` shapes ``-u``/``-r``/``-t``. The SLO gates (``LOCUST_P99_MS``
and the others in :mod:`locustfiles._gates`) set the exit code at the end. ``docs/load-testing.md``
has the commands.
"""

from __future__ import annotations

import os

from locust import events

from locustfiles._hooks import install
from locustfiles._ingest import IngestUser
from locustfiles._loadshape import LoadShape
from locustfiles._users import BadInputUser, CachedUser, RealUser, SyntheticUser

__all__ = ["BadInputUser", "CachedUser", "IngestUser", "LoadShape", "RealUser", "SyntheticUser"]

install(events, os.environ, (CachedUser, SyntheticUser, RealUser, BadInputUser, IngestUser))
