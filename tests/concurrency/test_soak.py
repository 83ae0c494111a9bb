"""Long forms of the scenarios, run by ``make soak`` only (marker ``soak``; ``make test``
deselects them). Each prints its figures (``FIGURES ...``); ``make soak`` also appends them to
``reports/concurrency.jsonl``.

* shm: 1,000,000 reads across 8 processes while a writer publishes every millisecond.
* HTTP torn reads for a minute each from the replay source at full speed and from Kafka.
* The daemon SIGKILLed twelve times while it publishes a 3,000-event stream.
* The Kafka broker SIGKILLed and restarted mid-stream (2,000 events).
* Split brain over 100 events.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests._stack import StackHandle
from tests.concurrency._checks import figures
from tests.concurrency.test_daemon_kill import run_kills
from tests.concurrency.test_outages import run_broker_restart
from tests.concurrency.test_split_brain import run_split_brain
from tests.concurrency.test_torn_reads import LAYOUTS, check, run_torn_reads

pytestmark = [pytest.mark.concurrency, pytest.mark.soak, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
READERS = 8
READS = 1_000_000


def test_a_million_reads_across_eight_processes_with_a_writer_every_millisecond() -> None:
    parent = Path(tempfile.mkdtemp(prefix="conc-soak-", dir="/dev/shm"))
    directory = parent / "window"
    module = "tests.concurrency._shm_soak"
    writer = subprocess.Popen(
        [sys.executable, "-m", module, "writer", str(directory), "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        while not any(directory.glob("gen-*.arrow")):
            time.sleep(0.01)
        started = time.monotonic()
        readers = [
            subprocess.Popen(
                [sys.executable, "-m", module, "reader", str(directory), str(READS // READERS)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(READERS)
        ]
        outs = []
        for proc in readers:
            out, _ = proc.communicate(timeout=1500)
            assert proc.returncode == 0, out
            outs.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.monotonic() - started
    finally:
        writer.terminate()
        out, _ = writer.communicate(timeout=60)
        shutil.rmtree(parent, ignore_errors=True)
    published = int(out.strip().splitlines()[-1])
    totals = {k: sum(o[k] for o in outs) for k in ("reads", "regressions", "mismatches")}
    figures(
        "soak-shm-reads",
        processes=READERS,
        reads=totals["reads"],
        mismatches=totals["mismatches"],
        regressions=totals["regressions"],
        generations_published=published,
        generations_seen_per_process=[o["generations_seen"] for o in outs],
        seconds=round(elapsed, 1),
        reads_per_s=round(totals["reads"] / elapsed),
    )
    assert totals == {"reads": READS, "regressions": 0, "mismatches": 0}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_torn_reads_for_a_minute_from_replay(artifact: bytes, layout: str) -> None:
    out = run_torn_reads(artifact, stack=None, seconds=60.0, rate=5000.0, threads=8, layout=layout)
    check(out, min_generations=500)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_torn_reads_for_a_minute_from_kafka(
    stack: StackHandle, artifact: bytes, layout: str
) -> None:
    out = run_torn_reads(artifact, stack=stack, seconds=60.0, rate=2000.0, threads=8, layout=layout)
    check(out, min_generations=100)


def test_twelve_sigkills_over_a_long_stream(stack: StackHandle, artifact: bytes) -> None:
    out = run_kills(stack, artifact, events=3000, rate=60.0, kills=12, seed=11)
    figures("soak-daemon-sigkill", **out)


def test_broker_killed_and_restarted_mid_stream(stack: StackHandle, artifact: bytes) -> None:
    out = run_broker_restart(stack, artifact, hard=True, first=1000, second=1000)
    figures("soak-kafka-broker-sigkill", **out)


def test_split_brain_over_a_hundred_events(stack: StackHandle, artifact: bytes) -> None:
    out = run_split_brain(stack, artifact, events=100)
    figures("soak-split-brain", **out)
