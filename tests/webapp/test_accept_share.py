"""The workers' shared connection counts: slot ownership, the accept rule, sharing by fork."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.accept_share import EMPTY, ConnectionTable


@dataclass
class _Worker:
    """What the master knows of a worker: its pid once forked."""

    pid: object = "[booting]"


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def test_reserve_gives_live_workers_their_own_slots_and_reuses_those_of_dead_ones() -> None:
    table = ConnectionTable(3)
    first, second, third = _Worker(), _Worker(), _Worker()
    assert table.reserve(first) == 0
    first.pid = os.getpid()  # forked and alive
    assert table.reserve(second) == 1
    second.pid = _dead_pid()  # forked, exited and reaped
    table.join(1)
    table.count(1, 4)
    # The dead worker's slot is reserved again, and emptied: its last count takes no part.
    assert table.reserve(third) == 1
    assert table.counts() == [EMPTY, EMPTY, EMPTY]
    third.pid = os.getpid()
    assert table.reserve(_Worker()) == 2


def test_reserve_returns_none_when_every_slot_is_held_by_a_live_worker() -> None:
    table = ConnectionTable(2)
    for _ in range(2):
        worker = _Worker()
        assert table.reserve(worker) is not None
        worker.pid = os.getpid()
    assert table.reserve(_Worker()) is None


def test_a_table_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="slots must be at least 1"):
        ConnectionTable(0)


# A slot's state: None = never joined or left (EMPTY), else the connections it holds.
_states = st.lists(st.one_of(st.none(), st.integers(0, 50)), min_size=1, max_size=12)


@given(_states, st.data())
def test_holds_more_when_a_joined_worker_holds_fewer(states: list[int | None], data) -> None:
    table = ConnectionTable(len(states))
    for slot, held in enumerate(states):
        if held is None:
            table.join(slot)
            table.leave(slot)
        else:
            table.join(slot)
            table.count(slot, held)
    slot = data.draw(
        st.sampled_from([s for s, held in enumerate(states) if held is not None] or [None])
    )
    if slot is None:
        return
    mine = states[slot]
    assert mine is not None
    fewer = [
        held
        for other, held in enumerate(states)
        if other != slot and held is not None and held < mine
    ]
    assert table.holds_more(slot) is bool(fewer)
    assert table.others(slot) == tuple(
        EMPTY if held is None else held for other, held in enumerate(states) if other != slot
    )


def test_counts_written_in_a_forked_worker_are_read_in_the_master() -> None:
    table = ConnectionTable(2)
    table.join(0)
    pid = os.fork()
    if pid == 0:  # the worker: join slot 1 and hold three connections
        table.join(1)
        table.count(1, 3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert table.counts() == [0, 3]
    assert table.holds_more(1) and not table.holds_more(0)
