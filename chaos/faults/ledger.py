"""The ledger of active faults: on disk before anything is injected.

Whoever reverts (the runner, the watchdog after the runner died, `chaos stack reset`)
reads the actions from here, so a fault can always be undone by a process that never saw
it being made. Writes are atomic and serialised with a file lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from chaos.targets.state import home, write_atomic
from chaos.faults.base import Action


class Ledger:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or home() / "faults" / "active.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[dict]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._read()
            yield entries
            write_atomic(self.path, json.dumps(entries, indent=2))

    def _read(self) -> list[dict]:
        """The well-formed entries. The file is untrusted (atomic writes never leave half of
        it, but a hand edit or a disk error can): a damaged one is kept beside it as
        active.json.damaged-<time> for a look, and what can be read of it is used."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError, RecursionError):
            doc = None
        entries = [e for e in doc if _well_formed(e)] if isinstance(doc, list) else []
        if not isinstance(doc, list) or len(entries) != len(doc):
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
            with contextlib.suppress(OSError):
                shutil.copyfile(self.path, aside) if self.path.is_file() else os.replace(self.path, aside)
        return entries

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


_ACTION_FIELDS = {f.name: f.type for f in dataclasses.fields(Action)}


def _well_formed(e) -> bool:
    """An entry the engine can revert from: a key, a stack, and a whole Action."""
    if not isinstance(e, dict) or not isinstance(e.get("key"), str) \
            or not isinstance(e.get("stack_id"), str) or not isinstance(e.get("action"), dict):
        return False
    a = e["action"]
    if set(a) != set(_ACTION_FIELDS) or not isinstance(a["params"], dict):
        return False
    return all(isinstance(a[k], str) for k in ("fault", "fault_id", "mechanism", "target")) \
        and (a["dc"] is None or isinstance(a["dc"], str))
