"""The per-worker generation gauge under racing threads of fresh processes.

Each forked child starts like a fresh Gunicorn worker (gauge not yet created) and lets 32
threads report a generation at the same instant, with a one-microsecond thread switch
interval so that they interleave between almost every bytecode. A check-then-create gauge
fails here within a few children (``DuplicateTimeseries``); the gauge must be created once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import os, sys, threading
    sys.setswitchinterval(1e-6)
    from webapp import metrics

    def race():
        gate = threading.Barrier(32)
        errors = []
        def report(i):
            gate.wait()
            try:
                metrics.set_worker_generation(7)
            except Exception as exc:
                errors.append(type(exc).__name__)
        threads = [threading.Thread(target=report, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(os.getpid(), errors[:1], len(errors), flush=True)
        return len(errors)

    failed = 0
    for _ in range(int(sys.argv[1])):
        pid = os.fork()
        if pid == 0:
            os._exit(min(race(), 100))
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    sys.exit(min(failed, 100))
    """
)


def test_worker_generation_gauge_is_created_once_under_racing_threads(tmp_path) -> None:
    children = 20
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(children)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{proc.returncode} of {children} fresh processes failed:\n{proc.stdout}{proc.stderr}"
    )
    assert proc.stdout.count("\n") == children
