"""Hypothesis strategies for ``POST /predict`` bodies that reach every check of the validator.

Independent random columns almost never have equal lengths of at least the model's minimum
rows, so every such body stops at the row count. These strategies start instead from a valid
body (``valid_bodies``: 336 to 400 rows on the model's 30-minute grid, times as UTC ``Z``,
naive, or aware in a zone with daylight saving, across a transition) and change exactly one
thing (``mutated_bodies``): one top-level field, one element of a column, the type of one
value, one level of nesting, the rows, or the ``series_id`` that labels the series. ``bodies``
mixes both with arbitrary JSON.

Each draw records what it changed with :func:`hypothesis.event`, visible with
``--hypothesis-show-statistics``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import event
from hypothesis import strategies as st

__all__ = [
    "MIN_ROWS",
    "STEP",
    "any_json",
    "bodies",
    "mutated_bodies",
    "series_ids",
    "valid_bodies",
]

STEP = timedelta(minutes=30)
MIN_ROWS = 336  # lags 1..48 of the test model plus its feature history
MAX_ROWS = 400

Body = dict[str, Any]
Draw = Callable[[st.SearchStrategy[Any]], Any]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
any_json = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)

# Zones with daylight saving (Lord Howe shifts by 30 minutes), one with a half-hour offset
# and none, and UTC. Each is paired with an instant near which its offset changes.
_TRANSITIONS = {
    "Europe/London": datetime(2021, 3, 28, 1, tzinfo=UTC),
    "America/New_York": datetime(2021, 11, 7, 6, tzinfo=UTC),
    "Australia/Lord_Howe": datetime(2021, 4, 3, 15, tzinfo=UTC),
    "America/St_Johns": datetime(2021, 3, 14, 5, 30, tzinfo=UTC),
    "Asia/Kolkata": datetime(2021, 6, 1, tzinfo=UTC),
    "UTC": datetime(2000, 6, 5, tzinfo=UTC),
}


@st.composite
def valid_bodies(draw: Draw) -> Body:
    """A body the validator accepts: equal columns of ``MIN_ROWS``..``MAX_ROWS`` rows on the
    30-minute grid, finite values, and optionally ``inference_length`` in 1..48."""
    rows = draw(st.integers(MIN_ROWS, MAX_ROWS))
    zone_name = draw(st.sampled_from(sorted(_TRANSITIONS)))
    # Start so that the zone's offset change falls inside the series.
    start = _TRANSITIONS[zone_name] - draw(st.integers(0, rows - 1)) * STEP
    style = draw(st.sampled_from(["Z", "naive", "zone"]))
    spec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))
    zone = ZoneInfo(zone_name)
    times = [_format(start + i * STEP, style, zone, spec) for i in range(rows)]
    level = draw(st.sampled_from([0.0, 30_000.0, -1e6, 1e12]))
    seed = draw(st.integers(0, 2**32 - 1))
    values = (level + np.random.default_rng(seed).normal(0.0, 1_000.0, rows)).tolist()
    body: Body = {"index_col": "time", "data": {"time": times, "demand_mw": values}}
    if draw(st.booleans()):
        body["inference_length"] = draw(st.integers(1, 48))
    if draw(st.booleans()):  # index_col is optional when the column is called "time"
        del body["index_col"]
    if draw(st.booleans()):
        body["quantiles"] = draw(_levels)
    if draw(st.integers(0, 3)) == 0:  # with caller data a series id only labels the answer
        body["series_id"] = draw(series_ids)
    return body


_levels = st.lists(
    st.floats(min_value=0.001, max_value=0.999), min_size=1, max_size=9, unique_by=repr
)


# Valid series ids: 1 to 128 bytes of UTF-8 (contract.series.check_series_id).
series_ids = st.text(min_size=1, max_size=32).filter(lambda s: len(s.encode("utf-8")) <= 128)
_odd_series_ids = (
    st.sampled_from(
        [
            "",
            "x" * 129,  # one byte too many
            "é" * 65,  # 65 characters, 130 bytes
            "\ud800",  # a lone surrogate: valid JSON text, not Unicode
            "meter:7",
            "x" * 128,
        ]
    )
    | any_json
)


def _format(moment: datetime, style: str, zone: ZoneInfo, spec: str) -> str:
    if style == "Z":
        return moment.isoformat(timespec=spec).replace("+00:00", "Z")
    if style == "naive":
        return moment.replace(tzinfo=None).isoformat(timespec=spec)
    return moment.astimezone(zone).isoformat(timespec=spec)


_odd_times = st.sampled_from(
    [
        "2021-03-28T01:30:00",  # naive among aware, or the reverse
        "2021-03-28T01:30:00Z",
        "2021-03-28",
        "2021-03-28T24:00:00Z",
        "2021-02-30T00:00:00Z",
        "2021-03-28T01:30:60Z",  # a leap second
        "1600-01-01T00:00:00Z",  # before datetime64[ns]
        "2300-01-01T00:00:00Z",  # after it
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2021-03-28T01:30:00+25:00",
        "2021-W12-7T01:30:00Z",
        "20210328T013000Z",
        "x" * 100,
        "",
    ]
) | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
_odd_values = st.sampled_from(
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        1.7976931348623157e308,
        -1.7976931348623157e308,
        5e-324,
        -0.0,
        10**400,  # an integer no float can hold
        -(10**30),
        "12.5",
        True,
    ]
)


def _set_field(draw: Draw, body: Body) -> str:
    key = draw(st.sampled_from(["inference_length", "index_col", "data", "series_id"]))
    body[key] = draw(any_json | st.integers(-(10**20), 10**20))
    return f"field {key} replaced"


def _drop_field(draw: Draw, body: Body) -> str:
    key = draw(st.sampled_from(sorted(body)))
    del body[key]
    return f"field {key} removed"


def _add_field(draw: Draw, body: Body) -> str:
    body[draw(st.text(min_size=1, max_size=70))] = draw(any_json)
    return "field added"


def _set_element(draw: Draw, body: Body) -> str:
    col = draw(st.sampled_from(["time", "demand_mw"]))
    column = body["data"][col]
    i = draw(st.integers(0, len(column) - 1))
    odd = _odd_times if col == "time" else _odd_values
    # Mostly values of the right kind gone wrong, sometimes any JSON at all.
    column[i] = draw(any_json if draw(st.integers(0, 3)) == 0 else odd)
    return f"{col} element replaced"


def _set_quantiles(draw: Draw, body: Body) -> str:
    how = draw(st.sampled_from(["too many", "repeated", "out of range", "not a number", "any"]))
    levels = [0.1, 0.5, 0.9]
    if how == "too many":
        levels = [round(0.05 * k, 2) for k in range(1, 11)]
    elif how == "repeated":
        levels = [0.1, 0.5, 0.10]
    elif how == "out of range":
        levels[draw(st.integers(0, 2))] = draw(st.sampled_from([0, 1, 1.5, -0.1, 0.0, 1e-400]))
    elif how == "not a number":
        levels[draw(st.integers(0, 2))] = draw(st.sampled_from(["0.1", None, True, [0.1]]))
    body["quantiles"] = levels if how != "any" else draw(any_json)
    return f"quantiles: {how}"


def _set_series_id(draw: Draw, body: Body) -> str:
    body["series_id"] = draw(_odd_series_ids)
    return "series_id set"


def _add_column(draw: Draw, body: Body) -> str:
    data = body["data"]
    data[draw(st.text(min_size=1, max_size=70))] = list(data["demand_mw"])
    return "column added"


def _change_type(draw: Draw, body: Body) -> str:
    col = draw(st.sampled_from(["time", "demand_mw"]))
    column = body["data"][col]
    body["data"][col] = draw(
        st.sampled_from(
            [
                json.dumps(column),  # the array as a string
                dict(enumerate(column)),
                [[x] for x in column],  # each element nested
                column[0],
                None,
            ]
        )
    )
    return f"{col} type changed"


def _nest(draw: Draw, body: Body) -> Body | list[Any]:
    where = draw(st.sampled_from(["body", "data", "column"]))
    if where == "body":
        return draw(st.sampled_from([[body], {"data": body}]))
    if where == "data":
        body["data"] = {"data": body["data"]}
    else:
        body["data"]["demand_mw"] = [body["data"]["demand_mw"]]
    return body


def _change_rows(draw: Draw, body: Body) -> str:
    data = body["data"]
    how = draw(st.sampled_from(["drop one", "repeat one", "swap two", "gap", "cut", "extend"]))
    n = len(data["time"])
    i = draw(st.integers(1, n - 2))
    if how == "drop one":
        del data[draw(st.sampled_from(["time", "demand_mw"]))][i]
    elif how == "repeat one":
        data["time"].insert(i, data["time"][i])
        data["demand_mw"].insert(i, data["demand_mw"][i])
    elif how == "swap two":
        data["time"][i], data["time"][i + 1] = data["time"][i + 1], data["time"][i]
    elif how == "gap":
        for col in ("time", "demand_mw"):
            del data[col][i]
    elif how == "cut":
        keep = draw(st.integers(0, MIN_ROWS - 1))
        for col in ("time", "demand_mw"):
            del data[col][keep:]
    else:
        for col in ("time", "demand_mw"):
            data[col] = data[col] * 30  # far past the row limit, and times repeat
    return f"rows: {how}"


_MUTATIONS = [
    _set_element,
    _change_rows,
    _set_field,
    _drop_field,
    _add_field,
    _add_column,
    _change_type,
    _set_quantiles,
    _set_series_id,
]


@st.composite
def mutated_bodies(draw: Draw) -> object:
    """A valid body with exactly one thing changed (see the module docstring)."""
    body = copy.deepcopy(draw(valid_bodies()))
    if draw(st.integers(0, len(_MUTATIONS))) == len(_MUTATIONS):
        event("mutation: nesting")
        return _nest(draw, body)
    what = draw(st.sampled_from(_MUTATIONS))(draw, body)
    event(f"mutation: {what}")
    return body


@st.composite
def _mixed(draw: Draw) -> object:
    # Mostly mutations: one in ten bodies unchanged, one in ten arbitrary JSON.
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(valid_bodies())
    if kind == 1:
        return draw(any_json)
    return draw(mutated_bodies())


bodies = _mixed()
