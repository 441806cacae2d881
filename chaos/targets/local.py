"""The embedded local runtime: every service a labelled process on loopback.

One address range per data center (127.0.1.x, 127.0.2.x, 127.0.3.x), toxiproxy-server
and redis-server as local processes, no docker. Logs and configs live under
``$CHAOS_HOME/local/``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from chaos.adapters.space import launch
from chaos.core.errors import FaultError, MissingTool, PortInUse, StackError
from chaos.targets import health, procs
from chaos.targets.base import FaultSide, Progress, ServiceStatus, Swept
from chaos.core.target import Service, Target
from chaos.targets.state import StackState, home, write_atomic

# Start order: state first, then the links, then the tiers from the back.
_ORDER = ("redis", "sentinel", "toxiproxy", "origin", "edge", "gateway")
RESTART_TIMEOUT_S = 8.0   # within the fault engine's 10 s revert deadline
STOP_GRACE_S = 3.0          # a service's stop: SIGTERM -> SIGKILL, like docker stop
FREEZE_WAIT_S = 3.0         # from SIGSTOP to the process really stopped


def find_tool(name: str, env_var: str, extra: tuple[str, ...] = ()) -> str | None:
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    for path in extra:
        if os.access(path, os.X_OK):
            return path
    return None


def redis_server() -> str | None:
    return find_tool("redis-server", "CHAOS_REDIS_SERVER", ("/usr/bin/redis-server", "/usr/sbin/redis-server"))


def toxiproxy_server() -> str | None:
    return find_tool("toxiproxy-server", "CHAOS_TOXIPROXY_SERVER",
                     (str(Path.home() / "go" / "bin" / "toxiproxy-server"),))


def _port_free(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            raise
    return True


class LocalRuntime(FaultSide):
    """Services as labelled processes on loopback.

    For faults: a service is its labelled processes (found by label, checked with
    ``procs.is_ours`` just before each signal); they share the host's network namespace;
    a CPU is capped by the framework's own duty cycle (no quota); there is no per-DC
    network to disconnect."""
    name = "local"
    shares_host_netns = True        # packet_drop rules also name the service's own address
    disconnects_networks = False
    caps_cpu_by_quota = False
    restarts_missing = True         # a reset starts what is still down, as `stack up` did
    reset_healthy_wait_s = 60.0     # how long `chaos stack reset` waits for every service
    resume_words = "resuming stopped processes"

    def __init__(self, stack_id: str = "") -> None:
        self.stack_id = stack_id
        self.dir = home() / "local"

    # -- before anything starts -------------------------------------------------------
    def preflight(self, topo: Target) -> None:
        missing = []
        if redis_server() is None:
            missing.append("redis-server (Debian package redis-server; or set CHAOS_REDIS_SERVER)")
        if toxiproxy_server() is None:
            missing.append("toxiproxy-server (go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0, "
                           "installed as toxiproxy-server on PATH; or set CHAOS_TOXIPROXY_SERVER)")
        if missing:
            raise MissingTool("The local runtime needs " + " and ".join(missing)
                              + ". fixtures/setup.sh installs both.")
        taken = [f"{s.name} at {s.bind}" for s in topo.services.values() if not _port_free(s.bind)]
        taken += [f"link {lk.name} at {lk.listen}" for lk in topo.links.values() if not _port_free(lk.listen)]
        if taken:
            raise PortInUse(f"{len(taken)} address(es) the stack needs are already in use: "
                            + "; ".join(taken[:4]) + ("; ..." if len(taken) > 4 else "")
                            + f". Stop whatever holds them (`chaos stack down` if it is an old stack), "
                            f"or move the stack with --base-port (now {topo.base_port}).")

    # -- up ---------------------------------------------------------------------------
    def _argv(self, svc: Service, topo: Target, topo_file: Path, run_dir: Path) -> list[str]:
        if svc.kind in ("redis", "sentinel"):
            work = run_dir / svc.name  # also the process's cwd: see procs.spawn
            work.mkdir(parents=True, exist_ok=True)
            conf = work / f"{svc.name}.conf"
            conf.write_text(launch.redis_conf(topo, svc.name, str(work)))
            argv = [redis_server(), str(conf)]
            return argv + ["--sentinel"] if svc.kind == "sentinel" else argv
        if svc.kind == "toxiproxy":
            conf = run_dir / "toxiproxy.json"
            write_atomic(conf, launch.toxiproxy_config(topo))
            host, port = svc.bind.rsplit(":", 1)
            return [toxiproxy_server(), "-host", host, "-port", port, "-config", str(conf)]
        return launch.service_argv(svc, topo_file)

    def up(self, topo: Target, timeout_s: float, progress: Progress) -> dict:
        run_dir = self.dir / self.stack_id
        run_dir.mkdir(parents=True, exist_ok=True)
        topo_file = run_dir / "topology.json"
        write_atomic(topo_file, launch.topology_json(topo))
        started: list[procs.Proc] = []
        # argv per service: what `restart` (a fault's revert, `stack reset`) runs again
        state = {"run_dir": str(run_dir), "procs": [], "argv": {}}
        deadline = time.monotonic() + timeout_s
        try:
            for kind in _ORDER:
                batch = [s for s in topo.services.values() if s.kind == kind]
                for svc in batch:
                    argv = self._argv(svc, topo, topo_file, run_dir)
                    p = procs.spawn(svc.name, svc.dc, argv, self.stack_id,
                                    run_dir / "logs" / f"{svc.name}.log", run_dir)
                    state["argv"][svc.name] = argv
                    started.append(p)
                    state["procs"] = [q.to_dict() for q in started]
                if batch:
                    progress(f"started {', '.join(s.name for s in batch)}")
                # later tiers connect to earlier ones at start: wait tier by tier
                self._wait_healthy(batch, {p.service: p for p in started}, deadline)
            return state
        except BaseException as e:
            procs.terminate([p.pid for p in started if procs.is_ours(p, self.stack_id)])
            procs.terminate(procs.find_labelled(self.stack_id))
            if isinstance(e, StackError):
                raise
            if isinstance(e, KeyboardInterrupt):
                raise
            raise StackError(f"starting the local stack failed: {e}") from e

    def _wait_healthy(self, services: list[Service], by_name: dict[str, procs.Proc],
                      deadline: float) -> None:
        pending = {s.name: s for s in services}
        last: dict[str, str] = {}
        while pending:
            for name, svc in list(pending.items()):
                p = by_name[name]
                if procs.start_ticks(p.pid) is None:
                    raise StackError(f"{name} exited during start-up. Last lines of {p.log}:\n"
                                     + _tail(p.log))
                ok, detail = health.check(svc, timeout_s=0.5)
                if ok:
                    del pending[name]
                else:
                    last[name] = detail
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(f"{n} ({last.get(n, '')})" for n in pending)
                first = by_name[next(iter(pending))]
                raise StackError(f"not healthy before the start-up deadline: {names}. "
                                 f"Last lines of {first.log}:\n{_tail(first.log)}")
            time.sleep(0.1)

    # -- restart (a fault's revert, `stack reset`) ---------------------------------------
    def restart(self, state: StackState, service: str, timeout_s: float = RESTART_TIMEOUT_S,
                wait: bool = True) -> procs.Proc:
        """Bring one service back as `up` started it (argv, labels, cwd, log) and wait
        until it is healthy (wait=False: only start it). Idempotent: a live labelled
        process of it is kept, not doubled.

        The new pid is saved in the stack state file, so that status, down and the orphan
        sweep keep finding it.
        """
        svc = state.topology.services.get(service)
        if svc is None:
            raise StackError(f"{service} is not a service of stack {state.stack_id}")
        argv = state.runtime_state.get("argv", {}).get(service)
        run_dir = state.runtime_state.get("run_dir")
        if not argv or not run_dir:
            raise StackError(f"cannot restart {service}: stack {state.stack_id} was started "
                             "without recording its command lines (an older version). "
                             "`chaos stack down` and `chaos stack up` to get a restartable stack.")
        recorded = {d["service"]: d for d in state.runtime_state.get("procs", [])}
        log = recorded.get(service, {}).get("log") or str(Path(run_dir) / "logs" / f"{service}.log")
        deadline = time.monotonic() + timeout_s
        # one restart of a service at a time (the runner and its watchdog may both revert)
        with _file_lock(home() / "locks" / f"restart-{self.stack_id}-{service}.lock", deadline):
            alive = service_procs(self.stack_id, service)
            if alive:
                p = procs.Proc(service, alive[0].pid, alive[0].start_ticks, log)
            else:
                p = procs.spawn(service, svc.dc, argv, self.stack_id, Path(log), Path(run_dir))
            _record_proc(state, p)
            if wait:
                self._wait_healthy([svc], {service: p}, deadline)
        return p

    # -- what faults may plan here --------------------------------------------------------
    def service_fault_refusal(self, fault: str, service: str, topo: Target) -> str | None:
        """Why a fault on a service's processes cannot be planned on this target (None: it
        can): a described target's own local processes are not the framework's to find."""
        if topo.is_reference():
            return None
        return (f"{fault} on {service}: target {topo.name} runs its own local processes, "
                "which the framework does not find or restart; describe the stack as a "
                "docker target (find: labels) for faults on services, or use link faults")

    def partitions_networks(self, topo: Target) -> bool:
        return False

    # -- faults on a service: kill = SIGKILL, stop = SIGTERM (SIGKILL after a grace),
    #    freeze = SIGSTOP; back: SIGCONT, or a restart as `stack up` started it -------------
    def take_down(self, state: StackState, service: str, mode: str) -> None:
        found = procs_by_service(self.stack_id).get(service, [])

        def sig(p: procs.Proc, s: int) -> bool:
            return procs.signal_ours(p, self.stack_id, s)
        if mode == "freeze":
            stopped = [p for p in found if sig(p, signal.SIGSTOP)]
            _wait_stopped(stopped, FREEZE_WAIT_S)
            return
        if mode == "kill":
            for p in found:
                sig(p, signal.SIGKILL)
            _wait_gone(found, 1.0)
            return
        for p in found:                      # stop: SIGTERM, then SIGKILL after the grace
            sig(p, signal.SIGCONT)
            sig(p, signal.SIGTERM)
        for p in _wait_gone(found, STOP_GRACE_S):
            sig(p, signal.SIGKILL)
        _wait_gone(found, 1.0)

    def bring_back(self, state: StackState, service: str, mode: str,
                   together: list[str]) -> None:
        """SIGCONT whatever is alive; a service that is not (killed, stopped, or frozen and
        died meanwhile) starts again, with the rest of ``together`` that is down (in that
        order, without waiting: side by side); then wait until this one is healthy."""
        alive = [p for p in procs_by_service(self.stack_id).get(service, [])
                 if procs.signal_ours(p, self.stack_id, signal.SIGCONT)]
        if alive and mode == "freeze":
            return
        try:
            running = procs_by_service(self.stack_id)
            for name in [*together, service]:
                if name in state.topology.services and not running.get(name):
                    self.restart(state, name, wait=False)
            self.restart(state, service)
        except StackError as e:
            raise FaultError(f"{service} did not come back: {e}") from None

    def resume_all(self, state: StackState) -> Swept:
        """SIGCONT every labelled process of the stack that is ours (a stopped one is named)."""
        resumed = []
        for pid in procs.find_labelled(state.stack_id):
            ticks = procs.start_ticks(pid)
            if ticks is None:
                continue
            p = procs.Proc(service_of(pid, state.stack_id) or "?", pid, ticks, "")
            stopped = _proc_state(pid) in ("T", "t")
            if procs.is_ours(p, state.stack_id):
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    continue
                if stopped:
                    resumed.append(f"{p.service} (pid {pid})")
        swept = Swept()
        if resumed:
            swept.did.append(f"resumed {len(resumed)} stopped process(es): {', '.join(sorted(resumed))}")
        return swept

    def restart_missing(self, state: StackState) -> Swept:
        """Start every service that is down (state tier first, side by side), then wait for
        each to be healthy."""
        state = StackState.load(self.stack_id)   # fresh: the ledger's revert changes pids
        running = procs_by_service(self.stack_id)
        dead = sorted((s for s in state.topology.services.values() if not running.get(s.name)),
                      key=lambda s: (_ORDER.index(s.kind), s.name))
        swept, started = Swept(), []
        for svc in dead:
            try:
                self.restart(state, svc.name, wait=False)
                started.append(svc)
            except StackError as e:
                swept.problems.append(f"could not restart {svc.name}: {e}")
        for svc in started:
            try:
                p = self.restart(state, svc.name)
                swept.did.append(f"restarted {svc.name} (pid {p.pid})")
            except StackError as e:
                swept.problems.append(f"could not restart {svc.name}: {e}")
        return swept

    def restart_clean(self, state: StackState, service: str) -> list[str]:
        """Kill a service that runs but does not answer and start it again as `stack up`
        did (one that is down is only started), healthy; what was done, in words."""
        did = []
        for p in service_procs(self.stack_id, service):
            if procs.signal_ours(p, self.stack_id, signal.SIGKILL):
                did.append(f"killed {service} (pid {p.pid}): its API did not answer")
                end = time.monotonic() + 3.0
                while procs.start_ticks(p.pid) == p.start_ticks and time.monotonic() < end:
                    time.sleep(0.05)
        q = self.restart(state, service)
        did.append(f"restarted {service} clean from its config (pid {q.pid})")
        return did

    # -- packet drop: every service shares the host's namespace ----------------------------
    def netns_refusal(self) -> str | None:
        return None

    def netns_prefix(self, state: StackState, service: str) -> list[str] | None:
        return []

    def netns_prefixes(self, state: StackState) -> dict[str, list[str]]:
        """The services' own namespaces, beside the host's: none here."""
        return {}

    # -- status and down ----------------------------------------------------------------
    def status(self, topo: Target, runtime_state: dict) -> list[ServiceStatus]:
        by_name = {d["service"]: procs.Proc.from_dict(d) for d in runtime_state.get("procs", [])}
        out = []
        for svc in topo.services.values():
            p = by_name.get(svc.name)
            if p is None or not procs.is_ours(p, self.stack_id):
                out.append(ServiceStatus(svc.name, svc.kind, svc.dc, False, svc.address, "not running"))
                continue
            ok, detail = health.check(svc)
            out.append(ServiceStatus(svc.name, svc.kind, svc.dc, ok, svc.public or svc.address,
                                     f"pid {p.pid}" + (f", {detail}" if detail else "")))
        return out

    def down(self, topo: Target, runtime_state: dict, progress: Progress) -> list[str]:
        recorded = [procs.Proc.from_dict(d) for d in runtime_state.get("procs", [])]
        ours = [p.pid for p in recorded if procs.is_ours(p, self.stack_id)]
        # anything else carrying the label (e.g. a service restarted after a fault)
        extra = [pid for pid in procs.find_labelled(self.stack_id) if pid not in ours]
        signalled = procs.terminate(ours + extra)
        names = {p.pid: p.service for p in recorded}
        removed = [f"process {names.get(pid, 'labelled')} (pid {pid})" for pid in signalled]
        left = procs.find_labelled(self.stack_id)
        if left:
            raise StackError(f"processes {left} of stack {self.stack_id} survived SIGKILL; "
                             "check them with `ps` and remove them by hand")
        run_dir = runtime_state.get("run_dir")
        if run_dir and Path(run_dir).is_dir():
            shutil.rmtree(run_dir, ignore_errors=True)
            removed.append(f"run directory {run_dir}")
        return removed


def service_of(pid: int, stack_id: str) -> str | None:
    """The service a labelled process of stack_id runs: its working directory (which
    survives a rewritten process title), else its CHAOS_SERVICE label."""
    if procs.stack_of(pid) != stack_id:
        return None
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        if (cwd.parent / procs.MARKER).read_text().strip() == stack_id:
            return cwd.name
    except OSError:
        pass
    return procs.labels(pid).get("CHAOS_SERVICE") or None


def procs_by_service(stack_id: str) -> dict[str, list[procs.Proc]]:
    """Every live labelled process of the stack, by service (one scan of /proc)."""
    out: dict[str, list[procs.Proc]] = {}
    for pid in procs.find_labelled(stack_id):
        ticks = procs.start_ticks(pid)
        service = service_of(pid, stack_id)
        if ticks is not None and service:
            out.setdefault(service, []).append(procs.Proc(service, pid, ticks, ""))
    return {k: sorted(v, key=lambda p: p.start_ticks) for k, v in out.items()}


def service_procs(stack_id: str, service: str) -> list[procs.Proc]:
    """Every live labelled process of one service (a forked child of redis too)."""
    return procs_by_service(stack_id).get(service, [])


def _wait_stopped(found: list[procs.Proc], within_s: float) -> None:
    """A stop signal is acted on by its target when it next runs (on a busy machine, some
    time later): wait (bounded) until each is really stopped, so that injected means frozen."""
    deadline = time.monotonic() + within_s
    left = list(found)
    while left and time.monotonic() < deadline:
        left = [p for p in left if procs.start_ticks(p.pid) == p.start_ticks
                and _proc_state(p.pid) not in ("T", "t")]
        if left:
            time.sleep(0.01)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _wait_gone(found: list[procs.Proc], within_s: float) -> list[procs.Proc]:
    """Wait (bounded) until the processes are gone; return those still there."""
    deadline = time.monotonic() + within_s
    left = list(found)
    while left:
        for p in left:
            try:
                os.waitpid(p.pid, os.WNOHANG)   # our own child (restarted by us): reap it
            except ChildProcessError:
                pass
        left = [p for p in left if procs.start_ticks(p.pid) == p.start_ticks]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return left


@contextlib.contextmanager
def _file_lock(path: Path, deadline: float | None = None):
    """An exclusive flock, given up (StackError) at the deadline rather than waited forever."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (fcntl.LOCK_NB if deadline else 0))
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StackError(f"{path} stayed locked by another process") from None
                time.sleep(0.05)
        yield


def _record_proc(state: StackState, p: procs.Proc) -> None:
    """Put p in place of its service's entry, in memory and in the state file on disk
    (re-read under a lock: the runner and the watchdog may restart services at once)."""
    def update(runtime_state: dict) -> None:
        entries = runtime_state.setdefault("procs", [])
        for i, d in enumerate(entries):
            if d["service"] == p.service:
                entries[i] = p.to_dict()
                return
        entries.append(p.to_dict())
    update(state.runtime_state)
    with _file_lock(home() / "stack.lock"):
        fresh = StackState.load()
        if fresh is not None and fresh.stack_id == state.stack_id:
            update(fresh.runtime_state)
            fresh.save()


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
