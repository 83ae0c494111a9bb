"""Scenario 6: the shm filesystem full (ENOSPC) while the service runs under load.

The daemon's ``SHM_DIR`` lives on a small tmpfs mounted for the test (root only, like
``tests/shm/test_enospc.py``). A file then fills it, leaving a few pages: enough for the small
status file, not for a generation. The last good generation must stay live and be served (no
5xx); the failure must show in the daemon's status (``degraded``, ``last_error``,
``publish_errors``), in ``/metrics``, and in ``/readyz`` once the data is older than the bound;
when the file is removed publishing resumes by itself and the service is ready again. The
scenarios run with the daemon publishing inline files and segments (a failure while writing
the segment files or the manifest leaves none of them behind).
"""

from __future__ import annotations

import errno
import gc
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.concurrency._checks import figures, json_ok
from tests.concurrency._http import Load, summarize
from tests.concurrency._service import Service, running_service, wait_until

pytestmark = pytest.mark.concurrency

MAX_AGE_MS = 2000
LEFT_FREE = 16 * 1024


@contextmanager
def tiny_tmpfs(size: str) -> Iterator[Path]:
    mountpoint = Path(tempfile.mkdtemp(prefix="conc-tmpfs-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs", str(mountpoint)],
        check=True,
    )
    try:
        yield mountpoint
    finally:
        gc.collect()
        if subprocess.run(["umount", str(mountpoint)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], check=True)
        mountpoint.rmdir()


class Hog:
    """Keeps a filesystem full but for ``leave`` bytes: a thread that grows ``path`` whenever
    more is free (pages of superseded generations come back when the last worker that still
    maps one lets go of it, at an unpredictable moment)."""

    def __init__(self, path: Path, leave: int) -> None:
        self.path, self.leave = path, leave
        self.size = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hog", daemon=True)

    def _free(self) -> int:
        st = os.statvfs(self.path.parent)
        return st.f_bavail * st.f_frsize

    def _run(self) -> None:
        with self.path.open("ab", buffering=0) as fh:
            while not self._stop.is_set():
                extra = self._free() - self.leave
                if extra > 0:
                    try:
                        self.size += fh.write(b"\0" * extra)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC, exc
                self._stop.wait(0.002)

    def start(self) -> Hog:
        self._thread.start()
        wait_until(lambda: self._free() <= self.leave, timeout=10, what="the filesystem full")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.path.unlink()


def temp_files(directory: Path) -> list[str]:
    """Temp files of generations or segments (``.tmp-*``, here and in ``segments/``) or of
    the status file (``.*.part``)."""
    names = [
        p.name for p in directory.iterdir() if p.name.startswith(".tmp-") or p.suffix == ".part"
    ]
    segments = directory / "segments"
    if segments.is_dir():
        names += [f"segments/{p.name}" for p in segments.iterdir() if p.name.startswith(".tmp-")]
    return names


def lingering_temp_files(service: Service) -> list[str]:
    """The temp files (:func:`temp_files`) left behind by a failed write. The daemon goes on
    publishing, so one listing may catch the temp file of a publication in flight, which is
    renamed or removed within it: only a file still there, the same file (inode), once two
    later generations are live was left behind. A file listed and renamed before its
    ``stat`` was in flight too."""
    first = {}
    for name in temp_files(service.shm_dir):
        with suppress(FileNotFoundError):
            first[name] = (service.shm_dir / name).stat().st_ino
    if not first:
        return []
    now = service.generation()
    service.wait_snapshot(lambda s: s.generation > now + 1, what="two later publications")
    lingering = []
    for name, inode in first.items():
        with suppress(FileNotFoundError):
            if (service.shm_dir / name).stat().st_ino == inode:
                lingering.append(name)
    return lingering


LAYOUTS = ["inline", "segmented"]


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_full_shm_keeps_serving_reports_and_recovers(artifact: bytes, layout: str) -> None:
    with (
        tiny_tmpfs("2m") as mount,
        running_service(
            artifact,
            shm_dir=mount / "window",
            workers=4,
            max_age_ms=MAX_AGE_MS,
            publish_interval_ms=20,
            daemon_env={"REPLAY_RATE": "20"},
            layout=layout,
        ) as service,
    ):
        with (
            Load(service.port, "POST", "/predict", b"{}", threads=4) as predict,
            Load(service.port, "GET", "/readyz", threads=1) as ready,
        ):
            time.sleep(0.5)
            hog = Hog(mount / "filler", LEFT_FREE).start()
            full_at = time.monotonic_ns()
            degraded = service.wait_status(
                lambda s: s["state"] == "degraded" and s["counters"]["publish_errors"] > 0,
                what="degraded with a publish error",
            )
            wait_until(
                lambda: service.get("/readyz").headers.get("x-not-ready") == "stale",
                timeout=MAX_AGE_MS / 1000 + 10,
                what="/readyz stale while the disk is full",
            )
            metrics = service.metrics()
            last_good = service.generation()
            during = [service.predict() for _ in range(20)]
            published_while_full = service.generation() - last_good
            hog.stop()
            freed_at = time.monotonic()
            resumed = service.wait_snapshot(
                lambda s: s.generation > last_good, what="publishing resumed"
            ).generation  # no Snapshot kept: its mapping would keep the mount busy
            resumed_s = time.monotonic() - freed_at
            status = service.wait_status(
                lambda s: s["state"] == "live" and s["last_error"] is None, what="live again"
            )
            service.wait_ready()
        leftovers = lingering_temp_files(service)
    assert "No space left" in degraded["last_error"], degraded
    # A superseded generation's pages come back when the last worker unmaps it, and a
    # publication may then fit for a moment; what is served is always the newest complete one.
    assert {r.json()["generation"] for r in during} <= set(
        range(last_good, last_good + published_while_full + 1)
    )
    assert metrics["daemon_publish_errors_total"] >= 1
    assert metrics['daemon_state{state="degraded"}'] == 1
    assert status["counters"]["publish_errors"] >= degraded["counters"]["publish_errors"]
    assert leftovers == []
    results = predict.results()
    assert len(json_ok(results)) == len(results), summarize(results)
    probes = ready.results()
    assert all(r.kind == "ok" and r.status in (200, 503) for r in probes), summarize(probes)
    full_probes = [r for r in probes if r.sent_ns > full_at]
    figures(
        "6-enospc",
        layout=layout,
        filler_bytes=hog.size,
        published_while_full=published_while_full,
        predict_requests=len(results),
        predict_failed=len(results) - len(json_ok(results)),
        answers_while_full_on_last_good=len(during),
        publish_errors=status["counters"]["publish_errors"],
        readyz_probes_after_full=len(full_probes),
        readyz_503_after_full=sum(1 for r in full_probes if r.status == 503),
        resumed_after_s=round(resumed_s, 2),
        resumed_generation=resumed,
    )


def run_no_page_free(
    artifact: bytes, *, workers: int, threads: int, max_age_ms: int, layout: str = "auto"
) -> dict[str, object]:
    """Not even the small status file can be rewritten: the daemon's heartbeat ages (its
    health check and ``/readyz`` say so), the last good generation is still served, and
    everything recovers when space returns."""
    with (
        tiny_tmpfs("2m") as mount,
        running_service(
            artifact,
            shm_dir=mount / "window",
            workers=workers,
            max_age_ms=max_age_ms,
            publish_interval_ms=20,
            daemon_env={"REPLAY_RATE": "20"},
            layout=layout,
        ) as service,
        Load(service.port, "POST", "/predict", b"{}", threads=threads) as predict,
    ):
        service.wait_snapshot(lambda s: s.generation > 1, what="a publication under load")
        hog = Hog(mount / "filler", 0).start()
        frozen = service.wait_status(
            lambda s: time.time_ns() - s["heartbeat_ns"] > (max_age_ms + 500) * 1_000_000,
            timeout=max_age_ms / 1000 + 20,
            what="the status file no longer rewritten",
        )
        readyz = service.get("/readyz")
        last_good = service.generation()
        during = [service.predict() for _ in range(20)]
        hog.stop()
        service.wait_snapshot(lambda s: s.generation > last_good, what="publishing resumed")
        status = service.wait_status(
            lambda s: s["state"] == "live" and s["last_error"] is None, what="live again"
        )
        service.wait_ready()
        leftovers = lingering_temp_files(service)
        log = service.daemon.tail(100_000)
    assert (readyz.status, readyz.headers.get("x-not-ready")) == (503, "stale")
    assert "cannot write the status file" in log
    assert {r.json()["generation"] for r in during} == {last_good}
    assert status["counters"]["publish_errors"] >= 1
    assert leftovers == []
    results = predict.results()
    answered = json_ok(results)
    assert len(answered) == len(results), summarize(results)
    return {
        "layout": layout,
        "predict_requests": len(results),
        "predict_failed": len(results) - len(answered),
        "answers_while_full_on_last_good": len(during),
        "frozen_state": frozen["state"],
        "publish_errors": status["counters"]["publish_errors"],
    }


@pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_page_free_at_all_short(artifact: bytes, layout: str) -> None:
    """The CI form of the case below: fewer workers and clients, a shorter bound."""
    out = run_no_page_free(artifact, workers=2, threads=2, max_age_ms=1000, layout=layout)
    figures("6b-enospc-no-page-free", **out)


@pytest.mark.soak
@pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")
def test_no_page_free_at_all_keeps_serving_and_recovers(artifact: bytes) -> None:
    out = run_no_page_free(artifact, workers=4, threads=4, max_age_ms=MAX_AGE_MS)
    figures("soak-enospc-no-page-free", **out)
