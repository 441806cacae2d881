"""Benchmark (not a test): how long `chaos readiness` takes, and this machine's per-tier
capacity figures it measured.

    .venv/bin/python bench/readiness.py [--quick] [--base-port 26000] [--survive dc_loss]

Starts a local resilient stack (in its own CHAOS_HOME, taken down after), runs one
readiness assessment against the incident's demand (600,000 listeners at 50,000/min: far
above what 2 cores can serve, so every tier is swept to its knee), and prints the elapsed
time against the budget (quick <= 3 min, default <= 15 min), each sweep's capacity and
knee per fleet size, the USL parameters, the machine's load average, and readiness.json's
path. Run the default form at most once on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUDGET_S = {"quick": 180.0, "default": 900.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--base-port", type=int, default=26000)
    ap.add_argument("--survive", choices=("none", "dc_loss"), default="dc_loss")
    ap.add_argument("--reports", default=None, help="default: a temporary directory")
    args = ap.parse_args()
    os.environ["CHAOS_HOME"] = tempfile.mkdtemp(prefix="chaos-bench-readiness-")
    reports = args.reports or tempfile.mkdtemp(prefix="chaos-bench-readiness-reports-")
    from chaos.targets import stack
    from chaos.readiness import Demand, assess

    state = stack.up("local", "resilient", args.base_port)
    try:
        t0 = time.monotonic()
        a = assess(Demand.of(600_000, "50000/min"), state, survive=args.survive, quick=args.quick,
                   reports_dir=reports,
                   progress=lambda what, t, total, msg: print(f"  [{what}] {msg}", flush=True)
                   if t >= total else None)
        elapsed = time.monotonic() - t0
    finally:
        stack.down()
    form = "quick" if args.quick else "default"
    d = a.doc
    print(f"\nreadiness --{form}: {elapsed:.0f} s (budget {BUDGET_S[form]:.0f} s); load average "
          f"{d['machine_load']}; {os.cpu_count()} cores")
    print(f"verdict {d['verdict']}: {d['sentence']}")
    for m in d["measurements"]:
        unit = "joins/s" if m["tier"] == "join" else "listeners held"
        print(f"  {m['tier']:6} x{m['units']}: capacity {m['capacity']} {unit}, knee {m['knee']}, "
              f"limit {m['limit']} (run {m['run_id']})")
    for t in d["tiers"]:
        u = t.get("usl") or {}
        if u:
            print(f"  {t['tier']:6} USL: lambda {u['lambda']:.4g} +- {u['lambda_sd']:.2g}, sigma "
                  f"{u['sigma']:.3g} +- {u['sigma_sd']:.2g}, kappa {u['kappa']:.3g} +- {u['kappa_sd']:.2g}")
    if d.get("n_minus_1"):
        n1 = d["n_minus_1"]
        print(f"  dc_loss {n1['dc']} at {n1['rate_per_s']} joins/s: {n1['verdict']} ({n1['reason']})")
    print(f"scale: {d['scale']['described']}")
    print(f"readiness.json: {a.files['readiness.json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
