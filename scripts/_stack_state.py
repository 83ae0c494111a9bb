"""The stack's record of what it started: ``<stack dir>/state.json``, rewritten atomically.

Fields: ``ports`` (the ports the running servers use), and per server (``kafka``, ``s3``) its
``pid`` plus, while it is the run that dumps a class archive, ``cds_part`` and ``cds_archive``
(see ``scripts._cds``). Another process (``down`` from the command line) reads it to find
exactly what to stop.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.errors import StackError

__all__ = ["ServerRecord", "StackState"]


@dataclass
class ServerRecord:
    """One started server."""

    pid: int
    cds_part: str | None = None
    cds_archive: str | None = None


@dataclass
class StackState:
    """Everything ``state.json`` holds."""

    servers: dict[str, ServerRecord] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def pid(self, name: str) -> int | None:
        record = self.servers.get(name)
        return None if record is None else record.pid

    @classmethod
    def read(cls, path: Path) -> StackState:
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
            servers = {
                name: ServerRecord(**record) for name, record in (raw.get("servers") or {}).items()
            }
            for name in ("kafka", "s3"):  # the first format kept only "<name>_pid"
                if isinstance(raw.get(f"{name}_pid"), int):
                    servers[name] = ServerRecord(pid=raw[f"{name}_pid"])
            return cls(servers=servers, ports=dict(raw.get("ports") or {}))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError) as exc:
            raise StackError(f"{path} is unreadable ({exc}); remove it") from None

    def write(self, path: Path) -> None:
        raw = {
            "servers": {name: vars(record) for name, record in self.servers.items()},
            "ports": self.ports,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(raw, indent=2) + "\n")
        os.replace(tmp, path)
