"""Benchmark (not a test): the two known answers of generated fault schedules, with their
full budgets, against a local stack started here (its own CHAOS_HOME, taken down after).

    .venv/bin/python bench/explore.py [--budget 600] [--base-port 29000] [--only fragile|resilient]
                                      [--start-from-big]

- fragile, catalogue dc_loss over every DC + latency + packet_drop (join_time, audio_delivered
  at their defaults): the search must break one and shrink it to a single fault in dc-a;
- resilient, a catalogue it survives (dc_loss of dc-c, latency under 100 ms; join_time at
  its default, audio_delivered >= 95 % per 5 s): nothing within the budget, with how many
  schedules were tried and their spread.

``--start-from-big`` stores a breaking three-fault schedule first (the store's replay), so
the fragile case measures the live reduction from it rather than Hypothesis's first draw.
Prints each case's printed result and a line of figures: time, schedules, runs, minimal.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=600.0)
    ap.add_argument("--base-port", type=int, default=29000)
    ap.add_argument("--only", choices=("fragile", "resilient"), default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start-from-big", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("CHAOS_HOME", tempfile.mkdtemp(prefix="bench-explore-"))
    from chaos.targets import stack
    from chaos.explore import Schedule, Step, space
    from chaos.explore.stack import explore_stack
    from chaos.explore.store import Store, store_key
    from chaos.core.slo import objective

    reports = tempfile.mkdtemp(prefix="bench-explore-reports-")
    cases = [
        ("fragile", ("dc_loss", "latency", "packet_drop"), (objective("join_time"), objective("audio_delivered"))),
        ("resilient", (space("dc_loss", dcs=("dc-c",)), space("latency", latency_ms=(10, 90, 10))),
         (objective("join_time"), objective("audio_delivered", threshold=0.95))),
    ]
    for profile, faults, slos in cases:
        if args.only and profile != args.only:
            continue
        state = stack.up("local", profile, args.base_port)
        try:
            store_dir = None
            if args.start_from_big and profile == "fragile":
                store_dir = tempfile.mkdtemp(prefix="bench-explore-store-")
                from chaos.explore.spaces import as_spaces
                big = Schedule((Step(0.0, 8.0, "latency", link="listener.edge-c", params=(("latency_ms", 100), ("jitter_ms", 0))),
                                Step(2.0, 6.0, "dc_loss", dc="dc-a"),
                                Step(4.0, 4.0, "packet_drop", service="edge-b", params=(("share", 0.05), ("direction", "both")))))
                Store(store_dir, store_key(state.topology.name, as_spaces(faults), slos)).add(big, (1, 1))
            t0 = time.monotonic()
            res = explore_stack(state, faults=faults, steady_state=slos, budget_s=args.budget,
                                span_s=10, seed=args.seed, reports_dir=reports, store_dir=store_dir,
                                progress=lambda m: print(m, flush=True))
            took = time.monotonic() - t0
            print(res.text)
            e = res.exploration
            print(f"FIGURES {profile}: {took:.0f} s, {e.tried} schedules, {e.runs} runs, found={e.found}, "
                  f"minimal={e.minimal.describe() if e.minimal else '-'}, rate={e.rate[0]}/{e.rate[1]}, "
                  f"spread={e.spread}", flush=True)
        finally:
            stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
