"""Benchmark: time from an abort to every fault reverted, per fault kind (network and CPU).

For each kind: inject it through the engine, then time ``engine.revert`` (wall clock, every
action under its deadline) until it returns; REPEAT times. Then all kinds at once, reverted
two ways: ``revert_all`` in this process (an abort in the runner), and in a fresh process
from the ledger alone (what the watchdog or ``chaos stack reset`` does after the runner
died: Python start-up and imports included). Prints one JSON document.

    .venv/bin/python bench/revert_time.py [--runtime local|docker] [--repeat 5] [--base-port 35000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

KINDS = {
    "latency": ("link", "listener.edge-a", {"latency_ms": 200}),
    "bandwidth": ("link", "listener.edge-a", {"rate_kbps": 64}),
    "link_down": ("link", "listener.edge-a", {}),
    "reset": ("link", "listener.edge-a", {"timeout_ms": 100}),
    "timeout": ("link", "listener.edge-a", {"stream": "both"}),
    "slicer": ("link", "listener.edge-a", {}),
    "slow_state": ("all", None, {"latency_ms": 300}),      # six gateway->redis links
    "packet_drop": ("service", "edge-b", {"share": 0.05}),
    "cpu_starve": ("service", "edge-c", {"share": 0.05}),
}

REVERT_ELSEWHERE = """
import json, time
t = time.perf_counter()
from chaos.faults import Engine
from chaos.faults.executors import executors_for
from chaos.targets.state import StackState
state = StackState.load()
report = Engine(executors_for(state), state.stack_id).revert_all()
print(json.dumps({"s": time.perf_counter() - t, "reverted": len(report.reverted),
                  "failed": len(report.failed)}))
"""


def _ms(xs: list[float]) -> dict:
    return {"median_ms": round(statistics.median(xs) * 1000, 1),
            "max_ms": round(max(xs) * 1000, 1), "runs_ms": [round(x * 1000, 1) for x in xs]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runtime", choices=("local", "docker"), default="local")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--base-port", type=int, default=None,
                   help="default: 35000 (local), 17000 (docker)")
    args = p.parse_args()
    if not 1 <= args.repeat <= 50:
        p.error("--repeat: 1 to 50")
    base = args.base_port or (35000 if args.runtime == "local" else 17000)
    os.environ["CHAOS_HOME"] = tempfile.mkdtemp(prefix="chaos-bench-revert-")
    from chaos.targets import stack
    from chaos.core.errors import PortInUse
    from chaos.faults import Engine, FaultSpec, Selector, plan
    from chaos.faults.executors import executors_for

    for _ in range(30):                 # ports held for a moment by other clients' connections
        try:
            state = stack.up(args.runtime, "resilient", base)
            break
        except PortInUse:
            time.sleep(3)
    else:
        state = stack.up(args.runtime, "resilient", base)
    out: dict = {"runtime": args.runtime, "repeat": args.repeat, "kinds": {}}
    try:
        eng = Engine(executors_for(state), state.stack_id)

        def actions_of(kind: str):
            how, what, params = KINDS[kind]
            sel = (Selector(link=what) if how == "link" else Selector(service=what)
                   if how == "service" else Selector())
            return plan(FaultSpec(kind, sel, params), state.topology)

        for kind in KINDS:
            inject_s, revert_s = [], []
            for _ in range(args.repeat):
                actions = actions_of(kind)
                t = time.perf_counter()
                eng.inject(actions)
                inject_s.append(time.perf_counter() - t)
                time.sleep(0.3)                   # let it bite (the duty cycle stops the edge)
                t = time.perf_counter()
                report = eng.revert(actions)
                revert_s.append(time.perf_counter() - t)
                if not report.ok:
                    raise SystemExit(f"{kind}: revert failed: {report.failed}")
            out["kinds"][kind] = {"actions": len(actions), "revert": _ms(revert_s),
                                  "inject_median_ms": round(statistics.median(inject_s) * 1000, 1)}

        all_here, all_elsewhere, n_actions = [], [], 0
        for _ in range(args.repeat):
            for kind in KINDS:
                acts = actions_of(kind)
                n_actions = n_actions + len(acts) if len(all_here) == 0 else n_actions
                eng.inject(acts)
            time.sleep(0.3)
            t = time.perf_counter()
            report = eng.revert_all()
            all_here.append(time.perf_counter() - t)
            assert report.ok, report.failed
            for kind in KINDS:
                eng.inject(actions_of(kind))
            time.sleep(0.3)
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", REVERT_ELSEWHERE], capture_output=True,
                               text=True, timeout=120, env=os.environ.copy())
            all_elsewhere.append(time.perf_counter() - t)
            doc = json.loads(r.stdout.strip().splitlines()[-1])
            assert doc["failed"] == 0, r.stdout + r.stderr
        out["all_kinds_at_once"] = {"actions": n_actions, "revert_all_in_runner": _ms(all_here),
                                    "revert_all_fresh_process": _ms(all_elsewhere)}
    finally:
        Engine(executors_for(state), state.stack_id).revert_all()
        try:
            stack.down()
        except Exception as e:  # noqa: BLE001 - the figures are still good; say what was left
            print(f"stack down: {e}", file=sys.stderr)
    # one line per kind: readable, and still one JSON document
    kinds = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in out["kinds"].items())
    print("{" + f'"runtime": "{out["runtime"]}", "repeat": {out["repeat"]}, "kinds": {{\n{kinds}}},\n'
          f' "all_kinds_at_once": {json.dumps(out.get("all_kinds_at_once"))}' + "}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
