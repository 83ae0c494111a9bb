"""How response bodies write times: ISO-8601 UTC with a ``Z``."""

from __future__ import annotations

from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from forecasting.features import IntArray

__all__ = ["format_times"]

_DateArray = npt.NDArray[np.datetime64]


def format_times(times_ns: IntArray, step_ns: int) -> list[str]:
    """ISO-8601 UTC strings ending in ``Z``; whole seconds unless the data needs more."""
    unit: Literal["s", "us"] = (
        "s" if step_ns % 1_000_000_000 == 0 and not np.any(times_ns % 1_000_000_000) else "us"
    )
    stamps = np.datetime_as_string(cast("_DateArray", times_ns.astype("datetime64[ns]")), unit=unit)
    return [f"{s}Z" for s in stamps.tolist()]
