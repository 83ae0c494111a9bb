"""The contract between the cache daemon and the web workers, in one place.

Everything the two processes (and the probes, scripts and benchmarks around them) agree on
lives here and nowhere else:

- :mod:`contract.defaults`: the shared defaults (shm directory, sample data, age bound);
- :mod:`contract.metadata`: the metadata of each published generation (:class:`GenerationMeta`);
- :mod:`contract.status`: the daemon status file (:class:`DaemonStatus`);
- :mod:`contract.series`: how a record names its series, and which segment stores it;
- :mod:`contract.model_files`: how model artifacts are named, written and read in the shm
  directory;
- :mod:`contract.settings`: the one environment parser and the settings both sides share;
- :mod:`contract.logs`: the one JSON log format.

The package sits at the bottom of the import graph beside :mod:`shm`. Importing it (or
:mod:`contract.status`, which the exec health probe uses) costs the standard library only;
the settings module imports pydantic and is imported by entry points.
"""
