"""Scenario 3: the daemon SIGKILLed at random moments while it publishes, then restarted.

Kills land at random moments of publishing, at the instant a generation is being written
(a temp file exists), and during start-up (before the restarted daemon published anything).

A producer streams events all along; clients call ``/predict {}`` and ``/readyz``. Meanwhile
the workers must keep answering from the last good generation (no 5xx, and while the daemon
is down every answer names exactly that generation); once the daemon has been down longer than
``MAX_DATA_AGE_MS``, ``/readyz`` must say "stale". After the last restart the window must hold
every event exactly once: offsets equal to the end of the topic, the table equal to the
snapshot plus every event produced, and the ``events`` counter equal to the number produced.
It runs with the daemon publishing inline files and segments (a manifest and segment files:
a kill between renaming the segment files and the manifest leaves files no manifest names,
which the restarted daemon removes).
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from tests._stack import StackHandle
from tests.concurrency._checks import figures, json_ok, window_differences
from tests.concurrency._http import Load, summarize
from tests.concurrency._kafka import Pacer, Producer, end_offset
from tests.concurrency._series import rows_of, value
from tests.concurrency._service import ROOT, Service, running_service, wait_until
from tests.webapp._support import GunicornServer, new_shm_window, remove_tree

pytestmark = pytest.mark.concurrency

SNAPSHOT_ROWS = 1000
MAX_AGE_MS = 1500


@dataclass
class Outage:
    down_ns: int
    up_ns: int
    generation: int
    state: str  # the served generation's state: a restarted daemon republishes "restoring"
    temp_files: int


def _temp_files(service: Service) -> list[str]:
    """The publication temp files in the shm directory and its ``segments/``."""
    names = [p.name for p in service.shm_dir.iterdir() if p.name.startswith(".tmp-")]
    segments = service.shm_dir / "segments"
    if segments.is_dir():
        names += [f"segments/{p.name}" for p in segments.iterdir() if p.name.startswith(".tmp-")]
    return names


def _writing(service: Service, seconds: float) -> bool:
    """Spin until a publication's temp file exists (a write in flight); False after
    ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):  # a temp file renamed meanwhile
            if _temp_files(service):
                return True
    return False


def kill_and_restart(
    service: Service,
    *,
    down_s: float,
    run_s: float,
    mid_write: bool,
    in_startup: bool,
    from_live: bool = False,
) -> Outage:
    """Let the daemon publish for ``run_s`` after its last start, SIGKILL it (``mid_write``:
    at the moment a temp file shows a write in flight; ``in_startup``: ``run_s`` after the
    start, whether it has published yet or not; ``from_live``: only once the restarted daemon
    has caught up and published a ``live`` generation), keep it down for ``down_s``, start it
    again."""
    if not in_startup:
        before = service.generation()
        # A restarted daemon first republishes its last window as "restoring"; catching up
        # with the topic can take seconds on a busy machine.
        service.wait_snapshot(
            lambda s: s.generation > before and (s.metadata["state"] == "live" or not from_live),
            timeout=60,
            what="a live publication" if from_live else "a publication",
        )
    time.sleep(run_s)
    if mid_write:
        _writing(service, 3.0)
    service.daemon.kill()
    down = time.monotonic_ns()
    served = service.snapshot()
    assert served is not None
    temps = len(_temp_files(service))
    time.sleep(down_s)
    up = time.monotonic_ns()
    service.daemon.start()
    return Outage(down, up, served.generation, served.metadata["state"], temps)


def run_kills(
    stack: StackHandle,
    artifact: bytes,
    *,
    events: int,
    rate: float,
    kills: int,
    seed: int,
    layout: str = "auto",
) -> dict[str, object]:
    rng = random.Random(seed)
    topic = stack.new_topic(1, prefix="kill")
    with running_service(
        artifact,
        stack=stack,
        topic=topic,
        workers=4,
        snapshot_rows=SNAPSHOT_ROWS,
        publish_interval_ms=5,
        max_age_ms=MAX_AGE_MS,
        layout=layout,
    ) as service:
        producer = Producer(stack, topic)
        pacer = Pacer(producer, first=SNAPSHOT_ROWS, count=events, rate=rate, batch=5)
        outages: list[Outage] = []
        try:
            with (
                Load(
                    service.port, "POST", "/predict", b"{}", threads=4, context=service.generation
                ) as predict,
                Load(service.port, "GET", "/readyz", threads=1) as ready,
            ):
                pacer.start()
                for k in range(kills):
                    # One outage outlasts the staleness bound; the others are short. It starts
                    # from live data: a "restoring" generation is not ready to begin with, and
                    # /readyz names that reason rather than "stale" (see docs/daemon.md).
                    down = MAX_AGE_MS / 1000 + 1.5 if k == 1 else rng.uniform(0.1, 0.8)
                    outages.append(
                        kill_and_restart(
                            service,
                            down_s=down,
                            run_s=rng.uniform(0.2, 1.5) if k % 3 != 2 else rng.uniform(0.0, 1.0),
                            mid_write=k % 3 == 0,
                            in_startup=k % 3 == 2,
                            from_live=k == 1,
                        )
                    )
                pacer.join()
                end = end_offset(stack, topic)
                final = service.wait_snapshot(
                    lambda s: (
                        s.metadata["offsets"] == f'{{"0": {end}}}' and s.metadata["state"] == "live"
                    ),
                    timeout=60,
                    what="caught up after the last restart",
                )
                service.wait_ready()
                leftovers = _temp_files(service)
                segmented = final.segmented
        finally:
            producer.close()
        predicts, readies = predict.results(), ready.results()
        status = service.status()
    assert status is not None
    counters = final.metadata["counters"]
    expected_rows = {i: value(i) for i in range(SNAPSHOT_ROWS + events)}
    assert end == events
    assert leftovers == [], "a restarted daemon leaves no temp file of a killed write"
    differences = window_differences(rows_of(final.table), expected_rows)
    assert set(differences.values()) == {0}, f"the window is not snapshot + events: {differences}"
    assert counters == (
        f'{{"events":{events},"dead_letters":{{}},"dropped_late":0,"publish_errors":0,'
        '"series_expired":0}'
    ), counters

    answered = json_ok(predicts)
    assert len(answered) == len(predicts), summarize(predicts)
    during_each = []
    for outage in outages:
        inside = [r for r in answered if r.sent_ns > outage.down_ns and r.done_ns < outage.up_ns]
        for r in inside:
            assert r.json()["generation"] == outage.generation, (outage, r.json())
        during_each.append(len(inside))
    long = outages[1]
    # The long outage lasts seconds under four client threads: without answers inside it the
    # check above would have checked nothing.
    assert during_each[1] > 0, f"no request fell inside the long outage: {during_each}"
    behind = [r for r in answered if r.json()["generation"] < r.context]
    assert behind == [], behind[:3]
    assert long.state == "live", long
    stale = 0
    bound = long.down_ns + (MAX_AGE_MS + 500) * 1_000_000
    in_long = [r for r in readies if r.sent_ns > bound and r.done_ns < long.up_ns]
    assert in_long, "no /readyz probe during the long outage"
    for r in in_long:
        assert (r.status, r.headers.get("x-not-ready")) == (503, "stale"), r
        stale += 1
    assert all(r.kind == "ok" and r.status in (200, 503) for r in readies), summarize(readies)
    assert segmented == (layout == "segmented")
    return {
        "layout": layout,
        "kills": kills,
        "events": events,
        "kills_with_a_write_in_flight": sum(1 for o in outages if o.temp_files),
        "kills_during_startup": sum(1 for k in range(kills) if k % 3 == 2),
        "predict_requests": len(predicts),
        "predict_failed": len(predicts) - len(answered),
        "answers_during_outages": sum(during_each),
        "answers_during_each_outage": during_each,
        "served_state_at_each_kill": [o.state for o in outages],
        "readyz_probes": len(readies),
        "readyz_stale_in_long_outage": stale,
        "final_rows": final.table.num_rows,
        **differences,
        "events_counted": json.loads(counters)["events"],
    }


@pytest.mark.parametrize("layout", ["inline", "segmented"])
def test_sigkill_while_publishing_loses_nothing_and_serving_goes_on(
    stack: StackHandle, artifact: bytes, layout: str
) -> None:
    out = run_kills(stack, artifact, events=2000, rate=100.0, kills=5, seed=3, layout=layout)
    figures("3-daemon-sigkill", **out)


_PUBLISH_THEN_DIE = """
import json, os, sys
import pyarrow as pa
from scripts.sample_window import sample_table, window_metadata
from shm import Publisher

real_replace = os.replace


def replace(src, dst):
    real_replace(src, dst)
    if os.path.basename(str(dst)).startswith("gen-"):
        os._exit(9)  # SIGKILL's effect, at the instant the new generation became visible


os.replace = replace
table = sample_table(1000, end=2000)
metadata = window_metadata(table, json.loads(sys.argv[2]))
if sys.argv[3] == "segmented":  # a manifest naming one segment file, renamed last
    keyed = table.add_column(0, "series_id", pa.array(["default"] * table.num_rows))
    Publisher(sys.argv[1]).publish_segments({0: keyed}, segments=1, metadata=metadata)
else:
    Publisher(sys.argv[1]).publish(table, metadata=metadata)
"""


@pytest.mark.parametrize("layout", ["inline", "segmented"])
def test_a_publisher_killed_right_after_the_rename_is_seen_by_every_worker(
    artifact: bytes, layout: str
) -> None:
    """The worst instant for a kill: the new generation's file is in place, nothing after
    that ran. It is complete and the newest, so every worker must serve it, not only the
    ones that happen to open the directory afresh."""
    window, parent = new_shm_window(artifact)
    try:
        window.publish(1000, end=1500)
        window.write_status()
        window.close()  # releases the publisher lock for the one that dies
        web = GunicornServer({"SHM_DIR": str(window.directory)}, workers=4)
        try:
            web.wait_ready()
            pids = web.worker_pids()
            wait_until(
                lambda: {web.request("GET", "/cache").json()["pid"] for _ in range(40)} == pids,
                timeout=30,
                what="every worker serving generation 1",
            )
            child = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _PUBLISH_THEN_DIE,
                    str(window.directory),
                    json.dumps(window.model_meta),
                    layout,
                ],
                cwd=ROOT,
                check=False,
            )
            assert child.returncode == 9
            assert (window.directory / "gen-00000000000000000002.arrow").is_file()
            deadline = time.monotonic() + 3.0
            seen: dict[int, int] = {}
            while time.monotonic() < deadline:
                body = web.request("GET", "/cache").json()
                seen[body["pid"]] = body["generation"]
                if set(seen) == pids and set(seen.values()) == {2}:
                    break
            behind = {pid: gen for pid, gen in seen.items() if gen != 2}
            assert behind == {}, f"workers still serving generation 1: {behind}"
            assert set(seen) == pids, f"workers never heard from within 3 s: {pids - set(seen)}"
        finally:
            web.stop()
    finally:
        remove_tree(parent)
