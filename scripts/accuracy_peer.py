"""The accuracy peer: statsforecast's models on the origins of a holdout.

Run by ``scripts.accuracy`` as a subprocess in a venv of its own (``make peer`` ->
``.venv-peer/``, ``scripts/peer-requirements.txt``), because statsforecast requires pandas<3
and the project runs pandas 3. It imports nothing of the project::

    .venv-peer/bin/python scripts/accuracy_peer.py --input IN --output OUT \\
        --horizon H --holdout N --season M [--models AutoETS,AutoARIMA]

``IN`` is a parquet file of the series, one row per step, oldest first within a series:
``unique_id`` (string), ``ds`` (the step number, int) and ``y`` (float, no NaN). Each model is
fitted on each series' rows before its last ``N`` and run forward through them without
refitting (``cross_validation(refit=False)``), from every origin whose horizon lies inside
them. ``OUT`` is a parquet file with ``unique_id``, ``origin`` (the step number of the first
forecast step), ``step`` (1 to H) and one float column per model, named as the model.

The seasonal models take the season ``M`` when it is at most ``--max-season`` (24:
``AutoETS`` refuses longer seasons and ``AutoARIMA`` becomes very slow), else they are
non-seasonal and ``MSTL`` (season ``M``, an ``AutoETS`` trend) is added beside them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd

MAX_SEASON = 24


def _models(names: Sequence[str], season: int, max_season: int) -> list[Any]:
    from statsforecast.models import MSTL, AutoARIMA, AutoETS  # noqa: PLC0415

    seasonal = season if season <= max_season else 1
    known = {
        "AutoETS": lambda: AutoETS(season_length=seasonal),
        "AutoARIMA": lambda: AutoARIMA(season_length=seasonal),
        "MSTL": lambda: MSTL(season_length=season, trend_forecaster=AutoETS(model="ZZN")),
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}: choose among {sorted(known)}")
    wanted = list(names)
    if season > max_season and season > 1 and "MSTL" not in wanted:
        wanted.append("MSTL")
    return [known[n]() for n in wanted]


def forecast(
    frame: pd.DataFrame,
    *,
    horizon: int,
    holdout: int,
    season: int,
    names: Sequence[str],
    max_season: int = MAX_SEASON,
) -> pd.DataFrame:
    """The forecasts of every holdout origin (the module docstring)."""
    from statsforecast import StatsForecast  # noqa: PLC0415

    models = _models(names, season, max_season)
    sf = StatsForecast(models=models, freq=1, n_jobs=1)
    cv = sf.cross_validation(
        df=frame[["unique_id", "ds", "y"]],
        h=horizon,
        step_size=1,
        n_windows=holdout - horizon + 1,
        refit=False,
    )
    cv = cv.reset_index() if "unique_id" not in cv.columns else cv
    out = pd.DataFrame(
        {
            "unique_id": cv["unique_id"].astype(str),
            "origin": (cv["cutoff"] + 1).astype("int64"),
            "step": (cv["ds"] - cv["cutoff"]).astype("int64"),
        }
    )
    for model in models:
        out[str(model)] = cv[str(model)].astype("float64").to_numpy()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/accuracy_peer.py", description=__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--horizon", type=int, required=True)
    parser.add_argument("--holdout", type=int, required=True)
    parser.add_argument("--season", type=int, required=True)
    parser.add_argument("--max-season", type=int, default=MAX_SEASON)
    parser.add_argument("--models", default="AutoETS,AutoARIMA")
    args = parser.parse_args(argv)
    frame = pd.read_parquet(args.input)
    out = forecast(
        frame,
        horizon=args.horizon,
        holdout=args.holdout,
        season=args.season,
        names=args.models.split(","),
        max_season=args.max_season,
    )
    out.to_parquet(args.output, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
