"""Benchmark (not a test): from a fault's onset to the SLO breach being recorded, and from
the breach to the halt (every fault of the run reverted).

    .venv/bin/python bench/halt_time.py [--runs 3] [--base-port 19000]

For each case, an experiment with a halt condition runs against a local stack (started
here, in its own CHAOS_HOME, and taken down after). Per run it reports, from the journal:

- onset -> first breach: when the breach happened (the post-run analysis's first breach of
  the halting SLO, a window closing) after the fault went on;
- onset -> recorded: when the runner's live check (every 0.5 s, over the last window)
  recorded it and decided to halt;
- recorded -> halted: until every fault of the run was reverted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cases():
    from chaos.experiment import Audience, Experiment, fault
    from chaos.core.slo import objective
    small = Audience(listeners=9, thick_per_dc=0, join_every_s=0.5)
    return [
        ("resilient", "latency 800 ms on edge->origin, halt mouth_to_ear p95 > 600 ms / 2 s",
         Experiment(name="bench_halt_latency", before_s=5, after_s=3, recover_s=1, audience=small,
                    method=[fault("latency", link="edge-*.origin-*", at_s=0, duration_s=30,
                                  latency_ms=800)],
                    halts=[objective("mouth_to_ear", threshold=0.6, window_s=2.0)])),
        ("fragile", "dc_loss(dc-a) (redis), halt join_time p95 > 3 s / 2 s",
         Experiment(name="bench_halt_dc_a", before_s=5, after_s=3, recover_s=1, audience=small,
                    method=[fault("dc_loss", dc="dc-a", at_s=0, duration_s=30)],
                    halts=[objective("join_time", threshold=3.0, window_s=2.0)])),
    ]


def measure(journal) -> dict:
    """From a run's typed journal (chaos.core.journal.Journal)."""
    halt = journal.halt
    onset = halt.onset_s
    reverts = [e for e in journal.events if e.kind == "revert"]
    halted = max(e.t_s + (e.took_s or 0.0) for e in reverts)
    slo = next((s for s in journal.slos if s.name == halt.sli and s.phase == "during"), None)
    breach = None if slo is None else slo.first_breach_s
    return {"onset_to_breach_s": None if breach is None else breach - onset,
            "onset_to_recorded_s": halt.at_s - onset,
            "recorded_to_halted_s": halted - halt.at_s}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--base-port", type=int, default=19000)
    args = p.parse_args()
    os.environ["CHAOS_HOME"] = tempfile.mkdtemp(prefix="chaos-bench-halt-")
    from chaos.targets import stack
    from chaos.runner import run
    reports = Path(os.environ["CHAOS_HOME"]) / "reports"
    for profile, what, exp in cases():
        state = stack.up("local", profile, args.base_port)
        rows = []
        try:
            for _ in range(args.runs):
                r = run(exp, state, reports)
                if r.record.halt is None:
                    print(f"  {what}: not halted ({r.record.verdict}: {r.record.reason})")
                    continue
                rows.append(measure(r.record))
        finally:
            stack.down()
        print(f"{profile}: {what}  ({len(rows)} runs)")
        for key in ("onset_to_breach_s", "onset_to_recorded_s", "recorded_to_halted_s"):
            vals = [row[key] for row in rows if row[key] is not None]
            if vals:
                print(f"  {key:22s} median {statistics.median(vals):6.2f}  "
                      f"min {min(vals):6.2f}  max {max(vals):6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
