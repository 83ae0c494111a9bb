"""The configuration tables of ``docs/configuration.md`` and the README, rendered from the
settings classes so that they cannot drift.

``python -m scripts.config_docs`` rewrites the tables between their markers; ``--check``
only compares and exits 1 naming the stale file (the test suite runs the check).
Each table lists a class's own variables: a class derived from
:class:`contract.settings.SharedSettings` also reads the shared ones, which have a table
of their own.

The default column shows a field's default value, or ``required``. A default computed when
the program starts (``default_factory``: the core count, another variable) has no value
that holds on every machine: such a field states what it shows instead, as markdown, with
``json_schema_extra={"doc_default": "cores + 1"}``, and a table without one is an error.
Paths inside the repository are shown relative to it, so the tables are the same on every
machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from contract.defaults import REPO_ROOT
from contract.settings import EnvSettings, env_name

__all__ = ["DOC_DEFAULT", "TABLES", "main", "render_table", "rewrite", "shown_default"]

# (marker, dotted class path); the marker names the table in the documents.
TABLES: tuple[tuple[str, str], ...] = (
    ("shared", "contract.settings.SharedSettings"),
    ("web", "webapp.config.Settings"),
    ("gunicorn", "webapp.server_settings.GunicornSettings"),
    ("run-local", "scripts.run_local.RunSettings"),
    ("daemon", "cache_daemon.config.DaemonConfig"),
    ("s3", "objectstore.config.S3Config"),
    ("load", "locustfiles._config.LoadConfig"),
    ("load-gates", "locustfiles._verdicts.GateLimits"),
    ("stack", "scripts._stack_config.StackConfig"),
    ("baselines", "bench.baselines.config.BaselineConfig"),
)
DOC_DEFAULT = "doc_default"
DOCUMENTS = (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "configuration.md")


def _settings_class(path: str) -> type[EnvSettings]:
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, EnvSettings)):
        raise TypeError(f"{path} is not an EnvSettings class")
    return cls


def _default(value: object) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value) or "empty"
    text = str(value)
    if isinstance(value, Path) and value.is_relative_to(REPO_ROOT):
        text = str(value.relative_to(REPO_ROOT))
    return text or "empty"


def shown_default(info: FieldInfo) -> str | None:
    """The ``doc_default`` a field states (markdown), or None."""
    extra = info.json_schema_extra
    shown = extra.get(DOC_DEFAULT) if isinstance(extra, dict) else None
    return shown if isinstance(shown, str) else None


def _default_cell(cls: type[EnvSettings], name: str, info: FieldInfo) -> str:
    shown = shown_default(info)
    if shown is not None:
        return shown
    if info.default_factory is not None:
        raise TypeError(
            f"{cls.__name__}.{name}: a computed default needs "
            f'json_schema_extra={{"{DOC_DEFAULT}": ...}} to be shown'
        )
    return f"`{_default(info.default)}`"


def render_table(cls: type[EnvSettings]) -> str:
    """A markdown table of ``cls``'s own variables: name, default, meaning."""
    inherited = {name for base in cls.__mro__[1:] for name in getattr(base, "model_fields", {})}
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in cls.model_fields.items():
        if name in inherited or info.exclude:
            continue
        meaning = (info.description or "").replace("|", "\\|")
        default = _default_cell(cls, name, info).replace("|", "\\|")
        lines.append(f"| `{env_name(info, name)}` | {default} | {meaning} |")
    return "\n".join(lines)


def _replace(text: str, marker: str, table: str) -> str:
    begin, end = f"<!-- config:{marker} -->", f"<!-- /config:{marker} -->"
    head, found, rest = text.partition(begin)
    if not found:
        return text
    _, found_end, tail = rest.partition(end)
    if not found_end:
        raise ValueError(f"{begin} has no {end}")
    return f"{head}{begin}\n{table}\n{end}{tail}"


def rewrite(text: str) -> str:
    """``text`` with every marked table rendered afresh."""
    for marker, path in TABLES:
        text = _replace(text, marker, render_table(_settings_class(path)))
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for document in DOCUMENTS:
        old = document.read_text()
        new = rewrite(old)
        if new != old:
            stale.append(document)
            if not args.check:
                document.write_text(new)
    if args.check and stale:
        names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in stale)
        print(f"stale configuration tables in {names}: run python -m scripts.config_docs")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
