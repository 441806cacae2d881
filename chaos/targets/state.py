"""The stack state file: what `stack up` started, so that `status` and `down` can find it.

It lives in ``$CHAOS_HOME`` (default ``~/.local/state/chaos``), one stack at a time, and is
written atomically so that a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaos.core.target import RUNTIMES, Target

from chaos.core import atomic, validate as v
from chaos.core.errors import ConfigError, StateDamaged


def _damaged(path: Path, why: str) -> StateDamaged:
    return StateDamaged(
        f"the stack state file {path} is damaged: {why}. It cannot say which stack is up. "
        "`chaos stack down` sets it aside and stops what a stack started from this CHAOS_HOME "
        "left running; then `chaos stack up` starts a fresh one")


def home() -> Path:
    return Path(os.environ.get("CHAOS_HOME") or Path.home() / ".local" / "state" / "chaos")


def write_atomic(path: Path, text: str, mode: int = atomic.PRIVATE) -> None:
    """Atomically (chaos.core.atomic). The default is PRIVATE (0600): the state files here
    (stack.json, the ledger, heartbeats, runtime configs) are this user's runtime state;
    a file written for others to read passes ``mode=atomic.ARTIFACT`` (0644)."""
    atomic.write(path, text, mode)


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
        stack's or an attached target's), None if it has none. The file is untrusted:
        anything but what `save` writes is a StateDamaged error that says what and what to do."""
        path = cls.path()
        if stack_id is not None and stack_id.startswith("target-"):
            path = cls.target_path(stack_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:   # a directory, no permission, binary
            raise _damaged(path, e.strerror if isinstance(e, OSError) and e.strerror else str(e)) from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise _damaged(path, f"not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
        except (ValueError, RecursionError) as e:
            raise _damaged(path, f"not readable JSON ({str(e)[:100] or 'too deeply nested'})") from None
        try:
            state = cls._from_doc(doc)
        except ConfigError as e:
            raise _damaged(path, str(e)) from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:   # the topology's own parser
            raise _damaged(path, f"its topology does not parse ({type(e).__name__}: {str(e)[:100]})") from None
        return state if stack_id is None or state.stack_id == stack_id else None

    @classmethod
    def _from_doc(cls, doc) -> StackState:
        if not isinstance(doc, dict):
            raise ConfigError(f"it holds a JSON {type(doc).__name__}, not an object")
        for key in ("stack_id", "runtime", "profile", "started_at", "topology"):
            if key not in doc:
                raise ConfigError(f"field {key} is missing")
        v.name("stack_id", doc["stack_id"])
        v.choice("runtime", doc["runtime"], RUNTIMES)
        v.text("profile", doc["profile"], one_line=True, max_len=64)
        v.text("started_at", doc["started_at"], one_line=True, max_len=64)
        v.mapping("topology", doc["topology"])
        rs = v.mapping("runtime_state", doc.get("runtime_state", {}))
        for i, p in enumerate(v.items("runtime_state.procs", rs.get("procs", []), dict, "")):
            v.text(f"runtime_state.procs[{i}].service", p.get("service"), one_line=True, max_len=200)
            v.integer(f"runtime_state.procs[{i}].pid", p.get("pid"), lo=1)
            v.integer(f"runtime_state.procs[{i}].start_ticks", p.get("start_ticks"), lo=0)
            v.text(f"runtime_state.procs[{i}].log", p.get("log"), max_len=4096)
        for name, argv in v.mapping("runtime_state.argv", rs.get("argv", {})).items():
            for a in v.items(f"runtime_state.argv.{name}", argv, str, ""):
                v.text(f"runtime_state.argv.{name}", a, max_len=4096)
        v.optional(v.text, "runtime_state.run_dir", rs.get("run_dir"), one_line=True, max_len=4096)
        topo = Target.from_dict(doc["topology"])
        if topo.runtime != doc["runtime"] or topo.profile != doc["profile"]:
            raise ConfigError(f"its topology is of a {topo.runtime} {topo.profile} stack, not "
                              f"{doc['runtime']} {doc['profile']}")
        return cls(doc["stack_id"], doc["runtime"], doc["profile"], doc["started_at"], topo, rs)

    @classmethod
    def set_aside(cls) -> Path | None:
        """Move a damaged state file (or whatever is in its place) out of the way, kept for
        a look: stack.json.damaged-<time>."""
        path = cls.path()
        if not (path.exists() or path.is_symlink()):
            return None
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, aside)
        return aside

    @classmethod
    def clear(cls) -> None:
        cls.path().unlink(missing_ok=True)
