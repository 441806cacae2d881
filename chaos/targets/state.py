"""The stack state file: what `stack up` started, so that `status` and `down` can find it.

It lives in ``$CHAOS_HOME`` (default ``~/.local/state/chaos``), one stack at a time, and is
written atomically so that a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .model import Target


def home() -> Path:
    return Path(os.environ.get("CHAOS_HOME") or Path.home() / ".local" / "state" / "chaos")


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class StackState:
    stack_id: str
    runtime: str
    profile: str
    started_at: str
    topology: Target
    runtime_state: dict = field(default_factory=dict)

    @staticmethod
    def path() -> Path:
        return home() / "stack.json"

    @staticmethod
    def target_path(stack_id: str) -> Path:
        """Where an attached target's state lives (chaos.targets.external)."""
        return home() / "targets" / f"{stack_id}.json"

    def save(self) -> None:
        doc = {"stack_id": self.stack_id, "runtime": self.runtime, "profile": self.profile,
               "started_at": self.started_at, "topology": self.topology.to_dict(),
               "runtime_state": self.runtime_state}
        path = self.target_path(self.stack_id) if self.runtime_state.get("external") else self.path()
        write_atomic(path, json.dumps(doc, indent=2))

    @classmethod
    def load(cls, stack_id: str | None = None) -> StackState | None:
        """The reference stack's state; with ``stack_id``, that stack's (the reference
        stack's or an attached target's), None if it has none."""
        path = cls.path()
        if stack_id is not None and stack_id.startswith("target-"):
            path = cls.target_path(stack_id)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        state = cls(doc["stack_id"], doc["runtime"], doc["profile"], doc["started_at"],
                    Target.from_dict(doc["topology"]), doc.get("runtime_state", {}))
        return state if stack_id is None or state.stack_id == stack_id else None

    @classmethod
    def clear(cls) -> None:
        cls.path().unlink(missing_ok=True)
