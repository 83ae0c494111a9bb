"""``python -m scripts.seed``: put the sample series where the service bootstraps from.

1. Uploads the parquet file (default ``data/electricity_demand_halfhourly.parquet``) unchanged
   to ``s3://$SNAPSHOT_BUCKET/$SNAPSHOT_KEY`` as the bootstrap snapshot, creating the bucket when
   it is missing (skip with ``--no-upload``).
2. With ``--replay``, sends the series to ``$KAFKA_TOPIC`` as JSON events
   (``{"time": "...Z", "demand_mw": ...}``) at ``--rate`` events per second (``$REPLAY_RATE``,
   10 by default; 0 = as fast as the broker takes them), showing progress on stderr. The topic is
   created with ``--partitions`` partitions when it does not exist. ``--times`` chooses the
   event times (see ``scripts._events``): ``continue`` (default) carries on after the snapshot's
   last row, so the daemon sees new data; ``original`` replays the snapshot's own rows.
   ``--series N`` sends keyed records for N series (keys ``series-0001`` ... ``series-N``, the
   sample with a different phase each): one event per series for each time step. Without it
   the records have no key (one series, the daemon's default one).

Variables: S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_SECURE, S3_REGION, SNAPSHOT_BUCKET,
SNAPSHOT_KEY (for the upload); KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC, REPLAY_RATE (for the
replay). ``eval "$(python -m scripts.stack env)"`` points them at the local stack. Exit status:
0 done, 2 bad configuration or a server error (the message says which), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

import pandas as pd
from tqdm import tqdm

from contract import defaults
from contract.errors import ConfigError
from scripts._events import TIME_MODES, TimeMode, keyed_events
from scripts.errors import SeedError

__all__ = ["SeedConfig", "main", "progress_bar", "replay", "upload"]

log = logging.getLogger(__name__)

DEFAULT_FILE = defaults.SAMPLE_PATH
PARQUET_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class SeedConfig:
    """Settings from the project's environment variables (see the module docstring)."""

    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_secure: bool
    s3_region: str
    snapshot_bucket: str
    snapshot_key: str
    bootstrap_servers: str
    topic: str
    replay_rate: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SeedConfig:
        """Read the variables; raises ``SeedError`` naming a variable whose value is invalid.
        Missing ones are reported by ``require`` when the step that needs them runs."""
        secure_raw = environ.get("S3_SECURE", "false").strip().lower()
        if secure_raw not in {"true", "false", "1", "0", "yes", "no"}:
            raise SeedError(f"S3_SECURE={secure_raw!r} must be true or false")
        rate_raw = environ.get("REPLAY_RATE", "10")
        try:
            rate = float(rate_raw)
        except ValueError:
            raise SeedError(f"REPLAY_RATE={rate_raw!r} is not a number") from None
        if not rate >= 0:
            raise SeedError(f"REPLAY_RATE={rate_raw!r} must be >= 0")
        return cls(
            s3_endpoint=environ.get("S3_ENDPOINT", ""),
            s3_access_key=environ.get("S3_ACCESS_KEY", ""),
            s3_secret_key=environ.get("S3_SECRET_KEY", ""),
            s3_secure=secure_raw in {"true", "1", "yes"},
            s3_region=environ.get("S3_REGION", "us-east-1"),
            snapshot_bucket=environ.get("SNAPSHOT_BUCKET", ""),
            snapshot_key=environ.get("SNAPSHOT_KEY", ""),
            bootstrap_servers=environ.get("KAFKA_BOOTSTRAP_SERVERS", ""),
            topic=environ.get("KAFKA_TOPIC", defaults.TOPIC),
            replay_rate=rate,
        )

    def require(self, *names: str) -> None:
        """Raise ``SeedError`` listing the variables among ``names`` that are empty."""
        fields = {
            "S3_ENDPOINT": self.s3_endpoint,
            "S3_ACCESS_KEY": self.s3_access_key,
            "S3_SECRET_KEY": self.s3_secret_key,
            "SNAPSHOT_BUCKET": self.snapshot_bucket,
            "SNAPSHOT_KEY": self.snapshot_key,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_TOPIC": self.topic,
        }
        missing = [name for name in names if not fields[name]]
        if missing:
            raise SeedError(
                f'set {", ".join(missing)} (eval "$(python -m scripts.stack env)" '
                "gives the local stack's S3 and Kafka settings)"
            )


def upload(config: SeedConfig, path: Path) -> int:
    """Upload ``path`` to the snapshot location (bucket created if missing); returns its size.

    Raises ``SeedError`` for a missing file or variable, an S3 error or an unreachable server.
    """
    from objectstore import ObjectStore, S3Config, StoreError  # noqa: PLC0415 - upload only

    config.require(
        "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "SNAPSHOT_BUCKET", "SNAPSHOT_KEY"
    )
    if not path.is_file():
        raise SeedError(f"{path} does not exist")
    try:
        s3 = S3Config.from_fields(
            endpoint=config.s3_endpoint,
            access_key=config.s3_access_key,
            secret_key=config.s3_secret_key,
            secure=config.s3_secure,
            region=config.s3_region,
        )
    except ConfigError as exc:
        raise SeedError(str(exc)) from None
    store = ObjectStore(s3, timeout_s=30.0, retries=2)
    bucket, key = config.snapshot_bucket, config.snapshot_key
    try:
        store.ensure_bucket(bucket)
        store.put(bucket, key, path.read_bytes(), content_type=PARQUET_TYPE)
        size = store.stat(bucket, key).size
    except StoreError as exc:
        raise SeedError(f"S3: {exc}") from None
    if size != path.stat().st_size:
        raise SeedError(f"s3://{bucket}/{key} has {size} bytes, {path} has {path.stat().st_size}")
    log.info("uploaded %s to s3://%s/%s (%d bytes)", path, bucket, key, size)
    return int(size)


def progress_bar(
    label: str, total: int | None, *, disable: bool = False, file: TextIO | None = None
) -> tqdm[NoReturn]:
    """A progress display on stderr (``file``): redrawn in place on a terminal, a line every
    few seconds in a log."""
    stream = sys.stderr if file is None else file
    return tqdm(
        desc=label,
        total=total,
        unit="event",
        file=stream,
        disable=disable,
        mininterval=0.1 if stream.isatty() else 5.0,
        dynamic_ncols=True,
    )


def replay(
    config: SeedConfig,
    records: Iterable[tuple[bytes | None, Mapping[str, Any]]],
    *,
    total: int | None,
    rate: float,
    partitions: int = 1,
    progress: bool = True,
) -> int:
    """Send ``records`` (``(key, event)``; the event as JSON) to ``config.topic`` at ``rate``
    per second (0 = unpaced) and wait for every acknowledgement; returns how many were sent.
    Creates the topic with ``partitions`` partitions when it is missing. Raises
    ``SeedError`` for a Kafka error."""
    config.require("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC")
    from scripts._replay import open_producer  # noqa: PLC0415 - kafka only for the replay

    sent = 0
    with (
        open_producer(config.bootstrap_servers, config.topic, partitions=partitions) as send,
        progress_bar(f"replay {config.topic}", total, disable=not progress) as bar,
    ):
        started = time.monotonic()
        for key, record in records:
            if rate > 0:
                delay = started + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            send(record, key)
            sent += 1
            bar.update()
    log.info("sent %d events to %s on %s", sent, config.topic, config.bootstrap_servers)
    return sent


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.seed", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="parquet series")
    parser.add_argument("--no-upload", action="store_true", help="skip the S3 upload")
    parser.add_argument("--replay", action="store_true", help="send the events to Kafka")
    parser.add_argument("--rate", type=float, help="events per second (default $REPLAY_RATE)")
    parser.add_argument(
        "--limit",
        type=int,
        help="events to send (default: one pass over the file per series; 0 = endless)",
    )
    parser.add_argument(
        "--series", type=int, default=0, help="keyed series (default 0: records without a key)"
    )
    parser.add_argument("--times", choices=TIME_MODES, default="continue")
    parser.add_argument("--partitions", type=int, default=1, help="for a topic created here")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="seed: %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        config = SeedConfig.from_env(os.environ if environ is None else environ)
        if not args.no_upload:
            upload(config, args.file)
        if args.replay:
            rate = config.replay_rate if args.rate is None else args.rate
            if (
                rate < 0
                or args.partitions < 1
                or args.series < 0
                or (args.limit is not None and args.limit < 0)
            ):
                raise SeedError(
                    "--rate must be >= 0, --partitions >= 1, --series >= 0 and --limit >= 0"
                )
            frame = pd.read_parquet(args.file)
            limit = args.limit if args.limit != 0 else None
            if limit is None and args.limit is None:
                limit = len(frame) * max(args.series, 1)
            mode: TimeMode = args.times
            replay(
                config,
                keyed_events(frame, mode=mode, limit=limit, series=args.series),
                total=limit,
                rate=rate,
                partitions=args.partitions,
                progress=not args.no_progress,
            )
    except SeedError as exc:
        log.error("%s", exc)
        return 2
    except (ValueError, OSError) as exc:
        log.error("%s: %s", args.file, exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
