"""What a test sees of a publication directory: temp files, segment files, what manifests name."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

SEGMENTS = "segments"


def temp_files(directory: Path) -> list[str]:
    """Temp files left in the directory or its segments (``.tmp-*``)."""
    places = [directory, directory / SEGMENTS]
    return sorted(
        f"{place.name}/{p.name}"
        for place in places
        if place.is_dir()
        for p in place.iterdir()
        if p.name.startswith(".tmp-")
    )


def segment_files(directory: Path) -> set[str]:
    """Names of the segment files present."""
    place = directory / SEGMENTS
    return (
        {p.name for p in place.iterdir() if p.name.startswith("seg-")} if place.is_dir() else set()
    )


def manifest_written(path: Path) -> list[int] | None:
    """The ``written`` column of a manifest (read with pyarrow, not with the shm package);
    None for an inline generation."""
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        if b"shm.segments" not in (reader.schema.metadata or {}):
            return None
        return [int(w) for w in reader.read_all().column("written").to_pylist()]


def referenced_segment_files(directory: Path) -> set[str]:
    """Names of the segment files that the generation files present name."""
    names = set()
    for path in directory.glob("gen-*.arrow"):
        written = manifest_written(path)
        for segment, generation in enumerate(written or []):
            if generation:
                names.add(f"seg-{generation:020d}-{segment:07d}.arrow")
    return names
