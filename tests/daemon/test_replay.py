"""The replay source: rate, endless continuation with shifted timestamps, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cache_daemon.config import DEFAULT_REPLAY_PATH
from cache_daemon.decode import Decoder
from cache_daemon.replay import ReplaySource

STEP = 1800 * 10**9


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def make(rate: float = 10.0) -> tuple[ReplaySource, FakeClock]:
    clock = FakeClock()
    src = ReplaySource(DEFAULT_REPLAY_PATH, ["demand_mw"], rate, clock=clock, sleep=clock.sleep)
    return src, clock


def test_history_is_first_half_and_stream_continues_after_it() -> None:
    src, clock = make()
    history = src.history()
    assert history.num_rows == 2016
    last = history.column("time")[-1].value
    src.start(None, resume_after_ns=last)
    clock.now = 0.35
    records = src.poll(0.0)
    assert len(records) == 3
    first = Decoder(["demand_mw"]).decode(records[0].value)
    assert first.time_ns == last + STEP


def test_rate_is_respected_and_poll_waits_for_the_next_event() -> None:
    src, clock = make(rate=4.0)
    src.start(None, resume_after_ns=None)
    assert src.poll(0.1) == []
    assert clock.now == 0.1
    assert len(src.poll(1.0)) == 1
    assert abs(clock.now - 0.25) < 1e-9
    clock.now = 2.25
    assert len(src.poll(0.0)) == 8


def test_sample_runs_out_then_continues_shifted_unique_and_regular() -> None:
    src, clock = make(rate=1000.0)
    src.start(None, resume_after_ns=None)
    clock.now = 10.0  # 10,000 events: the 4,032-row sample more than twice
    dec = Decoder(["demand_mw"])
    events = []
    while len(events) < 10_000:
        events += [dec.decode(r.value) for r in src.poll(0.0)]
    times = np.array([e.time_ns for e in events])
    assert (np.diff(times) == STEP).all()
    assert events[4032].values == events[0].values
    assert events[4032].time_ns == events[0].time_ns + 4032 * STEP


def test_resume_after_time_in_a_later_cycle() -> None:
    src, clock = make(rate=1000.0)
    origin = int(src.history().column("time")[0].value)
    resume_at = origin + (4032 + 10) * STEP
    src.start(None, resume_after_ns=resume_at)
    clock.now = 0.01
    event = Decoder(["demand_mw"]).decode(src.poll(0.0)[0].value)
    assert event.time_ns == resume_at + STEP
    assert event.values == (src.history().column("demand_mw")[11].as_py(),)


def test_a_file_of_several_series_replays_each_in_turn_keyed_by_its_id(tmp_path) -> None:
    months = pd.date_range("2000-01-01", periods=6, freq="MS", tz="UTC")
    frame = pd.concat(
        pd.DataFrame({"time": months, "y": np.arange(6.0) + base, "series_id": name})
        for name, base in (("b", 100.0), ("a", 0.0))
    )
    path = tmp_path / "two.parquet"
    frame.to_parquet(path)
    clock = FakeClock()
    src = ReplaySource(path, ["y"], 10.0, clock=clock, sleep=clock.sleep)
    history = src.history()
    assert history.num_rows == 6 and sorted(set(history.column("series_id").to_pylist())) == [
        "a",
        "b",
    ]
    src.start(None, resume_after_ns=int(months[2].value))
    clock.now = 1.0
    records = src.poll(0.0)
    dec = Decoder(["y"])
    seen = [(r.key.decode(), dec.decode(r.value)) for r in records[:8]]
    assert [key for key, _ in seen] == ["a", "b"] * 4
    got = {
        (key, pd.Timestamp(e.time_ns, tz="UTC").strftime("%Y-%m"), e.values[0]) for key, e in seen
    }
    # after 2000-03: April to June, then the calendar goes on (July replays the first row)
    assert ("a", "2000-04", 3.0) in got and ("b", "2000-06", 105.0) in got
    assert ("a", "2000-07", 0.0) in got and ("b", "2000-07", 100.0) in got


def test_a_yearly_file_of_three_centuries_replays_up_to_a_forecast_before_the_last_ns_time(
    tmp_path, caplog
) -> None:
    years = pd.date_range("1700-01-01", periods=309, freq="YS-JAN", tz="UTC")  # to 2008
    path = tmp_path / "years.parquet"
    pd.DataFrame({"time": years, "y": np.arange(309.0)}).to_parquet(path)
    clock = FakeClock()
    src = ReplaySource(path, ["y"], 100.0, clock=clock, sleep=clock.sleep)
    src.start(None, resume_after_ns=int(years[-1].as_unit("ns").value))
    clock.now = 10.0  # 1,000 events due, but nanoseconds end in 2262: 100 years' room before
    records = src.poll(0.0)
    times = [Decoder(["y"]).decode(r.value).time_ns for r in records]
    assert len(times) == 2162 - 2008 and np.all(np.diff(times) > 0)
    assert pd.Timestamp(times[0], tz="UTC").year == 2009
    assert pd.Timestamp(times[-1], tz="UTC").year == 2162
    clock.now = 20.0
    assert src.poll(0.5) == []  # the stream has ended, without an error
    assert clock.now == 20.5  # and the poll waited its timeout instead of returning at once
    assert "last nanosecond time" in caplog.text
