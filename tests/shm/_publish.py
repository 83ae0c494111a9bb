"""One publication step in either layout, for tests parametrised over both."""

from __future__ import annotations

import itertools

from contract.series import segment_of
from shm import Publisher, Snapshot
from tests.shm._tables import make_table, series_table, split_by_segment

LAYOUTS = ["inline", "segmented"]
SEGMENTS = 4
SERIES_PER_SEGMENT = 10


def ids_of_segment(segment: int, count: int = SERIES_PER_SEGMENT) -> list[str]:
    """The first ``count`` ids ``s<n>`` that :func:`segment_of` puts in ``segment``."""
    ids = (f"s{n}" for n in itertools.count())
    return list(itertools.islice((x for x in ids if segment_of(x, SEGMENTS) == segment), count))


def publish(publisher: Publisher, layout: str, rows: int, value: float) -> int:
    """Publish about ``rows`` rows of ``value``. Inline: one table. Segmented: every segment
    the first time (the publisher has no segmented generation yet), else segment 0 alone,
    ``rows`` rows in it."""
    if layout == "inline":
        return publisher.publish(make_table(rows, value))
    if publisher.segments is None:
        ids = [x for s in range(SEGMENTS) for x in ids_of_segment(s)]
        per_series = max(1, rows // len(ids))
        table = series_table(dict.fromkeys(ids, per_series), value)
        return publisher.publish_segments(split_by_segment(table, SEGMENTS), segments=SEGMENTS)
    ids = ids_of_segment(0)
    table = series_table(dict.fromkeys(ids, max(1, rows // len(ids))), value)
    return publisher.publish_segments({0: table}, segments=SEGMENTS)


def value_of(snapshot: Snapshot, layout: str) -> float:
    """The value the last :func:`publish` into segment 0 (or of the table) wrote."""
    if layout == "inline":
        value = snapshot.table.column("demand_mw")[0].as_py()
    else:
        table = snapshot.series_table(ids_of_segment(0)[0])
        assert table is not None
        value = table.column("demand_mw")[0].as_py()
    assert isinstance(value, float)
    return value
