"""The ledger of active faults: on disk before anything is injected.

Whoever reverts (the runner, the watchdog after the runner died, `chaos stack reset`)
reads the actions from here, so a fault can always be undone by a process that never saw
it being made. Writes are atomic and serialised with a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from ..targets.state import home, write_atomic
from .base import Action


class Ledger:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or home() / "faults" / "active.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[dict]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = json.loads(self.path.read_text()) if self.path.exists() else []
            except json.JSONDecodeError:
                entries = []  # never true with atomic writes; a hand-edited file is not trusted
            yield entries
            write_atomic(self.path, json.dumps(entries, indent=2))

    def add(self, actions: list[Action], stack_id: str) -> None:
        with self._locked() as entries:
            have = {e["key"] for e in entries}
            for a in actions:
                if a.key not in have:
                    entries.append({"key": a.key, "stack_id": stack_id, "pid": os.getpid(),
                                    "action": a.to_dict()})

    def remove(self, actions: list[Action]) -> None:
        keys = {a.key for a in actions}
        with self._locked() as entries:
            entries[:] = [e for e in entries if e["key"] not in keys]

    def active(self, stack_id: str | None = None, pid: int | None = None) -> list[Action]:
        """Active actions, of one stack and (pid) of the process that injected them."""
        if not self.path.exists():
            return []
        with self._locked() as entries:
            return [Action.from_dict(e["action"]) for e in entries
                    if (stack_id is None or e["stack_id"] == stack_id)
                    and (pid is None or e.get("pid") == pid)]
