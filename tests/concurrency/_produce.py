"""A producer process for the fastest stream: ``python -m tests.concurrency._produce SERVERS TOPIC
FIRST COUNT RATE``.

Sends events ``FIRST .. FIRST+COUNT-1`` (see ``_series``) to partition 0 of TOPIC at about
RATE per second without waiting for each acknowledgement (``linger_ms=0``: every event its own
request, so the daemon sees a continuous trickle), until COUNT were sent or SIGTERM; then
flushes and prints the number of events acknowledged (after a first line ``ready``). A
separate process, so the test's client threads and this producer do not share one GIL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ProducerProcess"]


def main(servers: str, topic: str, first: int, count: int, rate: float) -> int:
    stop = False

    def handle(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, handle)
    from kafka import KafkaProducer  # noqa: PLC0415 (only the child needs kafka-python)

    from tests.concurrency._series import event  # noqa: PLC0415

    producer = KafkaProducer(
        bootstrap_servers=servers, acks=1, linger_ms=0, request_timeout_ms=10_000
    )
    print("ready", flush=True)
    futures = []
    started = time.monotonic()
    try:
        for n in range(count):
            if stop:
                break
            value = json.dumps(event(first + n)).encode()
            futures.append(producer.send(topic, value=value, partition=0))
            ahead = started + (n + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        producer.flush(timeout=30)
        acked = sum(1 for f in futures if f.succeeded())
    finally:
        producer.close(timeout=10)
    print(acked, flush=True)
    return 0


class ProducerProcess:
    """Start :func:`main` as a child; :meth:`stop` ends it and returns the acknowledged count."""

    def __init__(self, servers: str, topic: str, *, first: int, count: int, rate: float) -> None:
        root = Path(__file__).resolve().parents[2]
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.concurrency._produce",
                servers,
                topic,
                str(first),
                str(count),
                str(rate),
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        ready = self._proc.stdout.readline()  # imports done, producer connected
        assert ready.strip() == "ready", (ready, self._proc.poll())

    def stop(self) -> int:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        out, err = self._proc.communicate(timeout=60)
        assert self._proc.returncode == 0, (self._proc.returncode, out, err[-3000:])
        return int(out.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
