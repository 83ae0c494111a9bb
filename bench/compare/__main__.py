"""``python -m bench.compare``: see :mod:`bench.compare.run`."""

from bench.compare.run import main

raise SystemExit(main())
