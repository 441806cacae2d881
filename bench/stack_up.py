"""Benchmark: how long `chaos stack up` takes (until every service is healthy), per runtime.

Runs up and down REPEAT times in a private CHAOS_HOME and prints the timings. For docker
the images must already be built (fixtures/setup.sh); the first up after a build is
included like any other.

    .venv/bin/python bench/stack_up.py [--runtime local|docker] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runtime", choices=("local", "docker"), default="local")
    p.add_argument("--profile", choices=("resilient", "fragile"), default="resilient")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--base-port", type=int, default=25000)
    args = p.parse_args()
    os.environ["CHAOS_HOME"] = tempfile.mkdtemp(prefix="chaos-bench-")
    from chaos.targets import stack

    ups, downs = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        stack.up(args.runtime, args.profile, args.base_port)
        ups.append(time.perf_counter() - t)
        t = time.perf_counter()
        stack.down()
        downs.append(time.perf_counter() - t)
    print(json.dumps({"runtime": args.runtime, "profile": args.profile, "repeat": args.repeat,
                      "up_s": [round(x, 2) for x in ups], "up_median_s": round(statistics.median(ups), 2),
                      "down_median_s": round(statistics.median(downs), 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
