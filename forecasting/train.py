"""``python -m forecasting.train``: fit a global forecaster, backtest it, write the artifact.

    python -m forecasting.train --input F --time-col T --target Y [--series-col S] \\
        --output M [--report R]

The input is a parquet file (local path or ``s3://bucket/key``, S3 settings from the
``S3_*`` variables) with a time column, a float target column and, with ``--series-col``,
a column naming the series (one global model is trained over all of them). Naive times are
UTC. The frequency is inferred (:mod:`forecasting.frequency`) and implies the season, lag
tiers, horizon, holdout and gap bound unless given; gaps follow :mod:`forecasting.gaps`. The
backtest (:mod:`forecasting.backtest`) picks Ridge or gradient boosting, scores the holdout
against naive and seasonal naive and measures the coverage of the 80 % interval; then every
tier is refitted on all the data and the artifact is written (local path or ``s3://``) with
its ``.sha256`` sidecar. Exit status 2 on bad input, with a message naming what is wrong.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from contract import defaults
from contract._atomic import write_atomic
from contract.errors import ConfigError
from forecasting.artifact import dumps, sha256_hex
from forecasting.backtest import (
    HoldoutForecasts,
    SeriesData,
    Setup,
    baseline_scores,
    final_tiers,
    folds_for,
    rows_needed,
    run_backtest,
)
from forecasting.errors import ForecastingError, IrregularSeriesError
from forecasting.features import FloatArray, IntArray
from forecasting.frequency import Frequency, infer_frequency
from forecasting.gaps import GapPolicy, segments
from forecasting.model import Forecaster, ModelKind
from objectstore import ObjectStore, S3Config, split_url

__all__ = [
    "Options",
    "TrainReport",
    "Trained",
    "load_frame",
    "load_series",
    "main",
    "train",
    "train_evaluated",
    "train_model",
    "write_artifact",
]

log = logging.getLogger(__name__)

TrainReport = dict[str, object]


@dataclass(frozen=True, slots=True)
class Options:
    """Training choices; None takes the frequency's default (docs/forecasting.md)."""

    frequency: str | None = None
    tiers: tuple[int, ...] | None = None
    horizon: int | None = None
    holdout: int | None = None
    season: int | None = None
    max_gap_steps: int | None = None
    gaps: GapPolicy = "split"
    candidates: tuple[ModelKind, ...] = ("ridge", "hgb")


def _utc_ns(column: pd.Series) -> IntArray:
    times = pd.to_datetime(column)
    times = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
    return np.asarray(times.dt.tz_localize(None).astype("datetime64[ns]").astype(np.int64))


def load_frame(
    frame: pd.DataFrame, *, time_col: str, target: str, series_col: str | None = None
) -> dict[str, tuple[IntArray, FloatArray]]:
    """Each series' sorted UTC nanosecond times and float64 values (NaN = missing).

    Raises :class:`ForecastingError` for a missing column, a repeated time within a series
    (naming the series and the time), an infinite value or a series column with nulls.
    """
    wanted = [time_col, target, *([series_col] if series_col else [])]
    for col in wanted:
        if col not in frame.columns:
            raise ForecastingError(f"column {col!r} not in input (has {list(frame.columns)})")
    if frame[time_col].isna().any():
        raise ForecastingError(f"column {time_col!r} has missing times")
    t = _utc_ns(frame[time_col])
    try:
        v = pd.to_numeric(frame[target], errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ForecastingError(f"column {target!r} is not numeric: {exc}") from None
    if np.isinf(v).any():
        raise ForecastingError(f"column {target!r} has infinite values")
    if series_col:
        if frame[series_col].isna().any():
            raise ForecastingError(f"column {series_col!r} has missing series ids")
        ids = frame[series_col].astype(str).to_numpy()
    else:
        ids = np.full(len(t), "default", dtype=object)
    out: dict[str, tuple[IntArray, FloatArray]] = {}
    for sid in sorted(set(ids.tolist())):
        mask = ids == sid
        st, sv = t[mask], v[mask]
        order = np.argsort(st, kind="stable")
        st, sv = st[order], sv[order]
        dup = np.flatnonzero(np.diff(st) == 0)
        if len(dup):
            when = np.datetime_as_string(np.datetime64(int(st[dup[0]]), "ns"), unit="s")
            hint = "" if series_col else " (several series in one file? pass --series-col)"
            raise ForecastingError(
                f"series {sid!r}: time {when}Z appears {int((st == st[dup[0]]).sum())} times{hint}"
            )
        out[sid] = (st, sv)
    return out


def load_series(frame: pd.DataFrame, *, time_col: str, target: str) -> tuple[IntArray, FloatArray]:
    """The one series of a frame, sorted, with every value finite."""
    ((t, v),) = load_frame(frame, time_col=time_col, target=target).values()
    if not np.all(np.isfinite(v)):
        raise ForecastingError(f"column {target!r} has NaN or infinite values")
    return t, v


def _frequency(series: dict[str, tuple[IntArray, FloatArray]], alias: str | None) -> Frequency:
    if alias is not None:
        try:
            return Frequency(alias)
        except ValueError as exc:
            raise ForecastingError(str(exc)) from None
    longest = max(series, key=lambda sid: len(series[sid][0]))
    t, _ = series[longest]
    try:
        return infer_frequency(t)
    except IrregularSeriesError as exc:
        raise ForecastingError(f"series {longest!r}: {exc}") from None


def _setup(freq: Frequency, options: Options) -> tuple[Setup, int]:
    base = freq.defaults()
    tiers = options.tiers or base.tiers
    tiers = tuple(sorted(set(tiers), reverse=True))
    if tiers[-1] < 1:
        raise ForecastingError("lag tiers must be positive")
    horizon = options.horizon or base.horizon
    holdout = options.holdout or base.holdout
    if holdout < horizon:
        raise ForecastingError(f"the holdout ({holdout}) must be at least the horizon ({horizon})")
    season = options.season or base.season
    gap = base.max_gap_steps if options.max_gap_steps is None else options.max_gap_steps
    return Setup(freq, season, horizon, tiers, holdout), gap


@dataclass(frozen=True, slots=True)
class Trained:
    """A trained forecaster, its report and its backtest's forecasts of the holdout."""

    model: Forecaster
    report: TrainReport
    holdout: HoldoutForecasts


def _fit_deepest(setup: Setup, longest: int) -> Setup:
    """The default tiers, with the deepest cut to the lags that one calibration fold and the
    holdout leave room for in the longest run (at least a horizon of training origins) when
    that run is too short for it; shallower tiers are kept."""
    room = longest - rows_needed(replace(setup, tiers=(0,)), 1)
    if room >= setup.tiers[0] or room < setup.tiers[-1]:
        return setup
    return replace(setup, tiers=(room, *(t for t in setup.tiers[1:] if t < room)))


def train_model(
    frame: pd.DataFrame,
    *,
    time_col: str = "time",
    target: str = defaults.SERIES_COLUMN,
    series_col: str | None = None,
    options: Options | None = None,
    trained_at: datetime | None = None,
) -> tuple[Forecaster, TrainReport]:
    """Backtest, then refit on everything: the forecaster and its report."""
    trained = train_evaluated(
        frame,
        time_col=time_col,
        target=target,
        series_col=series_col,
        options=options,
        trained_at=trained_at,
    )
    return trained.model, trained.report


def train_evaluated(
    frame: pd.DataFrame,
    *,
    time_col: str = "time",
    target: str = defaults.SERIES_COLUMN,
    series_col: str | None = None,
    options: Options | None = None,
    trained_at: datetime | None = None,
) -> Trained:
    """:func:`train_model` with the backtest's forecasts of the holdout.

    Runs with one BLAS/OpenMP thread: gradient boosting's OpenMP threads slowed its fits on
    small data tenfold on a shared two-core machine, and the fits are small."""
    with threadpool_limits(limits=1):
        return _train_model(
            frame,
            time_col=time_col,
            target=target,
            series_col=series_col,
            options=options or Options(),
            trained_at=trained_at,
        )


def _train_model(
    frame: pd.DataFrame,
    *,
    time_col: str,
    target: str,
    series_col: str | None,
    options: Options,
    trained_at: datetime | None,
) -> Trained:
    series = load_frame(frame, time_col=time_col, target=target, series_col=series_col)
    freq = _frequency(series, options.frequency)
    setup, gap = _setup(freq, options)
    data, rows, missing = [], 0, 0
    for sid, (t, v) in series.items():
        try:
            parts = segments(t, v, freq, max_gap_steps=gap, policy=options.gaps, series=sid)
        except IrregularSeriesError as exc:
            raise ForecastingError(
                f"series {sid!r}: {exc}" if sid not in str(exc) else str(exc)
            ) from None
        usable = tuple(p for p in parts if len(p) >= setup.tiers[-1] + setup.horizon)
        rows += int(np.isfinite(v).sum())
        missing += sum(len(p) for p in parts) - int(np.isfinite(v).sum())
        if usable:
            data.append(SeriesData(sid, usable))
    longest = max((len(d.last) for d in data), default=0)
    if options.tiers is None:
        setup = _fit_deepest(setup, longest)
    folds = folds_for(longest, setup)
    if folds == 0:
        raise ForecastingError(
            f"no series has a run of {rows_needed(setup, 1)} regular rows ({freq.alias}: "
            f"{setup.tiers[0]} lags and a {setup.horizon}-step horizon to train on, then two "
            f"{setup.holdout}-row windows) for the backtest; the longest run is {longest} rows "
            "(a smaller --holdout, --horizon or --lags may fit)"
        )
    needed = rows_needed(setup, folds)
    evaluated = [d for d in data if len(d.last) >= needed]
    backtest = run_backtest(evaluated, setup, options.candidates, folds)
    baselines = baseline_scores(evaluated, setup)
    tiers = final_tiers(data, setup, backtest)
    stamp = (trained_at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    model = Forecaster(
        frequency=freq,
        season=setup.season,
        horizon=setup.horizon,
        target=target,
        time_col=time_col,
        series_col=series_col,
        max_gap_steps=gap,
        tiers=tiers,
        version=f"{backtest.kind}-global-{freq.alias}-l{setup.tiers[0]}-h{setup.horizon}-{stamp}",
    )
    deepest = f"{backtest.kind}-l{setup.tiers[0]}"
    report: TrainReport = {
        "model_version": model.version,
        "frequency": freq.alias,
        "season": setup.season,
        "horizon": setup.horizon,
        "holdout_rows": setup.holdout,
        "tiers": list(setup.tiers),
        "min_rows": model.min_rows,
        "max_gap_steps": gap,
        "series": len(series),
        "series_trained": len(data),
        "series_evaluated": len(evaluated),
        "evaluated": [d.series for d in evaluated],
        "rows": rows,
        "interpolated_steps": missing,
        "segments": sum(len(d.parts) for d in data),
        "selection": {
            "window": f"{folds} calibration fold(s) of {setup.holdout} rows",
            "winner": backtest.kind,
            **backtest.selection,
        },
        "holdout": {"model": backtest.holdout[deepest], **backtest.holdout, **baselines},
        "coverage_80": backtest.holdout[deepest]["coverage_80"],
    }
    return Trained(model, report, backtest.forecasts)


def train(
    frame: pd.DataFrame,
    *,
    time_col: str = "time",
    target: str = defaults.SERIES_COLUMN,
    series_col: str | None = None,
    options: Options | None = None,
) -> tuple[bytes, TrainReport]:
    """:func:`train_model`, serialized: ``(artifact bytes, report with its sha256)``."""
    model, report = train_model(
        frame, time_col=time_col, target=target, series_col=series_col, options=options
    )
    data = dumps(model)
    return data, {**report, "sha256": sha256_hex(data)}


def _object_store() -> ObjectStore:
    """The store ``s3://`` paths refer to, from the ``S3_*`` variables."""
    try:
        config = S3Config.from_env(os.environ)
    except ConfigError as exc:
        raise ForecastingError(f"s3:// paths need the S3_* variables: {exc}") from None
    return ObjectStore(config, timeout_s=30.0, retries=2)


def _read_input(source: str) -> pd.DataFrame:
    if source.startswith("s3://"):
        raw = _object_store().get(*split_url(source)).data
        return pd.read_parquet(io.BytesIO(raw))
    return pd.read_parquet(source)


def write_artifact(dest: str, data: bytes) -> None:
    """Write the artifact and its ``.sha256`` sidecar (``sha256sum`` format), which the
    daemon requires before it installs an artifact."""
    sidecar = f"{sha256_hex(data)}  {dest.rsplit('/', 1)[-1]}\n".encode()
    if dest.startswith("s3://"):
        store = _object_store()
        bucket, key = split_url(dest)
        store.put(bucket, key, data)
        store.put(bucket, key + ".sha256", sidecar)
        return
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    write_atomic(path.with_name(path.name + ".sha256"), sidecar)


def table(report: TrainReport) -> str:
    """The holdout scores as a text table."""
    scores = report["holdout"]
    assert isinstance(scores, dict)
    lines = [f"{'forecaster':<24} {'MAE':>12} {'MASE':>8} {'cover80':>8}"]
    for name, s in scores.items():
        cover = f"{s['coverage_80']:>8.3f}" if "coverage_80" in s else f"{'':>8}"
        lines.append(f"{name:<24} {s['mae']:>12.4g} {s['mase']:>8.3f} {cover}")
    return "\n".join(lines)


def _tiers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not comma-separated integers") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forecasting.train", description=__doc__)
    parser.add_argument("--input", required=True, help="parquet path or s3://bucket/key")
    parser.add_argument("--output", required=True, help="artifact path or s3://bucket/key")
    parser.add_argument("--time-col", default="time")
    parser.add_argument("--target", default=defaults.SERIES_COLUMN)
    parser.add_argument("--series-col", help="column naming the series (one global model)")
    parser.add_argument("--report", help="also write the report as JSON to this path")
    parser.add_argument("--frequency", help="pandas offset alias instead of the inferred one")
    parser.add_argument("--lags", type=_tiers, help="lag tiers, e.g. 336,96 (deepest first)")
    parser.add_argument("--horizon", type=int, help="steps predicted at most")
    parser.add_argument("--holdout", type=int, help="rows of the holdout (and calibration)")
    parser.add_argument("--season", type=int, help="season in steps")
    parser.add_argument("--max-gap-steps", type=int, help="longest gap interpolated")
    parser.add_argument("--gaps", choices=("split", "refuse"), default="split")
    parser.add_argument(
        "--models",
        type=lambda s: tuple(s.split(",")),
        default=("ridge", "hgb"),
        help="candidates compared in the backtest: ridge,hgb",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not set(args.models) <= {"ridge", "hgb"} or not args.models:
        parser.error(f"--models takes ridge and/or hgb, got {','.join(args.models)}")
    options = Options(
        frequency=args.frequency,
        tiers=args.lags,
        horizon=args.horizon,
        holdout=args.holdout,
        season=args.season,
        max_gap_steps=args.max_gap_steps,
        gaps=args.gaps,
        candidates=args.models,
    )
    try:
        data, report = train(
            _read_input(args.input),
            time_col=args.time_col,
            target=args.target,
            series_col=args.series_col,
            options=options,
        )
    except (ForecastingError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_artifact(args.output, data)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"model_version {report['model_version']}  sha256 {report['sha256']}")
    print(
        f"frequency {report['frequency']}, season {report['season']}, holdout "
        f"{report['holdout_rows']} rows, horizon {report['horizon']} steps, min history "
        f"{report['min_rows']} rows, 80% interval coverage {report['coverage_80']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
