"""Labelled local processes: start them, recognise them, stop them.

Every process of a local stack is labelled twice: ``CHAOS_STACK``, ``CHAOS_SERVICE`` and
``CHAOS_DC`` in its environment, and its working directory ``<run dir>/<service>/`` beside a
``.stack-id`` marker. The second label is needed because some programs (redis-server's
process title) overwrite their environment in memory; the kernel keeps the cwd. A process
is only ever signalled after checking a label and its start time (so a recycled pid is
never hit): the framework touches nothing that is not part of the target stack.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LABEL = "CHAOS_STACK"
MARKER = ".stack-id"


@dataclass(frozen=True)
class Proc:
    service: str
    pid: int
    start_ticks: int      # field 22 of /proc/<pid>/stat: identifies this incarnation
    log: str

    def to_dict(self) -> dict:
        return {"service": self.service, "pid": self.pid, "start_ticks": self.start_ticks,
                "log": self.log}

    @classmethod
    def from_dict(cls, d: dict) -> Proc:
        return cls(d["service"], d["pid"], d["start_ticks"], d["log"])


def start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces or parentheses: split after the last ")"
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is gone for every purpose here
        return None
    return int(fields[19])


def labels(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, _, value = item.partition(b"=")
        if key.startswith(b"CHAOS_"):
            out[key.decode()] = value.decode(errors="replace")
    return out


def stack_of(pid: int) -> str | None:
    """The stack a process belongs to, from its environment or else its working directory."""
    label = labels(pid).get(LABEL)
    if label:
        return label
    try:
        marker = Path(os.readlink(f"/proc/{pid}/cwd")).parent / MARKER
        return marker.read_text().strip() or None
    except OSError:
        return None


def is_ours(proc: Proc, stack_id: str) -> bool:
    return start_ticks(proc.pid) == proc.start_ticks and stack_of(proc.pid) == stack_id


def signal_ours(proc: Proc, stack_id: str, sig: int) -> bool:
    """Send sig only to a labelled process of the stack that is still the one recorded (not
    gone, not a recycled pid). True if it was sent."""
    if not is_ours(proc, stack_id):
        return False
    try:
        os.kill(proc.pid, sig)
        return True
    except ProcessLookupError:
        return False


def spawn(service: str, dc: str | None, argv: list[str], stack_id: str, log_path: Path,
          run_dir: Path) -> Proc:
    """Start argv in ``run_dir/service/``, labelled as part of stack_id."""
    env = {**os.environ, LABEL: stack_id, "CHAOS_SERVICE": service, "CHAOS_DC": dc or "",
           "PYTHONUNBUFFERED": "1",
           # toxiproxy-server logs at trace by default: megabytes a minute under a storm
           "LOG_LEVEL": os.environ.get("CHAOS_TOXIPROXY_LOG_LEVEL", "warn")}
    (run_dir / MARKER).write_text(stack_id)
    cwd = run_dir / service
    cwd.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             cwd=cwd, env=env, start_new_session=True)
    _raise_fd_limit(p.pid)
    ticks = None
    for _ in range(50):  # /proc/<pid>/stat appears at once; be patient on a busy machine
        ticks = start_ticks(p.pid)
        if ticks is not None:
            break
        time.sleep(0.01)
    return Proc(service, p.pid, ticks or 0, str(log_path))


FD_LIMIT = 65536
KILL_WAIT_S = 5.0


def _raise_fd_limit(pid: int) -> None:
    """Let a service hold many sockets (toxiproxy needs two per proxied listener).

    Raising the hard limit needs root; without it the soft limit goes up to the hard one.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in ((FD_LIMIT, FD_LIMIT), (min(FD_LIMIT, hard), hard)):
        try:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
            return
        except (OSError, ValueError):
            continue


def find_labelled(stack_id: str) -> list[int]:
    """Pids of every live process labelled with this stack (including ones started later)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and stack_of(int(entry.name)) == stack_id:
            if start_ticks(int(entry.name)) is not None:
                pids.append(int(entry.name))
    return pids


def find_under(root: Path) -> dict[int, str]:
    """pid -> stack id of every labelled process whose run directory lies under root."""
    out = {}
    root = root.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stack = stack_of(pid)
        if not stack or start_ticks(pid) is None:
            continue
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
        if cwd.is_relative_to(root):
            out[pid] = stack
    return out


def terminate(pids: list[int], grace_s: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL after grace_s; return the pids that were signalled.

    SIGCONT first: a frozen (SIGSTOPped) process cannot act on SIGTERM.
    """
    signalled = []
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
        else:
            signalled.append(pid)
    deadline = time.monotonic() + grace_s
    alive = list(signalled)
    while alive and time.monotonic() < deadline:
        _reap(alive)
        alive = [p for p in alive if start_ticks(p) is not None]
        if alive:
            time.sleep(0.05)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + KILL_WAIT_S  # a busy machine takes a while to reap
    while alive and time.monotonic() < deadline:
        _reap(alive)
        alive = [p for p in alive if start_ticks(p) is not None]
        if alive:
            time.sleep(0.05)
    return signalled


def _reap(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
