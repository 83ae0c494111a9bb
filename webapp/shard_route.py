"""Routing of ``POST /predict`` to the shard that owns its series (``SHARD_MAP``).

A shard is a Deployment whose daemons read the partitions ``KAFKA_PARTITIONS`` of a topic with
``KAFKA_PARTITION_COUNT`` partitions, so its window holds exactly the series that Kafka's
default partitioner puts there (:func:`contract.partitioner.partition_of`). Any pod of any
shard accepts a request; one for a series another shard owns is answered
``307 Temporary Redirect`` to that shard's base URL with the same path and query plus the
marker ``shard_hop=1``. A 307 makes the client repeat the method and the body, so the owner
answers the request itself. A request that carries the marker and still reaches a shard that
does not own its series (shards configured with different maps) is answered
``421 Misdirected Request`` (problem ``misdirected-request``): never served from the wrong
window, never redirected twice.

The view calls :func:`redirect_for` with the raw body before it touches the window or the
model, so a shard without data still sends a request on. The series id is read from the body's
top-level ``series_id`` string by a decode that skips every other field; a body that is not a
JSON object, or whose ``series_id`` is missing, not a string or not a valid id, is not routed
and the view answers it as it would anyway (served as today, or the 4xx of the body). Without
``SHARD_MAP`` nothing is decoded.

Every response of a sharded pod carries ``X-Shard`` with its partitions (``0-5``); a redirect
and a 421 also carry ``X-Shard-Partition``, the series' partition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import msgspec
from flask import Flask, Response, current_app, request

from contract.partitions import format_partitions
from contract.series import SeriesIdError, check_series_id
from webapp.config import Settings
from webapp.errors import ProblemError

__all__ = [
    "HOP_PARAM",
    "PARTITION_HEADER",
    "SHARD_HEADER",
    "ShardRouter",
    "install",
    "redirect_for",
    "series_id_in",
]

HOP_PARAM = "shard_hop"
SHARD_HEADER = "X-Shard"
PARTITION_HEADER = "X-Shard-Partition"
_EXTENSION = "webapp.shards"


class _Routed(msgspec.Struct):
    """The one field routing reads; every other field of the body is skipped unparsed."""

    series_id: Any = None


_decode_routed = msgspec.json.Decoder(_Routed).decode


def series_id_in(body: bytes) -> str | None:
    """The body's top-level ``series_id`` when it is a valid series id, else None."""
    try:
        value = _decode_routed(body).series_id
    except msgspec.DecodeError:
        return None
    if not isinstance(value, str):
        return None
    try:
        return check_series_id(value)
    except SeriesIdError:
        return None


@dataclass(frozen=True, slots=True)
class ShardRouter:
    """Which shard owns a series: ``owners[p]`` is partition ``p``'s base URL, ``None`` for
    this shard; ``name`` is this shard's partition set (``0-5``); ``partitioner`` is
    :func:`contract.partitioner.partition_of`, which :meth:`from_settings` imports: only a
    sharded pod pays for kafka-python (about 0.2 s and 6 MB in the Gunicorn master)."""

    name: str
    owners: tuple[str | None, ...]
    partitioner: Callable[[str, int], int]

    @classmethod
    def from_settings(cls, settings: Settings) -> ShardRouter | None:
        """The router of a sharded pod (``SHARD_MAP`` set, checked by :class:`Settings`)."""
        shards, owned = settings.shard_map, settings.kafka_partitions
        count = settings.kafka_partition_count
        if shards is None or owned is None or count is None:
            return None
        from contract.partitioner import partition_of  # noqa: PLC0415 (kafka-python: sharded pods only)

        owners = shards.owners(count)
        return cls(
            name=format_partitions(owned),
            owners=tuple(None if p in owned else url for p, url in enumerate(owners)),
            partitioner=partition_of,
        )

    def partition_of(self, series_id: str) -> int:
        return self.partitioner(series_id, len(self.owners))

    def owner_of(self, series_id: str) -> str | None:
        """The base URL of the shard owning ``series_id``; None when it is this one."""
        return self.owners[self.partition_of(series_id)]


def install(app: Flask, settings: Settings) -> None:
    """Route ``app``'s predictions when ``settings`` shard it; a no-op otherwise."""
    router = ShardRouter.from_settings(settings)
    if router is None:
        return
    app.extensions[_EXTENSION] = router

    @app.after_request
    def _name_the_shard(response: Response) -> Response:
        response.headers[SHARD_HEADER] = router.name
        return response


def redirect_for(body: bytes) -> Response | None:
    """The 307 to the owning shard for a request whose series this shard does not own; None
    to serve it here. Raises the 421 :class:`ProblemError` for a request already redirected.
    Call from a view, with the request's raw body."""
    router: ShardRouter | None = current_app.extensions.get(_EXTENSION)
    if router is None:
        return None
    series_id = series_id_in(body)
    if series_id is None:
        return None
    partition = router.partition_of(series_id)
    owner = router.owners[partition]
    if owner is None:
        return None
    if HOP_PARAM in request.args:
        raise ProblemError(
            421,
            "misdirected-request",
            "Misdirected Request",
            f"series {series_id!r} is in partition {partition}, which this shard "
            f"({router.name}) does not own, and the request was already redirected once: "
            "the shards' SHARD_MAP settings disagree",
            headers={PARTITION_HEADER: str(partition)},
        )
    query = urlencode([*request.args.items(multi=True), (HOP_PARAM, "1")])
    response = Response(status=307)
    response.headers["Location"] = f"{owner}{request.path}?{query}"
    response.headers[PARTITION_HEADER] = str(partition)
    response.headers["Cache-Control"] = "no-store"
    return response
