"""Examples that broke, kept so that the next search tries them first.

One JSON file per catalogue (``<dir>/<key>.json``; the key hashes the target's name, the
catalogue and the objectives), written atomically: a list of schedules with how often each
reproduced and when. A stored schedule that no longer plans against the target (the
catalogue or the stack changed) is skipped, not an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from chaos.core.slo import Objective
from chaos.explore.schedule import Schedule
from chaos.explore.spaces import Space

MAX_KEPT = 20


def store_key(target_name: str, spaces: Sequence[Space], steady_state: Sequence[Objective]) -> str:
    text = json.dumps({"target": target_name, "spaces": [repr(s) for s in spaces],
                       "slos": [o.describe() + o.sli for o in steady_state]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Store:
    def __init__(self, directory: str | Path, key: str, valid=None) -> None:
        self.path = Path(directory) / f"{key}.json"
        self.valid = valid or (lambda s: True)

    def _load(self) -> list[dict]:
        try:
            doc = json.loads(self.path.read_text())
            return list(doc.get("examples") or [])
        except (OSError, ValueError, AttributeError):
            return []

    def examples(self) -> list[Schedule]:
        out = []
        for e in self._load():
            try:
                s = Schedule.from_dict(e["schedule"])
            except (KeyError, TypeError, ValueError):
                continue
            if self.valid(s):
                out.append(s)
        return out

    def add(self, schedule: Schedule, rate: tuple[int, int]) -> None:
        entries = [e for e in self._load() if e.get("key") != schedule.key()]
        entries.insert(0, {"key": schedule.key(), "schedule": schedule.to_dict(),
                           "reproduced": list(rate),
                           "found_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"examples": entries[:MAX_KEPT]}, indent=2))
        os.replace(tmp, self.path)
