"""Sets of Kafka partitions as settings write them, and the shard map (standard library only).

A *partition set* is comma-separated items, each a partition number or an inclusive range
``a-b``: ``0-5``, ``0,2,4-7``. Numbers are decimal, below :data:`MAX_PARTITIONS`, and each
partition is named once. :func:`parse_partitions` reads one; :func:`format_partitions` writes
the shortest form (``0-5,7``), which is also a shard's name.

A *shard map* gives every partition of the topic to the base URL of the shard (a Deployment
whose daemons read those partitions) that serves its series::

    0-5=http://shard-a:8000,6-11=http://shard-b:8000

Items are the same as in a partition set; an item ``<partition or range>=<URL>`` closes an
entry whose partitions are it and the bare items before it, so ``0,2=http://a,1,3=http://b``
gives 0 and 2 to ``a``, 1 and 3 to ``b``. A base URL is ``http`` or ``https`` with a host,
optionally a path prefix, no query, fragment or credentials, and no comma. Entries with the same
URL are one shard. :meth:`ShardMap.owners` checks that the map covers exactly the partitions of
a topic, each once.

Parsing raises ``ValueError`` with a sentence naming the faulty item; settings turn it into a
:class:`~contract.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "MAX_PARTITIONS",
    "ShardMap",
    "format_partitions",
    "parse_partitions",
    "parse_shard_map",
]

# Kafka numbers partitions from 0; a topic with more than this is not one this service shards.
MAX_PARTITIONS = 100_000

_ITEM = re.compile(r"(\d{1,6})(?:-(\d{1,6}))?")


def _item(text: str) -> range:
    """The partitions one item names (``"3"`` or ``"0-5"``)."""
    item = text.strip()
    match = _ITEM.fullmatch(item)
    if match is None:
        shown = repr(item) if item else "an empty item"
        raise ValueError(f"{shown} is not a partition number or a range a-b")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise ValueError(f"range {item!r} ends before it starts")
    if last >= MAX_PARTITIONS:
        raise ValueError(f"partition {last} is not below {MAX_PARTITIONS}")
    return range(first, last + 1)


def _add(seen: set[int], partitions: range) -> None:
    repeated = seen.intersection(partitions)
    if repeated:
        raise ValueError(f"partition {min(repeated)} is named twice")
    seen.update(partitions)


def parse_partitions(text: str) -> frozenset[int]:
    """The partitions ``text`` names (see the module docstring); ``ValueError`` otherwise."""
    seen: set[int] = set()
    for item in text.split(","):
        _add(seen, _item(item))
    return frozenset(seen)


def format_partitions(partitions: Iterable[int]) -> str:
    """The shortest partition-set text of ``partitions``: ``0-5,7``; ``""`` for none."""
    items: list[str] = []
    ordered = sorted(set(partitions))
    start = 0
    for i, partition in enumerate(ordered):
        if i + 1 == len(ordered) or ordered[i + 1] != partition + 1:
            first = ordered[start]
            items.append(str(first) if first == partition else f"{first}-{partition}")
            start = i + 1
    return ",".join(items)


def _base_url(text: str) -> str:
    """A shard's base URL without a trailing slash; ``ValueError`` naming what is wrong."""
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
    if any(c in url for c in "?#@") or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} must be a base URL (no query, fragment, credentials or spaces)")
    try:
        _ = parts.port  # checked here: urllib raises only when the port is read
    except ValueError:
        raise ValueError(f"{url!r} has a port that is not a number from 0 to 65535") from None
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class ShardMap:
    """Partition sets by shard base URL, as a ``SHARD_MAP`` setting wrote them (one entry per
    distinct URL, in order of first appearance; no partition in two entries)."""

    shards: tuple[tuple[str, frozenset[int]], ...]

    def owners(self, count: int) -> tuple[str, ...]:
        """The base URL owning each partition ``0 .. count-1`` (index = partition);
        ``ValueError`` unless the map names exactly those partitions."""
        named = {p: url for url, partitions in self.shards for p in partitions}
        beyond = sorted(p for p in named if p >= count)
        if beyond:
            raise ValueError(
                f"names partitions {format_partitions(beyond)}, but the topic has {count} "
                f"(0-{count - 1})"
            )
        missing = [p for p in range(count) if p not in named]
        if missing:
            raise ValueError(f"gives partitions {format_partitions(missing)} to no shard")
        return tuple(named[p] for p in range(count))

    def url_of(self, partitions: frozenset[int]) -> str | None:
        """The URL of the shard owning exactly ``partitions``, else None."""
        return next((url for url, owned in self.shards if owned == partitions), None)

    def __str__(self) -> str:
        return ",".join(f"{format_partitions(p)}={url}" for url, p in self.shards)


def parse_shard_map(text: str) -> ShardMap:
    """The shard map ``text`` writes (see the module docstring); ``ValueError`` otherwise."""
    by_url: dict[str, set[int]] = {}
    seen: set[int] = set()
    pending: list[range] = []
    for raw in text.split(","):
        item, has_url, url_text = raw.partition("=")
        partitions = _item(item)
        _add(seen, partitions)
        pending.append(partitions)
        if has_url:
            owned = by_url.setdefault(_base_url(url_text), set())
            for block in pending:
                owned.update(block)
            pending = []
    if pending:
        left = format_partitions(p for block in pending for p in block)
        raise ValueError(f"partitions {left} at the end are given no URL (write {left}=<URL>)")
    return ShardMap(tuple((url, frozenset(p)) for url, p in by_url.items()))
