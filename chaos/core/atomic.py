"""The one way the framework writes a file whole: staged beside its target, flushed, moved
into place, so that a crash never leaves half a file.

Two modes, chosen by who reads the file:

- ``ARTIFACT`` (0644): written for others to read: a run's journal.json, readiness.json
  and readiness.html, report.html, junit.xml (CI runners, web servers, colleagues).
- ``PRIVATE`` (0600): the framework's own runtime state in ``$CHAOS_HOME`` (stack.json, the
  fault ledger, watchdog heartbeats, runtime configs): read only by this user's processes.

The mode is set explicitly (``mkstemp`` creates 0600 whatever the umask), so an artifact
is readable however the writer's umask is set.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ARTIFACT = 0o644
PRIVATE = 0o600


def stage(path: Path, data: bytes | str, mode: int) -> str:
    """``data`` in a hidden file beside ``path``, flushed to disk, with ``mode``; its name.

    The caller moves it into place (``os.replace``) or removes it; ``write`` does both."""
    if isinstance(data, str):
        data = data.encode("utf-8")   # before anything is created: text that cannot be written
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write(path: str | os.PathLike, data: bytes | str, mode: int) -> Path:
    """Write ``data`` to ``path`` atomically with ``mode`` (``ARTIFACT`` or ``PRIVATE``),
    creating its folder; the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
