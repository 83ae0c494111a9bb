"""``python -m forecasting.report``: the accuracy evidence of docs/forecasting.md.

Trains the model (:func:`forecasting.train.train_model`, default options) on public series
of other frequencies and shapes shipped by statsmodels (a dev dependency) and on the bundled
sample, and scores on each one's holdout, from every origin whose horizon lies inside it:

* this model (MAE, MASE, coverage of its 80 % conformal interval);
* naive and seasonal naive;
* statsforecast's ``AutoETS`` (dev dependency, used here only) fitted on the rows before the
  holdout and run forward through it (``cross_validation(refit=False)``): the same origins.
  ETS takes seasons up to 24; for a longer season it is non-seasonal, and ``MSTL`` (that
  season, an ETS trend) is scored as well.

Writes a Markdown table (``--markdown``), the JSON (``--json``) and one plot per dataset
into ``--img-dir`` (matplotlib): the end of the history, the forecast after it and its 80 %
interval.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contract import defaults
from forecasting.backtest import mase_scale
from forecasting.gaps import segments
from forecasting.model import Forecaster
from forecasting.train import TrainReport, load_frame, train_model

__all__ = ["DATASETS", "Dataset", "main"]


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
    import statsmodels.api as sm  # noqa: PLC0415 (dev dependency, report only)

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


def _peer(
    frame: pd.DataFrame, ds: Dataset, model: Forecaster, holdout: int, evaluated: set[str]
) -> dict[str, Any]:
    """AutoETS on the same origins: fitted before the holdout, run through it."""
    from statsforecast import StatsForecast  # noqa: PLC0415
    from statsforecast.models import MSTL, AutoETS  # noqa: PLC0415

    series = load_frame(frame, time_col=ds.time_col, target=ds.target, series_col=ds.series_col)
    long, scales = [], {}
    for sid, (t, v) in series.items():
        if sid not in evaluated:
            continue  # as the backtest: only the series it evaluates
        last = segments(t, v, model.frequency, max_gap_steps=model.max_gap_steps, series=sid)[-1]
        long.append(pd.DataFrame({"unique_id": sid, "ds": np.arange(len(last)), "y": last.values}))
        scales[sid] = mase_scale(last.values[: len(last) - holdout], model.season)
    df = pd.concat(long)
    season = model.season if model.season <= 24 else 1  # ETS takes seasons up to 24
    peers: list[Any] = [AutoETS(season_length=season)]
    if model.season > 24:
        peers.append(MSTL(season_length=model.season, trend_forecaster=AutoETS(model="ZZN")))
    sf = StatsForecast(models=peers, freq=1, n_jobs=1)
    cv = sf.cross_validation(
        df=df, h=model.horizon, step_size=1, n_windows=holdout - model.horizon + 1, refit=False
    )
    out: dict[str, Any] = {"season_length": season}
    for name in ("AutoETS", "MSTL")[: len(peers)]:
        err = (cv["y"] - cv[name]).abs()
        per_series = err.groupby(cv["unique_id"]).mean()
        out[name] = {
            "mae": float(err.mean()),
            "mase": float(
                np.mean([per_series[sid] / scales[str(sid)] for sid in per_series.index])
            ),
        }
    return out


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


def evaluate(ds: Dataset, img_dir: Path | None) -> dict[str, Any]:
    """Train on one dataset, score the peer on the same holdout, plot."""
    frame = ds.load()
    started = time.monotonic()
    model, report = train_model(
        frame, time_col=ds.time_col, target=ds.target, series_col=ds.series_col
    )
    seconds = time.monotonic() - started
    holdout = _holdout(report)
    evaluated = report["evaluated"]
    assert isinstance(evaluated, list)
    peer = _peer(frame, ds, model, int(str(report["holdout_rows"])), set(evaluated))
    if img_dir is not None:
        img_dir.mkdir(parents=True, exist_ok=True)
        _plot(frame, ds, model, img_dir / f"forecast-{ds.name}.png")
    return {
        "dataset": ds.name,
        "description": ds.description,
        "frequency": report["frequency"],
        "series": report["series"],
        "rows": report["rows"],
        "horizon": report["horizon"],
        "holdout_rows": report["holdout_rows"],
        "method": report["selection"],
        "model": holdout["model"],
        "naive": holdout["naive"],
        "seasonal_naive": holdout["seasonal_naive"],
        "autoets": peer["AutoETS"],
        "mstl": peer.get("MSTL"),
        "autoets_season": peer["season_length"],
        "coverage_80": report["coverage_80"],
        "train_seconds": round(seconds, 1),
    }


def _holdout(report: TrainReport) -> dict[str, dict[str, float]]:
    holdout = report["holdout"]
    assert isinstance(holdout, dict)
    return holdout


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """The table of docs/forecasting.md."""
    head = (
        "| dataset | freq | series | holdout x horizon | model (winner) | MAE | MASE | "
        "seasonal naive MASE | naive MASE | AutoETS MASE | MSTL MASE | 80 % coverage |\n"
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for r in results:
        winner = r["method"]["winner"]
        rows.append(
            f"| {r['dataset']} | {r['frequency']} | {r['series']} | "
            f"{r['holdout_rows']} x {r['horizon']} | {winner} | {r['model']['mae']:.4g} | "
            f"**{r['model']['mase']:.3f}** | {r['seasonal_naive']['mase']:.3f} | "
            f"{r['naive']['mase']:.3f} | {r['autoets']['mase']:.3f} | "
            f"{'n/a' if r['mstl'] is None else format(r['mstl']['mase'], '.3f')} | "
            f"{r['coverage_80']:.3f} |"
        )
    return head + "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forecasting.report", description=__doc__)
    parser.add_argument("--datasets", default=",".join(d.name for d in DATASETS))
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--img-dir", type=Path, help="one plot per dataset here")
    args = parser.parse_args(argv)
    wanted = args.datasets.split(",")
    results = []
    for ds in DATASETS:
        if ds.name in wanted:
            results.append(evaluate(ds, args.img_dir))
            print(json.dumps(results[-1]), flush=True)
    table = markdown(results)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
