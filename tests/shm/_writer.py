"""A publisher process for the multi-process tests: ``python -m tests.shm._writer DIR SECONDS``.

Publishes self-verifying tables as fast as it can: generation ``g`` holds ``rows_for(g)`` rows,
every value equal to ``g``, and its checksum in the metadata. Runs until SECONDS elapse (0 means
until killed) and prints the number of generations it published.
"""

from __future__ import annotations

import sys
import time

from shm import Publisher, Snapshot, table_checksum
from tests.shm._tables import make_table

MIN_ROWS = 1_000
MAX_ROWS = 300_000


def rows_for(generation: int) -> int:
    """Row count of generation ``generation``: varies so that kills land mid-write."""
    return MIN_ROWS + (generation * 7_919) % (MAX_ROWS - MIN_ROWS + 1)


def verify(snapshot: Snapshot, *, full: bool = False) -> str | None:
    """None when ``snapshot`` holds what its generation promises, else what is wrong."""
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


def main(directory: str, seconds: float) -> int:
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    published = 0
    with Publisher(directory) as publisher:
        while time.monotonic() < deadline:
            generation = publisher.generation + 1
            table = make_table(rows_for(generation), float(generation))
            metadata = {"rows": str(table.num_rows), "checksum": table_checksum(table)}
            publisher.publish(table, metadata=metadata)
            published += 1
    print(published)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
