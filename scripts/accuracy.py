"""``python -m scripts.accuracy`` (``make accuracy``): the accuracy evidence of docs/forecasting.md.

For each dataset (the bundled sample and public series of other frequencies and shapes shipped
by statsmodels, a dev dependency) the model is trained with its defaults
(:func:`forecasting.train.train_evaluated`) and every forecaster is scored on the same origins:
every origin whose horizon lies inside the holdout (the last ``holdout`` rows of each evaluated
series' last regular run), stride one, fitted on the rows before the holdout and not refitted
(rolling origins):

* this model: MAE, MASE and the coverage of its 80 % conformal interval;
* naive (the last value) and seasonal naive (the last season);
* the peers, statsforecast's ``AutoETS`` and ``AutoARIMA`` (and ``MSTL`` for seasons longer
  than 24), run by ``scripts/accuracy_peer.py`` in a venv of their own (``make peer``,
  ``.venv-peer/``) on a parquet file of the series: the project never imports statsforecast.

The measures are :mod:`forecasting.metrics`. Writes the Markdown table between the
``accuracy`` markers of ``--doc`` (docs/forecasting.md), the JSON (``--json``) and one plot
per dataset (``--img-dir``/forecast-<dataset>.png: the end of the history, the forecast after
it and its 80 % interval). Exit status 2 when the peer's venv is missing or the peer fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contract import defaults
from forecasting import metrics
from forecasting.backtest import HoldoutForecasts
from forecasting.features import FloatArray
from forecasting.model import Forecaster
from forecasting.train import Options, load_frame, train_evaluated

__all__ = [
    "DATASETS",
    "Dataset",
    "Goals",
    "PeerError",
    "Scores",
    "evaluate",
    "goals",
    "main",
    "markdown",
    "run_peer",
    "score",
]

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"
PEER_SCRIPT = ROOT / "scripts" / "accuracy_peer.py"
PEERS = ("AutoETS", "AutoARIMA")
BEGIN, END = "<!-- accuracy:begin -->", "<!-- accuracy:end -->"


class PeerError(RuntimeError):
    """The peer's venv is missing or the peer failed."""


@dataclass(frozen=True, slots=True)
class Dataset:
    """A long-format frame and its column names."""

    name: str
    description: str
    load: Callable[[], pd.DataFrame]
    time_col: str = "time"
    target: str = "y"
    series_col: str | None = None


def _co2() -> pd.DataFrame:
    import statsmodels.api as sm  # noqa: PLC0415 (dev dependency, evidence only)

    data = sm.datasets.co2.load_pandas().data
    return pd.DataFrame({"time": data.index, "y": data["co2"].to_numpy()})


def _macro() -> pd.DataFrame:
    import statsmodels.api as sm  # noqa: PLC0415

    data = sm.datasets.macrodata.load_pandas().data
    start = pd.to_datetime(
        pd.DataFrame(
            {
                "year": data["year"].astype(int),
                "month": data["quarter"].astype(int) * 3 - 2,
                "day": 1,
            }
        )
    )
    columns = ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "pop"]
    return pd.concat(
        pd.DataFrame({"time": start, "series": col, "y": data[col].to_numpy()}) for col in columns
    )


def _sunspots() -> pd.DataFrame:
    import statsmodels.api as sm  # noqa: PLC0415

    data = sm.datasets.sunspots.load_pandas().data
    years = pd.to_datetime(data["YEAR"].astype(int).astype(str), format="%Y")
    return pd.DataFrame({"time": years, "y": data["SUNACTIVITY"].to_numpy()})


def _elnino() -> pd.DataFrame:
    import statsmodels.api as sm  # noqa: PLC0415

    data = sm.datasets.elnino.load_pandas().data
    long = data.melt(id_vars="YEAR", var_name="month", value_name="y")
    long["time"] = pd.to_datetime(
        long["YEAR"].astype(int).astype(str) + "-" + long["month"], format="%Y-%b"
    )
    return pd.DataFrame(long.sort_values("time")[["time", "y"]].reset_index(drop=True))


def _sample() -> pd.DataFrame:
    return pd.read_parquet(defaults.SAMPLE_PATH)


DATASETS = (
    Dataset("sample", "electricity demand, half-hourly (bundled)", _sample, target="demand_mw"),
    Dataset("co2", "Mauna Loa CO2, weekly, with missing weeks (statsmodels)", _co2),
    Dataset("elnino", "El Nino sea temperature, monthly (statsmodels)", _elnino),
    Dataset(
        "macro",
        "US macro, 8 series, quarterly, one global model (statsmodels)",
        _macro,
        series_col="series",
    ),
    Dataset("sunspots", "sunspot activity, yearly (statsmodels)", _sunspots),
)


@dataclass(frozen=True, slots=True)
class Scores:
    """MAE and MASE of one forecaster on a holdout (and the coverage of its 80 % interval)."""

    mae: float
    mase: float
    coverage_80: float | None = None

    def as_dict(self) -> dict[str, float]:
        out = {"mae": self.mae, "mase": self.mase}
        return out if self.coverage_80 is None else {**out, "coverage_80": self.coverage_80}


def score(
    holdout: HoldoutForecasts,
    forecast: Sequence[FloatArray],
    interval: tuple[Sequence[FloatArray], Sequence[FloatArray]] | None = None,
) -> Scores:
    """``forecast`` (one ``(origins, horizon)`` array per series of ``holdout``) scored
    against the holdout's actual values, with its MASE scales."""
    return Scores(
        mae=metrics.mae(holdout.actual, forecast),
        mase=metrics.mase(holdout.actual, forecast, holdout.mase_scales),
        coverage_80=None if interval is None else metrics.coverage(holdout.actual, *interval),
    )


def run_peer(
    runs: dict[str, FloatArray],
    *,
    horizon: int,
    holdout: int,
    season: int,
    models: Sequence[str] = PEERS,
    python: Path = PEER_PYTHON,
) -> pd.DataFrame:
    """``scripts/accuracy_peer.py`` in its venv on ``runs`` (one regular run per series):
    its forecasts of every holdout origin, a frame ``unique_id, origin, step, <model>...``."""
    if not python.exists():
        raise PeerError(f"{python} is missing: build the peer's venv with `make peer`")
    frame = pd.concat(
        pd.DataFrame({"unique_id": sid, "ds": np.arange(len(v), dtype=np.int64), "y": v})
        for sid, v in runs.items()
    )
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "series.parquet", Path(tmp) / "forecasts.parquet"
        frame.to_parquet(src, index=False)
        argv = [str(python), str(PEER_SCRIPT), "--input", str(src), "--output", str(dst)]
        argv += ["--horizon", str(horizon), "--holdout", str(holdout), "--season", str(season)]
        argv += ["--models", ",".join(models)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)  # noqa: S603
        if done.returncode != 0:
            raise PeerError(f"the peer failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return pd.read_parquet(dst)


def _peer_arrays(
    peer: pd.DataFrame, holdout: HoldoutForecasts, horizon: int
) -> dict[str, list[FloatArray]]:
    """The peer's forecasts as one ``(origins, horizon)`` array per series of ``holdout``,
    checked to cover exactly the holdout's origins and steps."""
    names = [c for c in peer.columns if c not in ("unique_id", "origin", "step")]
    out: dict[str, list[FloatArray]] = {name: [] for name in names}
    for sid, first, actual in zip(
        holdout.series, holdout.first_origin, holdout.actual, strict=True
    ):
        rows = peer[peer["unique_id"] == sid].sort_values(["origin", "step"])
        origins = first + np.arange(len(actual))
        expected = np.repeat(origins, horizon), np.tile(np.arange(1, horizon + 1), len(actual))
        if not (
            np.array_equal(rows["origin"].to_numpy(), expected[0])
            and np.array_equal(rows["step"].to_numpy(), expected[1])
        ):
            raise PeerError(f"the peer's origins of series {sid!r} are not the holdout's")
        for name in names:
            out[name].append(rows[name].to_numpy(dtype=np.float64).reshape(-1, horizon))
    return out


def evaluate(ds: Dataset, img_dir: Path | None, options: Options | None = None) -> dict[str, Any]:
    """Train on one dataset and score every forecaster on its holdout; plot."""
    frame = ds.load()
    started = time.monotonic()
    trained = train_evaluated(
        frame, time_col=ds.time_col, target=ds.target, series_col=ds.series_col, options=options
    )
    seconds = time.monotonic() - started
    model, report, holdout = trained.model, trained.report, trained.holdout
    evaluated = dict(zip(holdout.series, holdout.values, strict=True))
    holdout_rows = int(str(report["holdout_rows"]))
    scores: dict[str, Scores] = {
        "model": score(holdout, holdout.forecast, (holdout.low, holdout.high))
    }
    for name, period in (("seasonal_naive", model.season), ("naive", 1)):
        scores[name] = score(
            holdout,
            [
                metrics.naive_forecasts(v, first + np.arange(len(a)), model.horizon, period)
                for v, first, a in zip(
                    evaluated.values(), holdout.first_origin, holdout.actual, strict=True
                )
            ],
        )
    started = time.monotonic()
    peer = run_peer(evaluated, horizon=model.horizon, holdout=holdout_rows, season=model.season)
    peer_seconds = time.monotonic() - started
    for name, forecast in _peer_arrays(peer, holdout, model.horizon).items():
        scores[name] = score(holdout, forecast)
    if img_dir is not None:
        img_dir.mkdir(parents=True, exist_ok=True)
        _plot(frame, ds, model, img_dir / f"forecast-{ds.name}.png")
    selection = report["selection"]
    assert isinstance(selection, dict)
    return {
        "dataset": ds.name,
        "description": ds.description,
        "frequency": report["frequency"],
        "season": model.season,
        "series": report["series"],
        "series_evaluated": len(holdout.series),
        "rows": report["rows"],
        "horizon": model.horizon,
        "holdout_rows": holdout_rows,
        "origins": int(sum(len(a) for a in holdout.actual)),
        "winner": selection["winner"],
        "selection": selection,
        "scores": {name: s.as_dict() for name, s in scores.items()},
        "train_seconds": round(seconds, 1),
        "peer_seconds": round(peer_seconds, 1),
    }


@dataclass(frozen=True, slots=True)
class Goals:
    """The goals of one dataset: beat seasonal naive, a MASE within 10 % of the best peer's
    (or below it), 80 % coverage within 70 to 90 %."""

    best_peer: str
    ratio_to_peer: float
    beats_seasonal_naive: bool
    near_peer: bool
    coverage_ok: bool


def goals(result: dict[str, Any]) -> Goals:
    """:class:`Goals` of one result of :func:`evaluate`."""
    s = result["scores"]
    peers = [name for name in s if name not in ("model", "naive", "seasonal_naive")]
    best = min(peers, key=lambda name: s[name]["mase"])
    ratio = s["model"]["mase"] / s[best]["mase"]
    return Goals(
        best_peer=best,
        ratio_to_peer=ratio,
        beats_seasonal_naive=s["model"]["mase"] < s["seasonal_naive"]["mase"],
        near_peer=ratio <= 1.10,
        coverage_ok=0.70 <= s["model"]["coverage_80"] <= 0.90,
    )


def _mase(result: dict[str, Any], name: str) -> str:
    s = result["scores"].get(name)
    return "n/a" if s is None else f"{s['mase']:.3f}"


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """The table of docs/forecasting.md."""
    head = (
        "| dataset | freq | series | origins x horizon | model (kind) | MAE | MASE | "
        "seasonal naive | naive | AutoETS | AutoARIMA | MSTL | vs best peer | 80 % coverage | "
        "goals |\n"
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    rows = []
    for r in results:
        g = goals(r)
        met = [g.beats_seasonal_naive, g.near_peer, g.coverage_ok]
        model = r["scores"]["model"]
        rows.append(
            f"| {r['dataset']} | {r['frequency']} | {r['series_evaluated']} | "
            f"{r['origins'] // r['series_evaluated']} x {r['horizon']} | {r['winner']} | "
            f"{model['mae']:.4g} | **{model['mase']:.3f}** | {_mase(r, 'seasonal_naive')} | "
            f"{_mase(r, 'naive')} | {_mase(r, 'AutoETS')} | {_mase(r, 'AutoARIMA')} | "
            f"{_mase(r, 'MSTL')} | {g.ratio_to_peer - 1:+.0%} ({g.best_peer}) | "
            f"{model['coverage_80']:.3f} | {sum(met)}/3 "
            f"({''.join('y' if m else 'n' for m in met)}) |"
        )
    return head + "\n".join(rows) + "\n"


def write_between_markers(path: Path, text: str) -> None:
    """Replace what lies between the ``accuracy`` markers of ``path`` with ``text``."""
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{path} lacks the markers {BEGIN} and {END}")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def _plot(frame: pd.DataFrame, ds: Dataset, model: Forecaster, path: Path) -> None:
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    series = load_frame(frame, time_col=ds.time_col, target=ds.target, series_col=ds.series_col)
    sid = next(iter(series))
    t, v = series[sid]
    origin = model.prepare(t, v)
    times, point = model.predict(origin, model.horizon)
    low, high = model.quantiles(origin.tier, origin.scale, point, [0.1, 0.9])
    keep = max(4 * model.horizon, 3 * model.season, 60)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(pd.to_datetime(t[-keep:]), v[-keep:], color="black", lw=1, label="history")
    ax.plot(
        pd.to_datetime(times),
        point,
        color="tab:blue",
        lw=1.5,
        label=f"forecast ({model.method(origin)})",
    )
    ax.fill_between(
        pd.to_datetime(times), low, high, color="tab:blue", alpha=0.25, label="80 % interval"
    )
    ax.set_title(
        f"{ds.name}: {ds.description}" + (f", series {sid}" if ds.series_col else ""), fontsize=9
    )
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.accuracy", description=__doc__)
    parser.add_argument("--datasets", default=",".join(d.name for d in DATASETS))
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "accuracy.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "forecasting.md")
    parser.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the table, write nothing (no doc, JSON, plot)"
    )
    args = parser.parse_args(argv)
    wanted = args.datasets.split(",")
    unknown = set(wanted) - {d.name for d in DATASETS}
    if unknown:
        parser.error(f"unknown dataset(s) {sorted(unknown)}: {[d.name for d in DATASETS]}")
    started = time.monotonic()
    results = []
    try:
        for ds in DATASETS:
            if ds.name in wanted:
                results.append(evaluate(ds, None if args.dry_run else args.img_dir))
                print(json.dumps(results[-1]), flush=True)
    except PeerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = markdown(results)
    print(table)
    print(f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    if not args.dry_run:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        write_between_markers(args.doc, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
