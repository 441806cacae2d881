"""Benchmark: from an abort (SIGKILL of the runner) to every fault reverted by the watchdog.

For each data-center fault (dc_loss kill / stop / freeze, dc_partition), N times: a runner
subprocess starts the watchdog (`chaos.faults.watchdog.guard`), injects the fault through
the engine, says so, and sleeps; it is SIGKILLed; the clock starts. Reported, from the kill:

- detect: the watchdog logs that it tripped (the runner is gone);
- reverted: what the fault did is undone, as seen from outside: no process of the DC
  stopped and every service of it running again (local), no container paused or exited
  and every one back on its networks (docker), every proxy enabled;
- healthy: every service of the stack healthy again (`stack status`);
- done: the watchdog has exited (its reverts finished, the ledger is empty).

It brings up its own stack in its own CHAOS_HOME and takes it down at the end.

    .venv/bin/python bench/abort_revert.py [--runtime local|docker] [--runs 3]
                                           [--base-port 29500] [--dc dc-b]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

RUNNER = textwrap.dedent("""
    import sys, time
    from chaos.faults import Engine, FaultSpec, Selector, plan
    from chaos.faults.executors import executors_for
    from chaos.faults.watchdog import guard
    from chaos.targets.state import StackState
    state = StackState.load()
    name, dc, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    params = {"mode": mode} if name == "dc_loss" else {}
    actions = plan(FaultSpec(name, Selector(dc=dc), params), state.topology)
    with guard(state) as hb:
        Engine(executors_for(state), state.stack_id).inject(actions)
        print("INJECTED", hb.watchdog_pid, flush=True)
        time.sleep(600)
""")
CASES = (("dc_loss", "kill"), ("dc_loss", "stop"), ("dc_loss", "freeze"), ("dc_partition", "-"))
BOUND_S = 120.0


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def reverted_local(state, dc: str) -> bool:
    from chaos.targets.local import service_procs
    from chaos.targets.toxi import Toxiproxy
    for svc in state.topology.in_dc(dc):
        found = service_procs(state.stack_id, svc.name)
        if not found or any(_state(p.pid) in ("T", "t") for p in found):
            return False
    toxi = Toxiproxy(state.topology.services["toxiproxy"].public)
    return all(p["enabled"] for p in toxi.proxies().values())


def reverted_docker(state, dc: str) -> bool:
    from chaos.targets.docker import expected_networks, labelled, network
    from chaos.targets.images import docker_client
    from chaos.targets.toxi import Toxiproxy
    client = docker_client(timeout=30)
    try:
        backbone = network(client, "backbone")
        for c in labelled(client):
            if c.labels.get("chaos.dc") != dc:
                continue
            if c.status != "running":
                return False
            svc = state.topology.services[c.labels["chaos.service"]]
            ids = {n["NetworkID"] for n in c.attrs["NetworkSettings"]["Networks"].values()}
            if "backbone" in expected_networks(svc) and backbone.id not in ids:
                return False
    finally:
        client.close()
    toxi = Toxiproxy(state.topology.services["toxiproxy"].public)
    return all(p["enabled"] for p in toxi.proxies().values())


def healthy() -> bool:
    from chaos.targets import stack
    return all(s.healthy for s in stack.status())


def wait(cond, t0: float, bound_s: float = BOUND_S) -> float | None:
    while time.monotonic() - t0 < bound_s:
        try:
            if cond():
                return time.monotonic() - t0
        except Exception:  # noqa: BLE001 - a service mid-restart may refuse a check
            pass
        time.sleep(0.05)
    return None


def tripped_at(log: Path, wd_pid: int) -> float | None:
    """Wall-clock time of this watchdog's 'tripped' line."""
    try:
        for line in log.read_text().splitlines():
            if f"watchdog[{wd_pid}] tripped" in line:
                return _dt.datetime.fromisoformat(line.split()[0]).timestamp()
    except OSError:
        pass
    return None


def one(state, name: str, mode: str, dc: str, home: Path) -> dict:
    from chaos.targets import procs
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, name, dc, mode],
                              stdout=subprocess.PIPE, text=True)
    line = runner.stdout.readline()
    if not line.startswith("INJECTED"):
        runner.kill()
        raise SystemExit(f"the runner did not inject {name} {mode}: {line!r}")
    wd_pid = int(line.split()[1])
    time.sleep(1.0)                     # the fault holds a moment
    check = reverted_docker if state.runtime == "docker" else reverted_local
    wall0, t0 = time.time(), time.monotonic()
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    reverted = wait(lambda: check(state, dc), t0)
    done = wait(lambda: procs.start_ticks(wd_pid) is None, t0)
    ok = wait(healthy, t0, BOUND_S * 2)
    trip = tripped_at(home / "faults" / "watchdog.log", wd_pid)
    return {"detect_s": None if trip is None else max(0.0, trip - wall0), "reverted_s": reverted,
            "done_s": done, "healthy_s": ok}


def fmt(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    miss = len(values) - len(got)
    return (f"{statistics.median(got):5.2f} / {max(got):5.2f}"
            + (f" ({miss} never)" if miss else ""))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", choices=("local", "docker"), default="local")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--base-port", type=int, default=None)
    ap.add_argument("--dc", default="dc-b")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.runs <= 20:
        ap.error("--runs: 1 to 20")
    home = Path(tempfile.mkdtemp(prefix="abort-revert-"))
    os.environ["CHAOS_HOME"] = str(home)
    from chaos.targets import stack
    base = args.base_port or (29500 if args.runtime == "local" else 17000)
    state = stack.up(args.runtime, "resilient", base)
    rows = []
    try:
        for name, mode in CASES:
            runs = []
            for _ in range(args.runs):
                runs.append(one(state, name, mode, args.dc, home))
                print(f"{name} {mode}: {json.dumps({k: v and round(v, 2) for k, v in runs[-1].items()})}",
                      file=sys.stderr, flush=True)
            rows.append((name, mode, runs))
    finally:
        try:
            stack.down()
        except Exception as e:  # noqa: BLE001 - the figures are still worth printing
            print(f"stack down failed: {e}", file=sys.stderr)
    load = os.getloadavg()
    print(f"\nabort -> reverted by the watchdog, {args.runtime} runtime, {args.dc}, {args.runs} runs "
          f"each; seconds from SIGKILL of the runner, median / max; load average "
          f"{load[0]:.1f} on {os.cpu_count()} cores\n")
    print(f"{'fault':<14}{'mode':<8}{'detect':<16}{'reverted':<16}{'watchdog done':<16}{'healthy':<16}")
    for name, mode, runs in rows:
        print(f"{name:<14}{mode:<8}" + "".join(
            f"{fmt([r[k] for r in runs]):<16}" for k in ("detect_s", "reverted_s", "done_s", "healthy_s")))
    if args.json:
        print(json.dumps([{"fault": n, "mode": m, "runs": r} for n, m, r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
