"""``bench.compare``: ours against the seed report's design and the usual alternatives.

The command is :mod:`bench.compare.run` (``python -m bench.compare``); the parts it measures
are the modules beside it: :mod:`~bench.compare.readpath`, :mod:`~bench.compare.memory`,
:mod:`~bench.compare.http` and :mod:`~bench.compare.freshness`, checked against their goals by
:mod:`~bench.compare.goals` and drawn by :mod:`~bench.compare.plots` and
:mod:`~bench.compare.report`.
"""

from bench.compare.run import FULL, PARTS, QUICK, Plan, main

__all__ = ["FULL", "PARTS", "QUICK", "Plan", "main"]
