"""Session-level reset: put the whole stack back, whatever the ledger says.

The ledger reverts what the framework knows it did; this is the safety net for the rest
(a crash between two writes, a toxic added by hand, a fault from an older run). In order:

1. stop the duty-cycle helpers of the stack (``python -m chaos.faults.dutycycle
   --stack-id ID``): they would stop processes again behind our back;
2. everything runs again: SIGCONT every stopped labelled process (local); unpause or start
   every labelled container, reconnect the networks compose gave it, lift CPU quotas
   (docker);
3. delete every iptables rule whose comment starts with ``chaos:``, in each container's
   namespace and on the host (on the host, rules of another local stack that is still
   running are left alone: the machine may be shared);
4. toxiproxy reset: every toxic removed, every proxy enabled (after step 6 if toxiproxy
   itself was down). A toxiproxy that runs but does not answer is restarted: the DELETE of
   a latency toxic under traffic can hang its whole API (Shopify/toxiproxy#412, #558), and
   it comes back clean from its config (its links' connections are cut once);
5. revert the ledger's actions for the stack (killed services come back in start order);
6. restart any local service that is still not running, as `stack up` started it;
7. revert what is left in the ledger once more (now that the stack runs again);
8. wait until `stack status` is all healthy, within a deadline.

Steps 3 and 4 come before anything waits for a service to be healthy: a leftover drop
rule or toxic would make that wait fail.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ChaosError, StackError
from ..targets import procs
from ..targets.base import Progress, quiet
from ..targets.state import StackState

HEALTHY_WAIT_S = {"local": 60.0, "docker": 120.0}
CMD_TIMEOUT_S = 5.0
DUTYCYCLE_GRACE_S = 2.0
DUTYCYCLE_MODULE = "chaos.faults.dutycycle"
COMMENT_PREFIX = "chaos:"


@dataclass
class ResetReport:
    stack_id: str
    did: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unhealthy: list[str] = field(default_factory=list)
    took_s: float = 0.0

    @property
    def healthy(self) -> bool:
        return not self.unhealthy

    def to_dict(self) -> dict:
        return {"stack_id": self.stack_id, "healthy": self.healthy, "did": self.did,
                "problems": self.problems, "unhealthy": self.unhealthy,
                "took_s": round(self.took_s, 2)}


def reset(state: StackState | None = None, progress: Progress = quiet,
          healthy_wait_s: float | None = None) -> ResetReport:
    from .. import stack
    state = state or stack.current()
    t0 = time.monotonic()
    rep = ResetReport(state.stack_id)

    def step(what: str, fn) -> None:
        progress(what)
        try:
            fn()
        except ChaosError as e:
            rep.problems.append(f"{what}: {e}")
        except Exception as e:  # noqa: BLE001 - one step failing must not stop the others
            rep.problems.append(f"{what}: {type(e).__name__}: {e}")

    step("stopping duty-cycle helpers", lambda: _stop_dutycycles(state.stack_id, rep))
    if state.runtime == "docker":
        step("bringing every container back", lambda: _docker_back(state, rep))
    else:
        step("resuming stopped processes", lambda: _resume_local(state, rep))
    # before anything waits for health: a leftover drop rule or toxic would fail the wait
    step("removing chaos iptables rules", lambda: _iptables(state, rep))
    toxi_done = []
    step("resetting toxiproxy",
         lambda: toxi_done.append(_toxiproxy_reset(state, rep, quiet_failure=True)))
    ours = state.topology.is_reference()   # a described target's processes are the user's
    if toxi_done != [True] and ours:  # down, or running with its API hung: restart it clean
        step("restarting a toxiproxy that does not answer", lambda: _restart_toxiproxy(state, rep))
    step("reverting the ledger", lambda: _revert_ledger(state.stack_id, rep))
    if state.runtime == "local" and ours:
        step("restarting services that are not running", lambda: _restart_dead(state.stack_id, rep))
    if toxi_done != [True]:      # toxiproxy itself was down: it runs again now
        step("resetting toxiproxy", lambda: _toxiproxy_reset(state, rep))
    step("reverting what is left in the ledger", lambda: _revert_ledger(state.stack_id, rep, again=True))
    progress("waiting until every service is healthy")
    rep.unhealthy = _wait_healthy(state.stack_id, healthy_wait_s or HEALTHY_WAIT_S[state.runtime])
    rep.took_s = time.monotonic() - t0
    if not rep.did:
        rep.did.append("nothing: no fault was found on the stack")
    return rep


# -- 1. duty-cycle helpers ----------------------------------------------------------------

def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def dutycycle_helpers(stack_id: str) -> list[tuple[int, int]]:
    """(pid, start ticks) of the duty-cycle helpers working on this stack."""
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


def _stop_dutycycles(stack_id: str, rep: ResetReport) -> None:
    helpers = dutycycle_helpers(stack_id)
    for pid, ticks in helpers:      # SIGTERM: it resumes its target on the way out
        if procs.start_ticks(pid) == ticks:
            with _gone_ok():
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DUTYCYCLE_GRACE_S
    left = helpers
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [(p, t) for p, t in left if procs.start_ticks(p) == t]
    for pid, ticks in left:
        if procs.start_ticks(pid) == ticks:
            with _gone_ok():
                os.kill(pid, signal.SIGKILL)
    if helpers:
        rep.did.append(f"stopped {len(helpers)} duty-cycle helper(s) (pid "
                       f"{', '.join(str(p) for p, _ in helpers)})")


class _gone_ok:
    def __enter__(self):
        return self

    def __exit__(self, et, e, tb):
        return et is ProcessLookupError


# -- 2. everything runs again -------------------------------------------------------------

def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _resume_local(state: StackState, rep: ResetReport) -> None:
    from ..targets.local import service_of
    resumed = []
    for pid in procs.find_labelled(state.stack_id):
        ticks = procs.start_ticks(pid)
        if ticks is None:
            continue
        p = procs.Proc(service_of(pid, state.stack_id) or "?", pid, ticks, "")
        stopped = _proc_state(pid) in ("T", "t")
        if procs.is_ours(p, state.stack_id):
            with _gone_ok():
                os.kill(pid, signal.SIGCONT)
                if stopped:
                    resumed.append(f"{p.service} (pid {pid})")
    if resumed:
        rep.did.append(f"resumed {len(resumed)} stopped process(es): {', '.join(sorted(resumed))}")


def _docker_back(state: StackState, rep: ResetReport) -> None:
    import docker

    from ..targets.docker import by_service, expected_networks, network
    from ..targets.images import docker_client
    client = docker_client(timeout=30)
    try:
        nets: dict[str, object] = {}
        for name, c in [(n, c) for n, cs in by_service(client, state).items() for c in cs]:
            svc = state.topology.services.get(name)
            try:
                if svc is not None and state.topology.is_reference():   # its compose networks
                    attached = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
                    ids = {n.get("NetworkID") for n in attached.values()}
                    for label in expected_networks(svc):
                        if label not in nets:
                            nets[label] = network(client, label)
                        net = nets[label]
                        if net is not None and net.id not in ids and net.name not in attached:
                            net.connect(c, aliases=[name])
                            rep.did.append(f"reconnected {name} to network {label}")
                if c.status == "paused":
                    c.unpause()
                    rep.did.append(f"unpaused {name}")
                elif c.status in ("exited", "created", "dead"):
                    c.start()
                    rep.did.append(f"started {name} (was {c.status})")
                if ((c.attrs.get("HostConfig") or {}).get("CpuQuota") or 0) > 0:
                    c.update(cpu_quota=-1)   # the stack's containers run without a quota
                    rep.did.append(f"lifted the CPU quota of {name}")
            except docker.errors.APIError as e:
                rep.problems.append(f"container {name}: {e.explanation or e}")
    finally:
        client.close()


# -- 3, 7. the ledger ---------------------------------------------------------------------

def _revert_ledger(stack_id: str, rep: ResetReport, again: bool = False) -> None:
    from .engine import Engine
    from .executors import executors_for
    from .ledger import Ledger

    if not Ledger().active(stack_id):
        return
    state = StackState.load(stack_id)   # fresh: restarts change pids
    report = Engine(executors_for(state), stack_id).revert_all()
    if report.reverted:
        rep.did.append(f"reverted {len(report.reverted)} fault step(s) from the ledger"
                       + (" (second pass)" if again else "") + ": "
                       + "; ".join(a.describe() for a in report.reverted))
    if again:      # after a first pass, failures are retried once the stack runs again
        rep.problems += [f"could not revert {a.describe()}: {why}" for a, why in report.failed]


# -- 4. local services that are not running -----------------------------------------------

def _restart_dead(stack_id: str, rep: ResetReport) -> None:
    """Start every service that is down (state tier first, side by side), then wait for
    each to be healthy."""
    from ..targets.local import _ORDER, LocalRuntime, procs_by_service
    state = StackState.load(stack_id)
    rt = LocalRuntime(stack_id)
    running = procs_by_service(stack_id)
    dead = sorted((s for s in state.topology.services.values() if not running.get(s.name)),
                  key=lambda s: (_ORDER.index(s.kind), s.name))
    started = []
    for svc in dead:
        try:
            rt.restart(state, svc.name, wait=False)
            started.append(svc)
        except StackError as e:
            rep.problems.append(f"could not restart {svc.name}: {e}")
    for svc in started:
        try:
            p = rt.restart(state, svc.name)
            rep.did.append(f"restarted {svc.name} (pid {p.pid})")
        except StackError as e:
            rep.problems.append(f"could not restart {svc.name}: {e}")


# -- 5. toxiproxy ---------------------------------------------------------------------------

def _restart_toxiproxy(state: StackState, rep: ResetReport) -> None:
    rep.did += restart_toxiproxy(state)


def restart_toxiproxy(state: StackState) -> list[str]:
    """The last resort for a toxiproxy that runs but does not answer: kill it and start it
    again, clean from its config (every proxy enabled, no toxic), and wait until it answers.
    Every connection through it is cut once. A toxiproxy that is down is only started."""
    did = []
    if state.runtime == "local":
        from ..targets.local import LocalRuntime, service_procs
        for p in service_procs(state.stack_id, "toxiproxy"):
            if procs.signal_ours(p, state.stack_id, signal.SIGKILL):
                did.append(f"killed toxiproxy (pid {p.pid}): its API did not answer")
                end = time.monotonic() + 3.0
                while procs.start_ticks(p.pid) == p.start_ticks and time.monotonic() < end:
                    time.sleep(0.05)
        q = LocalRuntime(state.stack_id).restart(state, "toxiproxy")
        did.append(f"restarted toxiproxy clean from its config (pid {q.pid})")
        return did
    from ..targets.docker import labelled
    from ..targets.images import docker_client
    from ..toxi import Toxiproxy, ToxiproxyError
    client = docker_client(timeout=30)
    try:
        for c in labelled(client, "toxiproxy"):
            c.restart(timeout=1)
            did.append("restarted the toxiproxy container clean from its config: its API did "
                       "not answer")
    finally:
        client.close()
    toxi, end = Toxiproxy(state.topology.toxiproxy, timeout_s=1.0), time.monotonic() + 20
    while True:
        try:
            toxi.version()
            return did
        except ToxiproxyError:
            if time.monotonic() > end:
                raise StackError("toxiproxy did not answer within 20 s of its restart") from None
            time.sleep(0.2)


def _toxiproxy_reset(state: StackState, rep: ResetReport, quiet_failure: bool = False) -> bool:
    from ..toxi import Toxiproxy, ToxiproxyError
    toxi = Toxiproxy(state.topology.toxiproxy, timeout_s=2.0)
    try:
        before = toxi.proxies()
    except ToxiproxyError:
        if quiet_failure:
            return False          # not running yet: tried again once every service is back
        raise
    toxics = [f"{t.get('name')} on {name}" for name, p in before.items() for t in p.get("toxics") or []]
    disabled = [name for name, p in before.items() if not p.get("enabled", True)]
    missing = sorted(set(state.topology.links) - set(before))
    toxi.reset()
    still = _still_disabled(toxi)
    if still:
        addresses = ", ".join(f"{n} ({state.topology.links[n].listen})" if n in state.topology.links
                              else n for n in still)
        rep.problems.append(
            f"toxiproxy could not listen again for {addresses}: a disabled proxy frees its "
            "port, and a client connection can take it as its ephemeral source port (ports "
            "32768-60999 on Linux) and hold it in TIME_WAIT for up to 60 s. `chaos stack "
            "reset` again in a minute; a base port below 32768 avoids it")
    if toxics:
        rep.did.append(f"removed {len(toxics)} toxic(s): {', '.join(sorted(toxics))}")
    if disabled:
        rep.did.append(f"enabled {len(disabled)} proxy(ies): {', '.join(sorted(disabled))}")
    if missing:
        rep.problems.append(f"toxiproxy has no proxy for {', '.join(missing)} (restarted "
                            "without its config?)")
    return True


def _still_disabled(toxi, within_s: float = 3.0) -> list[str]:
    """Proxies that stay disabled after a reset (toxiproxy answers 200 even when it cannot
    listen again), retried for a few seconds."""
    deadline = time.monotonic() + within_s
    while True:
        off = sorted(n for n, p in toxi.proxies().items() if not p.get("enabled", True))
        if not off or time.monotonic() > deadline:
            return off
        time.sleep(0.5)
        for name in off:
            toxi.set_enabled(name, True)


# -- 6. iptables ------------------------------------------------------------------------------

def _variants() -> list[tuple[str, str]]:
    """(save command, iptables command) of each backend installed (nft and legacy keep
    separate rule sets)."""
    out = []
    for binary in ("iptables", "iptables-legacy"):
        b, save = shutil.which(binary), shutil.which(f"{binary}-save")
        if b and save:
            out.append((save, b))
    return out


def _run(argv: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    except (subprocess.TimeoutExpired, OSError):
        return None


def _comment(tokens: list[str]) -> str:
    try:
        return tokens[tokens.index("--comment") + 1]
    except (ValueError, IndexError):
        return ""


def sweep_iptables(prefix: list[str], keep=lambda comment: False) -> list[str]:
    """Delete every rule whose comment starts with chaos: in one namespace (prefix: the
    command that enters it, [] for the host) unless keep(comment); return those deleted."""
    deleted = []
    for save, binary in _variants():
        r = _run([*prefix, save])
        if r is None or r.returncode != 0:
            continue
        table = "filter"
        for line in r.stdout.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
                continue
            if not line.startswith("-A "):
                continue
            tokens = shlex.split(line)
            comment = _comment(tokens)
            if not comment.startswith(COMMENT_PREFIX) or keep(comment):
                continue
            d = _run([*prefix, binary, "-w", "3", "-t", table, "-D", *tokens[1:]])
            if d is not None and d.returncode == 0:
                deleted.append(f"{table} {shlex.join(tokens)}")
    return deleted


def _iptables(state: StackState, rep: ResetReport) -> None:
    if os.geteuid() != 0 or not _variants():
        return
    live: dict[str, bool] = {}

    def other_live_stack(comment: str) -> bool:
        sid = comment.split(":")[1] if comment.count(":") >= 1 else ""
        if not sid or sid == state.stack_id:
            return False
        if sid not in live:
            live[sid] = bool(procs.find_labelled(sid))
        return live[sid]

    where = {"host": sweep_iptables([], keep=other_live_stack)}
    if state.runtime == "docker" and shutil.which("nsenter"):
        from ..targets.docker import by_service
        from ..targets.images import docker_client
        client = docker_client(timeout=30)
        try:
            for name, c in [(n, c) for n, cs in by_service(client, state).items() for c in cs]:
                pid = int((c.attrs.get("State") or {}).get("Pid") or 0)
                if pid > 0:
                    where[name] = sweep_iptables(
                        ["nsenter", "-t", str(pid), "-n"])
        finally:
            client.close()
    for name, rules in where.items():
        if rules:
            rep.did.append(f"deleted {len(rules)} iptables rule(s) in {name}: " + "; ".join(rules))


# -- 8. healthy -------------------------------------------------------------------------------

def _wait_healthy(stack_id: str, within_s: float) -> list[str]:
    from .. import stack
    deadline = time.monotonic() + within_s
    while True:
        state = StackState.load(stack_id)
        if state is None:
            return ["the stack's state file is gone"]
        try:
            sick = [f"{s.name} ({s.detail or 'unhealthy'})" for s in stack.status(state) if not s.healthy]
        except ChaosError as e:
            sick = [str(e)]
        if not sick or time.monotonic() > deadline:
            return sick
        time.sleep(0.5)
