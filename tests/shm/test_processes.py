"""Invariants that need several processes: fork safety, torn reads, kill -9 of the writer."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import pytest

from shm import Publisher, Reader
from shm._hint import Hint
from tests.shm._files import referenced_segment_files, segment_files, temp_files
from tests.shm._kill import run_until_killed
from tests.shm._publish import publish, value_of
from tests.shm._tables import make_table
from tests.shm._writer import SERIES, verify

ROOT = Path(__file__).resolve().parents[2]
FORK = multiprocessing.get_context("fork")
LAYOUTS = ["inline", "segmented"]
SAMPLE = 64
# Distinct generations each reader must have followed.
FOLLOWED = 5
# Generations the writer must have published while the readers read.
PUBLISHED = 10


def start_writer(
    directory: Path,
    seconds: float,
    *,
    output: bool = True,
    layout: str = "inline",
    stop_file: Path | None = None,
) -> subprocess.Popen[str]:
    args = [str(directory), str(seconds), layout] + ([str(stop_file)] if stop_file else [])
    return subprocess.Popen(
        [sys.executable, "-m", "tests.shm._writer", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        text=True,
    )


def newest_generation(directory: Path) -> int:
    snapshot = Reader(directory).current()
    return snapshot.generation if snapshot is not None else 0


def _child_reads(reader: Reader, parent_snapshot_id: int, queue: Queue[object]) -> None:
    snapshot = reader.current()
    assert snapshot is not None
    queue.put((snapshot.generation, id(snapshot) != parent_snapshot_id, os.getpid()))


def test_forked_child_reopens_instead_of_reusing_the_parents_mapping(shm_dir: Path) -> None:
    publisher = Publisher(shm_dir)
    publisher.publish(make_table(10, 1.0))
    reader = Reader(shm_dir)
    parent_snapshot = reader.current()
    assert parent_snapshot is not None
    publisher.publish(make_table(10, 2.0))  # not yet seen by the parent's reader
    queue: Queue[object] = FORK.Queue()
    child = FORK.Process(target=_child_reads, args=(reader, id(parent_snapshot), queue))
    child.start()
    generation, reopened, pid = queue.get(timeout=30)  # type: ignore[misc]
    child.join(timeout=30)
    publisher.close()
    assert child.exitcode == 0
    assert pid != os.getpid()
    assert generation == 2
    assert reopened


def _read_until(
    directory: Path, stop: EventType, queue: Queue[object], seen: Any, index: int
) -> None:
    """Read as fast as possible, checking every generation in full the first time it is seen
    (segmented: every series of the snapshot), then the generation it replaced again, from
    the snapshot still held, now that the writer has moved on (segmented: a random sample of
    series, whose files the writer may have unlinked by now); and some reads of an unchanged
    generation again (a sample, every 64 reads). ``seen[index]`` counts the generations
    checked, each after the re-read of the one before it."""
    reader = Reader(directory)
    rng = random.Random(os.getpid())
    reads, rereads, generations, errors = 0, 0, set(), []
    last = 0
    previous = None
    while not stop.is_set():
        snapshot = reader.current()
        if snapshot is None:
            continue
        reads += 1
        if snapshot.generation < last:
            errors.append(f"went back from {last} to {snapshot.generation}")
        last = snapshot.generation
        if snapshot.generation not in generations:
            generations.add(snapshot.generation)
            problem = verify(snapshot, full=True)
            if problem:
                errors.append(problem)
            if previous is not None:
                problem = verify(previous, sample=rng.sample(SERIES, SAMPLE))
                if problem:
                    errors.append(f"read again after generation {last}: {problem}")
                rereads += 1
            previous = snapshot
            seen[index] = len(generations)
        elif reads % 64 == 0:
            problem = verify(snapshot, sample=rng.sample(SERIES, SAMPLE))
            if problem:
                errors.append(problem)
    queue.put((reads, len(generations), rereads, errors))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("seconds", [3.0])
def test_no_torn_reads_with_readers_in_other_processes(
    shm_dir: Path, seconds: float, layout: str
) -> None:
    """Segmented: each generation rewrites a quarter of 64 segments (about 1,000 of 4,000
    series, and the set of series changes); a reader that mixed two generations' segments in
    one snapshot would find a series whose rows or values are not its generation's."""
    stop = FORK.Event()
    queue: Queue[object] = FORK.Queue()
    seen = FORK.Array("i", 3)
    readers = [
        FORK.Process(target=_read_until, args=(shm_dir, stop, queue, seen, i)) for i in range(3)
    ]
    for process in readers:
        process.start()
    # The readers run for as long as the writer publishes, however slowly the machine starts it.
    # A reader checks each new generation in full, which on a loaded machine may take longer
    # than the writer's whole run, and the readers' checks slow the writer down (inline: up to
    # 300,000 rows a generation): the writer goes on (at least ``seconds``) until it has
    # published 10 generations and every reader has followed it through 5, or the bound
    # below is reached.
    stop_file = shm_dir.parent / "writer.stop"
    writer = start_writer(shm_dir, seconds + 120, layout=layout, stop_file=stop_file)
    started = time.monotonic()
    while writer.poll() is None and (
        time.monotonic() - started < seconds
        or min(seen[:]) < FOLLOWED
        or newest_generation(shm_dir) < PUBLISHED
    ):
        time.sleep(0.05)
    stop_file.touch()
    out, _ = writer.communicate(timeout=60)
    stop.set()
    results = [queue.get(timeout=30) for _ in readers]
    for process in readers:
        process.join(timeout=30)
    assert writer.returncode == 0
    published = int(out)
    errors = [e for r in results for e in r[3]]  # type: ignore[index]
    assert errors == []
    assert published >= PUBLISHED, f"writer published only {published} generations"
    # Every reader followed the writer through many generations, not just one, and read each
    # one it left behind again after the writer had moved on. (How many reads in all depends
    # on how fast the machine is: each new generation costs a full check.)
    assert all(  # (reads, generations, re-reads, errors) per reader
        r[1] >= FOLLOWED and r[2] >= FOLLOWED - 1  # type: ignore[index]
        for r in results
    ), results


def announced(directory: Path) -> int:
    """The generation the hint announces (its first 8 bytes, little-endian)."""
    return int.from_bytes((directory / "generation.hint").read_bytes()[:8], "little")


def state_after_kill(directory: Path, served: int | None) -> str:
    """What a killed writer left, for a failure message."""
    names = sorted(p.name for p in directory.iterdir() if p.name.startswith(("gen-", ".tmp-")))
    return f"served {served}, hint announces {announced(directory)}, files {names}"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_writer_killed_at_random_instants_leaves_a_valid_generation(
    shm_dir: Path, layout: str
) -> None:
    """Wherever the kill lands, readers serve a complete generation newer than the last
    run's, and the next run numbers on from the announced one. The hint announces a
    generation just before its rename, so a kill between the two leaves the announced number
    one above the served one, without its file: the next run skips that number."""
    rng = random.Random(20261127)
    last_generation = 0
    for _ in range(8):
        writer = start_writer(shm_dir, 0, output=False, layout=layout)
        # Wait for its first publication, then kill it at a random instant.
        deadline = time.monotonic() + 30
        while newest_generation(shm_dir) <= last_generation and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.25))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        snapshot = Reader(shm_dir).current()
        served = snapshot.generation if snapshot is not None else None
        state = state_after_kill(shm_dir, served)
        assert snapshot is not None, state
        assert verify(snapshot, full=True) is None, (verify(snapshot, full=True), state)
        assert snapshot.generation > last_generation, (last_generation, state)
        name = shm_dir / f"gen-{announced(shm_dir):020d}.arrow"
        assert announced(shm_dir) == snapshot.generation or (
            announced(shm_dir) == snapshot.generation + 1 and not name.exists()
        ), state
        last_generation = snapshot.generation
    state = state_after_kill(shm_dir, last_generation)
    next_generation = announced(shm_dir) + 1
    with Publisher(shm_dir) as publisher:
        assert temp_files(shm_dir) == [], state
        # Segment files of a generation killed before its manifest's rename are gone too.
        assert segment_files(shm_dir) == referenced_segment_files(shm_dir), state
        assert publisher.strays() == [], state
        assert publisher.publish(make_table(1)) == next_generation, state


def _die_between_announcement_and_rename(directory: Path, layout: str) -> None:
    """In a child: publish twice, then be killed at the instant the third generation is
    announced and its file not yet renamed into place."""
    publisher = Publisher(directory)
    for value in (1.0, 2.0):
        publish(publisher, layout, 100, value)
    write = Hint.write

    def announce_and_die(self: Hint, generation: int) -> None:
        write(self, generation)
        os.kill(os.getpid(), signal.SIGKILL)

    Hint.write = announce_and_die  # type: ignore[method-assign]
    publish(publisher, layout, 100, 3.0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_writer_killed_between_announcement_and_rename(shm_dir: Path, layout: str) -> None:
    """The hint announces 3, whose file never appears: readers serve 2, and the next run
    removes the temp files and numbers on from 4 (numbers are not reused after a kill)."""
    run_until_killed(lambda: _die_between_announcement_and_rename(shm_dir, layout))
    assert announced(shm_dir) == 3
    assert not (shm_dir / f"gen-{3:020d}.arrow").exists()
    assert temp_files(shm_dir)  # the generation file's
    reader = Reader(shm_dir)
    snapshot = reader.current()
    assert snapshot is not None and snapshot.generation == 2
    assert value_of(snapshot, layout) == 2.0
    with Publisher(shm_dir) as publisher:
        assert publisher.generation == 3
        assert temp_files(shm_dir) == []
        assert segment_files(shm_dir) == referenced_segment_files(shm_dir)
        assert publisher.strays() == []
        assert publish(publisher, layout, 100, 4.0) == 4
    snapshot = reader.current()
    assert snapshot is not None and snapshot.generation == 4
    assert value_of(snapshot, layout) == 4.0
