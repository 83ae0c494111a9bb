"""The local stack: Apache Kafka (KRaft, one node) and s3proxy on 127.0.0.1.

Command line (from the project root; ``scripts/stack`` is the same with the project's venv)::

    python -m scripts.stack up       # start what is not running, wait until both answer,
                                     # print `export KAFKA_BOOTSTRAP_SERVERS=...` lines
    python -m scripts.stack status   # one line per server; exit 0 only when both answer
    python -m scripts.stack env      # the `export` lines again
    python -m scripts.stack down     # stop the servers this stack started, delete their data

Files: jars in ``<cache>/stack/lib`` (``.cache/`` by default, fetched by coordinates and
checked against ``infra/stack-jars.lock.json``), state, configs, data and logs in the stack
directory (``.run/stack/`` by default): ``state.json`` (pids and ports), ``kafka/logs/kafka.log``,
``s3/s3proxy.log``. ``down`` signals only the pids recorded there, and only when the process's
command line still names this directory.

Library use (the pytest fixtures in ``tests/conftest.py``)::

    stack = Stack(StackConfig.from_env(os.environ, state_dir=tmp, kafka_port=..., ...),
                  tie_to_parent=True)
    stack.up(); ...; stack.stop_kafka(); stack.start_kafka(); ...; stack.down()

A ``Stack`` object is not thread-safe; ``up``/``down``/``stop_kafka``/``start_kafka`` take a file
lock on the stack directory, so two processes never start the same stack twice.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Mapping

from scripts._stack import Stack
from scripts._stack_config import ROOT, ServiceStatus, StackConfig
from scripts.errors import StackError

__all__ = ["ROOT", "ServiceStatus", "Stack", "StackConfig", "main"]

log = logging.getLogger(__name__)


def _exports(env: Mapping[str, str]) -> str:
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def main(argv: list[str] | None = None) -> int:
    """``python -m scripts.stack up|down|status|env``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.stack", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="stack: %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # probe retries are expected noise
    try:
        stack = Stack(StackConfig.from_env(os.environ))
        if args.command == "up":
            times = stack.up()
            log.info(
                "ready: s3 %.1f s, kafka %.1f s, total %.1f s",
                times["s3"],
                times["kafka"],
                times["total"],
            )
            print(_exports(stack.env()))
        elif args.command == "down":
            stack.down()
        elif args.command == "env":
            print(_exports(stack.env()))
        else:
            statuses = stack.status()
            for item in statuses:
                what = (
                    "ready" if item.ready else ("running, not answering" if item.pid else "stopped")
                )
                print(f"{item.name:6} {item.address:16} pid {item.pid or '-':>8}  {what}")
            return 0 if all(item.ready for item in statuses) else 1
    except StackError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
