"""Mechanism ``cpu``: a service held to a share of a CPU (kind_cpu.py).

Action params: ``service``, ``runtime``, ``share``, ``period_us`` and, for docker,
``cpu_quota``.

Which one is the runtime's to say (``caps_cpu_by_quota``); the quota is set by the runtime.

- docker: ``container.update(cpu_period, cpu_quota)`` on the container labelled
  ``chaos.stack=space`` + ``chaos.service=<name>``. Revert sets the quota to -1 (no
  limit; 0 would mean "unchanged" to docker's update). Inject refuses a container that
  already has another limit, so revert never erases one it did not set.
- local: a detached helper (``python -m chaos.faults.executors.dutycycle``) SIGSTOPs and SIGCONTs
  the service's process. The helper is labelled like the stack's processes
  (``CHAOS_STACK``, ``CHAOS_SERVICE=chaos-dutycycle``, ``CHAOS_FAULT=<fault id>/<service>``),
  so any process, also one that never saw the injection, finds it: the revert asks it to
  stop (a stop file, then SIGTERM, then SIGKILL), and always sends SIGCONT to the service
  itself. The helper exits by itself when the runner that started it dies.

Sweep (`chaos stack reset`, without the ledger): first every duty-cycle helper of the stack
stops, found by its command line (``python -m chaos.faults.executors.dutycycle --stack-id ID``, with
or without labels): it would stop processes again behind the reset's back; the stopped
processes run again in exec_lifecycle's sweep. Then, for docker, every CPU quota on the
stack's containers is lifted (they run without one).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from chaos.core.errors import ConfigError, CpuFaultError  # noqa: F401 - CpuFaultError re-exported
from chaos.targets import procs
from chaos.targets.runtimes import runtime_of
from chaos.targets.state import StackState, home
from chaos.faults.base import Action, Step, SweepStage, Swept

HELPER_SERVICE = "chaos-dutycycle"
HELPER_MAX_S = 4 * 3600         # the helper's own bound; a revert normally ends it long before
READY_TIMEOUT_S = 6.0           # Python's start-up on a busy 2-core machine
STOP_GRACE_S = 2.0
DUTYCYCLE_MODULE = "chaos.faults.executors.dutycycle"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")

_children: dict[int, subprocess.Popen] = {}   # helpers this process started, to reap them


def _tag(a: Action) -> str:
    return f"{a.fault_id}/{a.params['service']}"


def _files(stack_id: str, a: Action) -> tuple[Path, Path, Path]:
    """(stop file, ready file, log) of an action's helper."""
    name = _SAFE.sub("_", f"{stack_id}.{a.fault_id}.{a.params['service']}")
    name += "-" + hashlib.sha1(_tag(a).encode()).hexdigest()[:6]
    d = home() / "faults" / "dutycycle"
    return d / f"{name}.stop", d / f"{name}.ready", d / f"{name}.log"


def helpers(stack_id: str, service: str | None = None, tag: str | None = None) -> list[procs.Proc]:
    """Live duty-cycle helpers of a stack (of one service's, or of one action)."""
    out = []
    for pid in procs.find_labelled(stack_id):
        lab = procs.labels(pid)
        if lab.get("CHAOS_SERVICE") != HELPER_SERVICE:
            continue
        fault = lab.get("CHAOS_FAULT", "")
        if tag is not None and fault != tag:
            continue
        if service is not None and fault.rsplit("/", 1)[-1] != service:
            continue
        ticks = procs.start_ticks(pid)
        if ticks is not None:
            out.append(procs.Proc(HELPER_SERVICE, pid, ticks, fault))
    return out


def _target_of(helper: procs.Proc) -> procs.Proc | None:
    """The process a helper works on, from its command line (--pid, --start-ticks)."""
    try:
        argv = open(f"/proc/{helper.pid}/cmdline", "rb").read().decode(errors="replace").split("\0")
        pid = int(argv[argv.index("--pid") + 1])
        ticks = int(argv[argv.index("--start-ticks") + 1])
    except (OSError, ValueError, IndexError):
        return None
    return procs.Proc("target", pid, ticks, "")


def stop_helpers(stack_id: str, grace_s: float = STOP_GRACE_S) -> list[int]:
    """End every duty-cycle helper of a stack and leave their targets running: the safety
    net for a reset that has no ledger to go by. Returns the helpers' pids."""
    found = helpers(stack_id)
    targets = [t for t in (_target_of(h) for h in found) if t is not None]
    for h in found:
        procs.signal_ours(h, stack_id, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    alive = found
    while alive and time.monotonic() < deadline:
        _reap()
        alive = [h for h in alive if procs.start_ticks(h.pid) == h.start_ticks]
        if alive:
            time.sleep(0.02)
    for h in alive:
        procs.signal_ours(h, stack_id, signal.SIGKILL)
    for t in targets:
        procs.signal_ours(t, stack_id, signal.SIGCONT)
    return [h.pid for h in found]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def dutycycle_helpers(stack_id: str) -> list[tuple[int, int]]:
    """(pid, start ticks) of the duty-cycle helpers working on this stack, found by their
    command line (also one started without labels)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if DUTYCYCLE_MODULE not in argv:
            continue
        sid = None
        for i, a in enumerate(argv):
            if a == "--stack-id" and i + 1 < len(argv):
                sid = argv[i + 1]
            elif a.startswith("--stack-id="):
                sid = a.split("=", 1)[1]
        ticks = procs.start_ticks(int(entry.name))
        if sid == stack_id and ticks is not None:
            out.append((int(entry.name), ticks))
    return out


class _gone_ok:
    """A process that ended meanwhile is fine: it was to stop anyway."""
    def __enter__(self):
        return self

    def __exit__(self, et, e, tb):
        return et is ProcessLookupError


def sweep_dutycycles(stack_id: str) -> Swept:
    """Stop every duty-cycle helper of the stack: SIGTERM (it resumes its target on the way
    out), SIGKILL after a grace. A pid is signalled only while it has the start time it
    was found with."""
    found = dutycycle_helpers(stack_id)
    for pid, ticks in found:
        if procs.start_ticks(pid) == ticks:
            with _gone_ok():
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    left = found
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap()
        left = [(p, t) for p, t in left if procs.start_ticks(p) == t]
    for pid, ticks in left:
        if procs.start_ticks(pid) == ticks:
            with _gone_ok():
                os.kill(pid, signal.SIGKILL)
    swept = Swept()
    if found:
        swept.did.append(f"stopped {len(found)} duty-cycle helper(s) (pid "
                         f"{', '.join(str(p) for p, _ in found)})")
    return swept


def service_procs(state: StackState, service: str) -> list[procs.Proc]:
    """The service's live process(es): as recorded at start, else found by label (a service
    restarted by another fault has a new pid)."""
    recorded = [procs.Proc.from_dict(d) for d in state.runtime_state.get("procs", [])
                if d.get("service") == service]
    out = [p for p in recorded if procs.is_ours(p, state.stack_id)]
    if out:
        return out
    for pid in procs.find_labelled(state.stack_id):
        if procs.labels(pid).get("CHAOS_SERVICE") == service:
            ticks = procs.start_ticks(pid)
            if ticks is not None:
                out.append(procs.Proc(service, pid, ticks, ""))
    return out


def _reap() -> None:
    for pid, popen in list(_children.items()):
        if popen.poll() is not None:
            del _children[pid]


def _tail(path: Path, n: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


class CpuExecutor:
    mechanism = "cpu"

    def __init__(self, state: StackState) -> None:
        self.state = state
        self.runtime = runtime_of(state)

    def sweep(self, stage: SweepStage, step: Step) -> None:
        if stage is SweepStage.HELPERS:
            step("stopping duty-cycle helpers", lambda: sweep_dutycycles(self.state.stack_id))
        elif stage is SweepStage.RUN and self.runtime.caps_cpu_by_quota:
            step("lifting CPU quotas", lambda: self.runtime.uncap_all_cpus(self.state))

    def inject(self, a: Action) -> None:
        if self.runtime.caps_cpu_by_quota:
            self._quota_inject(a)
        else:
            self._local_inject(a)

    def revert(self, a: Action) -> None:
        if self.runtime.caps_cpu_by_quota:
            self._quota_revert(a)
        else:
            self._local_revert(a)

    # -- local: the duty-cycle helper -----------------------------------------------------
    def _local_inject(self, a: Action) -> None:
        sid, service = self.state.stack_id, a.params["service"]
        if helpers(sid, tag=_tag(a)):
            return  # already running: idempotent
        others = helpers(sid, service=service)
        if others:
            raise ConfigError(f"cpu_starve: {service} is already being starved by another fault "
                              f"({', '.join(h.log for h in others)}); revert that one first")
        targets = service_procs(self.state, service)
        if not targets:
            raise CpuFaultError(f"cpu_starve: {service} has no running process in stack {sid}")
        target = targets[0]
        stop, ready, log = _files(sid, a)
        stop.parent.mkdir(parents=True, exist_ok=True)
        stop.unlink(missing_ok=True)
        ready.unlink(missing_ok=True)
        me = os.getpid()
        argv = [sys.executable, "-m", "chaos.faults.executors.dutycycle", "--pid", str(target.pid),
                "--start-ticks", str(target.start_ticks), "--share", repr(a.params["share"]),
                "--stack-id", sid, "--period-ms", str(a.params.get("period_us", 100_000) / 1000),
                "--stop-file", str(stop), "--ready-file", str(ready),
                "--parent-pid", str(me), "--parent-ticks", str(procs.start_ticks(me)),
                "--max-s", str(HELPER_MAX_S)]
        env = {**os.environ, procs.LABEL: sid, "CHAOS_SERVICE": HELPER_SERVICE, "CHAOS_DC": "",
               "CHAOS_FAULT": _tag(a), "PYTHONUNBUFFERED": "1"}
        run_dir = self.state.runtime_state.get("run_dir")
        cwd = Path(run_dir) / HELPER_SERVICE if run_dir and Path(run_dir).is_dir() else stop.parent
        cwd.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                     start_new_session=True)
        _children[popen.pid] = popen
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready.exists():
            if popen.poll() is not None:
                raise CpuFaultError(f"cpu_starve: the duty-cycle helper for {service} exited "
                                    f"({popen.returncode}): {_tail(log)}")
            if time.monotonic() > deadline:
                raise CpuFaultError(f"cpu_starve: the duty-cycle helper for {service} did not "
                                    f"start within {READY_TIMEOUT_S:g} s (log: {log})")
            time.sleep(0.02)

    def _local_revert(self, a: Action) -> None:
        sid, service = self.state.stack_id, a.params["service"]
        stop, ready, _ = _files(sid, a)
        stop.parent.mkdir(parents=True, exist_ok=True)
        stop.touch()
        try:
            found = helpers(sid, tag=_tag(a))
            for h in found:
                procs.signal_ours(h, sid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while found and time.monotonic() < deadline:
                _reap()
                found = [h for h in found if procs.start_ticks(h.pid) == h.start_ticks]
                if found:
                    time.sleep(0.02)
            for h in found:  # it did not stop in time: it cannot SIGCONT, we do below
                procs.signal_ours(h, sid, signal.SIGKILL)
            _reap()
        finally:
            for p in service_procs(self.state, service):
                procs.signal_ours(p, sid, signal.SIGCONT)
        stop.unlink(missing_ok=True)
        ready.unlink(missing_ok=True)

    # -- docker: the container's CFS quota (the runtime's) ------------------------------------
    def _container(self, service: str):
        """The service's container of this stack; one of another stack is never touched."""
        return self.runtime.cpu_container(self.state, service)

    def _quota_inject(self, a: Action) -> None:
        self.runtime.cap_cpu(self.state, a.params["service"], int(a.params["cpu_quota"]),
                             int(a.params.get("period_us", 100_000)))

    def _quota_revert(self, a: Action) -> None:
        self.runtime.uncap_cpu(self.state, a.params["service"])


def make(state: StackState) -> CpuExecutor:
    return CpuExecutor(state)
