"""A publisher process for the multi-process tests:
``python -m tests.shm._writer DIR SECONDS [inline|segmented]``.

Publishes self-verifying generations as fast as it can, until SECONDS elapse (0 means until
killed), and prints the number of generations it published.

``inline`` (default): generation ``g`` holds ``rows_for(g)`` rows, every value equal to ``g``,
and its checksum in the metadata.

``segmented``: :data:`SERIES` series in :data:`SEGMENTS` segments. Generation ``g`` rewrites
the segments ``s`` with ``(g + s) % PERIOD == 0`` (a quarter of them, hundreds of series at
once; the run's first generation writes every segment). A series written at ``w`` has
``series_rows(x, w)`` rows, every value equal to ``w``, and is absent when
``series_absent(x, w)``: so a reader can tell, from the generation number alone, what each
series must hold in that generation (:func:`expected_written`), and a snapshot mixing two
generations' segments cannot pass.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path

from contract.series import segment_of
from shm import Publisher, Snapshot, table_checksum
from tests.shm._tables import make_table, series_table

MIN_ROWS = 1_000
MAX_ROWS = 300_000

SERIES = [f"k{i:05d}" for i in range(4_000)]
SEGMENTS = 64
PERIOD = 4
_NUMBER = {x: i for i, x in enumerate(SERIES)}
_BY_SEGMENT: dict[int, list[str]] = {}
for _x in SERIES:
    _BY_SEGMENT.setdefault(segment_of(_x, SEGMENTS), []).append(_x)


def rows_for(generation: int) -> int:
    """Row count of generation ``generation``: varies so that kills land mid-write."""
    return MIN_ROWS + (generation * 7_919) % (MAX_ROWS - MIN_ROWS + 1)


def series_rows(series_id: str, written: int) -> int:
    """Rows of ``series_id`` in the segment file generation ``written`` wrote."""
    return 1 + (written * 7 + _NUMBER[series_id]) % 9


def series_absent(series_id: str, written: int) -> bool:
    """Whether the segment file generation ``written`` wrote leaves ``series_id`` out (the
    set of series changes with most generations)."""
    return (_NUMBER[series_id] + written) % 13 == 0


def expected_written(segment: int, generation: int, first: int) -> int:
    """The generation whose file holds ``segment`` in ``generation`` of a run that started at
    ``first``: the last ``g <= generation`` that rewrote it."""
    return max(first, generation - (generation + segment) % PERIOD)


def segment_content(segment: int, written: int) -> dict[str, int]:
    """Rows per series of ``segment`` as generation ``written`` writes it."""
    return {
        x: series_rows(x, written)
        for x in _BY_SEGMENT.get(segment, [])
        if not series_absent(x, written)
    }


def verify(snapshot: Snapshot, *, full: bool = False, sample: Iterable[str] = ()) -> str | None:
    """None when ``snapshot`` holds what its generation promises, else what is wrong.
    Segmented: every series with ``full``, else those of ``sample``."""
    if snapshot.metadata.get("layout") == "segmented":
        return _verify_segmented(snapshot, SERIES if full else sample)
    table = snapshot.table
    expected = rows_for(snapshot.generation)
    if table.num_rows != expected or snapshot.metadata.get("rows") != str(expected):
        return f"generation {snapshot.generation}: {table.num_rows} rows, expected {expected}"
    values = table.column("demand_mw").to_numpy()
    if values.min() != snapshot.generation or values.max() != snapshot.generation:
        return f"generation {snapshot.generation}: values {values.min()}..{values.max()}"
    if full and table_checksum(table) != snapshot.metadata.get("checksum"):
        return f"generation {snapshot.generation}: checksum mismatch"
    return None


def _verify_segmented(snapshot: Snapshot, series: Iterable[str]) -> str | None:
    generation, first = snapshot.generation, int(snapshot.metadata["first"])
    for x in series:
        written = expected_written(segment_of(x, SEGMENTS), generation, first)
        table = snapshot.series_table(x)
        if series_absent(x, written):
            if table is not None:
                return f"generation {generation}: {x} present, absent since {written}"
            continue
        if table is None:
            return f"generation {generation}: {x} missing, written at {written}"
        values = table.column("demand_mw").to_numpy()
        rows = series_rows(x, written)
        if table.num_rows != rows or values.min() != written or values.max() != written:
            return (
                f"generation {generation}: {x} has {table.num_rows} rows of "
                f"{values.min()}..{values.max()}, expected {rows} of {written}"
            )
    return None


def _publish_segmented(publisher: Publisher, first: int) -> None:
    generation = publisher.generation + 1
    changed = {
        s: series_table(segment_content(s, generation), float(generation))
        for s in range(SEGMENTS)
        if generation == first or (generation + s) % PERIOD == 0
    }
    publisher.publish_segments(
        changed, segments=SEGMENTS, metadata={"layout": "segmented", "first": str(first)}
    )


def main(directory: str, seconds: float, layout: str = "inline", stop_file: str = "") -> int:
    """Publish until ``seconds`` have passed (0: until killed), or, with ``stop_file``, until
    that file exists (``seconds`` then only bounds the run); print how many were published."""
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    stop = Path(stop_file) if stop_file else None
    published = 0
    with Publisher(directory) as publisher:
        first = publisher.generation + 1
        while time.monotonic() < deadline and not (stop is not None and stop.exists()):
            if layout == "segmented":
                # A name taken by a foreign file would shift the numbering; none is planted here.
                _publish_segmented(publisher, first)
            else:
                generation = publisher.generation + 1
                table = make_table(rows_for(generation), float(generation))
                metadata = {"rows": str(table.num_rows), "checksum": table_checksum(table)}
                publisher.publish(table, metadata=metadata)
            published += 1
    print(published)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), *sys.argv[3:5]))
