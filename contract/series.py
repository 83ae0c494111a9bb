"""Series identity: how a Kafka record names its series, and where a series is stored.

A window holds many series. Each is named by a *series id*, the UTF-8 text of the Kafka
message key (at most :data:`MAX_SERIES_ID_BYTES` bytes). A record without a key belongs to
the default series (:data:`DEFAULT_SERIES_ID` unless configured otherwise), so a keyless
topic is one series, as it always was.

In a published table the id is the column :data:`SERIES_ID_COLUMN`; a table without that
column is one series, the default one.

:func:`segment_of` is the stable hash that assigns a series to one of a window's segments;
the daemon and every reader must agree on it, across processes and restarts, so it depends on
the id's bytes only (never on Python's per-process ``hash``).
"""

from __future__ import annotations

import zlib

__all__ = [
    "DEFAULT_SERIES_ID",
    "KEY_NOT_UTF8",
    "KEY_TOO_LONG",
    "MAX_SERIES_ID_BYTES",
    "SERIES_ID_COLUMN",
    "SERIES_LIMIT",
    "SeriesIdError",
    "check_series_id",
    "segment_of",
    "series_id_of_key",
]

SERIES_ID_COLUMN = "series_id"
DEFAULT_SERIES_ID = "default"
MAX_SERIES_ID_BYTES = 128

# Dead-letter reasons of keyed records (beside the value's reasons in cache_daemon.decode).
KEY_NOT_UTF8 = "key_not_utf8"
KEY_TOO_LONG = "key_too_long"
SERIES_LIMIT = "series_limit"


class SeriesIdError(ValueError):
    """A key or id that cannot name a series; ``reason`` is a dead-letter reason label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def series_id_of_key(key: bytes | None, default: str = DEFAULT_SERIES_ID) -> str:
    """The series id a Kafka record key names: ``default`` for no key (``None``).

    Raises :class:`SeriesIdError` (``key_not_utf8`` or ``key_too_long``) for a key that is
    not valid UTF-8 or is longer than :data:`MAX_SERIES_ID_BYTES` bytes. An empty key is the
    empty id's bytes and names the default series too: producers that set ``b""`` mean "no
    key".
    """
    if not key:
        return default
    if len(key) > MAX_SERIES_ID_BYTES:
        raise SeriesIdError(
            KEY_TOO_LONG, f"record key is {len(key)} bytes; at most {MAX_SERIES_ID_BYTES}"
        )
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeriesIdError(
            KEY_NOT_UTF8, f"record key is not valid UTF-8 (byte {exc.start})"
        ) from None


def check_series_id(series_id: str) -> str:
    """``series_id`` when it can name a series (non-empty, at most
    :data:`MAX_SERIES_ID_BYTES` bytes of UTF-8), else :class:`SeriesIdError`. For ids that
    arrive as text (HTTP requests, configuration, snapshot files)."""
    try:
        size = len(series_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise SeriesIdError(KEY_NOT_UTF8, "series id is not valid Unicode text") from None
    if size == 0:
        raise SeriesIdError(KEY_NOT_UTF8, "series id is empty")
    if size > MAX_SERIES_ID_BYTES:
        raise SeriesIdError(
            KEY_TOO_LONG, f"series id is {size} bytes; at most {MAX_SERIES_ID_BYTES}"
        )
    return series_id


def segment_of(series_id: str, segments: int) -> int:
    """The segment (``0 <= s < segments``) that stores ``series_id``: CRC-32 of its UTF-8
    bytes modulo ``segments``. Stable across processes, restarts and platforms."""
    if segments < 1:
        raise ValueError(f"segments must be at least 1, got {segments}")
    return zlib.crc32(series_id.encode("utf-8")) % segments
