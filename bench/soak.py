"""Benchmark: a soak. A steady audience listens for a long time under a mild fault
schedule, and the memory and CPU of every process, stack and probes, are sampled all along:
does anything grow with the run's length?

Against a running local stack (`chaos stack up`). It runs one experiment through the
runner (`chaos.runner.run`, the same path as `pytest experiments/`): LISTENERS thin
listeners (in their own processes) and THICK_PER_DC thick ones per DC hold for SECONDS;
every EVERY seconds a mild fault is put on for FAULT_S: latency LATENCY_MS +- 20 ms on the
edges' links to the primary origin (inside the 400 ms mouth-to-ear budget), so the
steady state must hold through it. Every SAMPLE_S seconds /proc gives each process's
resident memory and CPU: the stack's (found by its label) and the probe's (this process
and its listener processes). The report gives, per process, its memory after the first
minute and at the end, the growth per hour from a least-squares fit over the run after its
first minute, its mean CPU, and the run's verdict and probe lag.

    .venv/bin/python bench/soak.py [--seconds 3600] [--listeners 300] [--thick-per-dc 1]
                                   [--every 120] [--fault-s 20] [--latency-ms 100]
                                   [--sample-s 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from chaos.targets import stack
from chaos.experiment import Audience, Experiment, fault
from chaos.runner import run
from chaos.core.slo import DEFAULTS
from chaos.targets import procs

TICK = os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1e6


def stat(pid: int) -> tuple[float, float, int] | None:
    """(cpu seconds, rss MB, parent pid) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE_MB, int(fields[1])


def probe_pids() -> dict[int, str]:
    """This process and its children (the listener processes, the load workers)."""
    me = os.getpid()
    out = {me: "probe"}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            s = stat(int(entry.name))
            if s is not None and s[2] == me:
                try:
                    name = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if any(b"crowd_worker" in a or b"multiprocessing" in a for a in name):
                    out[int(entry.name)] = f"probe-child-{entry.name}"
    return out


def stack_pids(stack_id: str) -> dict[int, str]:
    out = {}
    for pid in procs.find_labelled(stack_id):
        lab = procs.labels(pid)
        name = lab.get("CHAOS_SERVICE")
        if not name:
            try:
                name = f"{Path(f'/proc/{pid}/comm').read_text().strip()}-{pid}"
            except OSError:
                name = f"pid-{pid}"
        out[pid] = name
    return out


class Sampler(threading.Thread):
    """Every sample_s: (t, name, rss MB, cpu s) of every process of the stack and the probe."""

    def __init__(self, stack_id: str, sample_s: float) -> None:
        super().__init__(daemon=True)
        self.stack_id, self.sample_s = stack_id, sample_s
        self.rows: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic() - self.t0
            for pid, name in {**stack_pids(self.stack_id), **probe_pids()}.items():
                s = stat(pid)
                if s is not None:
                    self.rows.setdefault((pid, name), []).append((t, s[1], s[0]))
            self.stop.wait(self.sample_s)

    def summary(self) -> list[dict]:
        out = []
        for (pid, name), rows in sorted(self.rows.items(), key=lambda kv: kv[0][1]):
            a = np.array(rows)
            if len(a) < 3:
                continue
            t, rss, cpu = a[:, 0], a[:, 1], a[:, 2]
            after = t >= t[0] + 60
            i1 = int(np.argmax(after)) if after.any() else 0
            fit = t >= t[i1]
            slope = np.polyfit(t[fit], rss[fit], 1)[0] if fit.sum() >= 3 else float("nan")
            span = t[-1] - t[0]
            out.append({"process": name, "pid": pid, "samples": len(a),
                        "seconds": round(float(span), 1),
                        "rss_mb_first": round(float(rss[0]), 1),
                        "rss_mb_at_1min": round(float(rss[i1]), 1),
                        "rss_mb_end": round(float(rss[-1]), 1),
                        "growth_mb_per_h": round(float(slope * 3600), 1),
                        "cpu_pct_mean": round(float(100 * (cpu[-1] - cpu[0]) / span), 1) if span else None})
        return out


def experiment(a) -> Experiment:
    before_s, recover_s = 15.0, 3.0
    span = a.seconds - before_s - recover_s - 15.0          # the method, at least 15 s after
    n = max(1, int((span - a.fault_s) // a.every) + 1)
    method = [fault("latency", link="edge-*.origin-a", at_s=k * a.every, duration_s=a.fault_s,
                    latency_ms=a.latency_ms, jitter_ms=20) for k in range(n)]
    after_s = max(15.0, a.seconds - before_s - recover_s - ((n - 1) * a.every + a.fault_s))
    return Experiment(
        name="soak", title=f"soak: {a.listeners} listeners for {a.seconds:g} s, "
                           f"latency {a.latency_ms:g} ms every {a.every:g} s",
        expects="every SLO holds all along; no process grows with the run's length",
        steady_state=tuple(DEFAULTS[s] for s in ("join_time", "audio_delivered", "mouth_to_ear",
                                                 "freeze", "silence", "mos")),
        during=(DEFAULTS["mouth_to_ear"], DEFAULTS["audio_delivered"]),
        method=method, before_s=before_s, after_s=after_s, recover_s=recover_s,
        audience=Audience(listeners=a.listeners, thick_per_dc=a.thick_per_dc, join_every_s=5.0))


def _processes(journal) -> list[dict] | None:
    """Every probe process's lag, CPU and memory, from the typed journal."""
    probe = journal.probe
    if probe is None or probe.processes is None:
        return None
    return [p.dump() for p in probe.processes]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3600.0)
    ap.add_argument("--listeners", type=int, default=300)
    ap.add_argument("--thick-per-dc", type=int, default=1)
    ap.add_argument("--every", type=float, default=120.0)
    ap.add_argument("--fault-s", type=float, default=20.0)
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--reports", default="reports")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    state = stack.current()
    stack.require_healthy(state)
    load0 = os.getloadavg()
    sampler = Sampler(state.stack_id, a.sample_s)
    sampler.start()
    t0 = time.monotonic()
    try:
        rr = run(experiment(a), state, a.reports)
    finally:
        sampler.stop.set()
        sampler.join()
    doc = {"seconds": round(time.monotonic() - t0, 1), "listeners": a.listeners,
           "thick_per_dc": a.thick_per_dc, "fault": f"latency {a.latency_ms:g} +- 20 ms on "
           f"edge-*.origin-a for {a.fault_s:g} s every {a.every:g} s",
           "loadavg_start": [round(x, 2) for x in load0],
           "loadavg_end": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
           "verdict": str(rr.record.verdict), "reason": rr.record.reason,
           "journal": str(rr.files["journal.json"]),
           "probe": _processes(rr.record),
           "processes": sampler.summary()}
    if a.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"soak: {doc['seconds']:g} s, {a.listeners} listeners (+{3 * a.thick_per_dc} thick), "
          f"{doc['fault']}; load average {load0[0]:.2f} -> {doc['loadavg_end'][0]:.2f} "
          f"on {doc['cpus']} cores")
    print(f"verdict: {doc['verdict']}: {doc['reason']}")
    print(f"{'process':<22}{'rss MB @1min':>14}{'rss MB end':>12}{'MB/hour':>10}{'CPU %':>8}")
    for p in doc["processes"]:
        print(f"{p['process']:<22}{p['rss_mb_at_1min']:>14.1f}{p['rss_mb_end']:>12.1f}"
              f"{p['growth_mb_per_h']:>10.1f}{p['cpu_pct_mean'] or 0:>8.1f}")
    print(f"journal: {doc['journal']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
