"""Where the suite's time goes, from a JUnit file: by layer, by xdist group, slowest tests.

    .venv/bin/pytest -n 2 --junitxml=/tmp/suite.xml        # the README's test command, plus a JUnit file
    .venv/bin/python bench/suite_times.py /tmp/suite.xml     # the tables
    .venv/bin/python bench/suite_times.py /tmp/suite.xml --write   # also bench/suite_times.json

``bench/suite_times.json`` (group -> seconds) is what the root conftest.py orders the groups
by under two workers, longest first, so the run does not end waiting on one long group. The
JUnit file's times are each test's own (set-up, call and teardown); the wall time of a run
with two workers is about the larger of the two workers' sums.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "suite_times.json"


def _conftest():
    spec = importlib.util.spec_from_file_location("suite_conftest", ROOT / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _path_of(case: ET.Element) -> Path:
    """The test file of a JUnit testcase (classname: tests.unit.test_x[.Class])."""
    classname = case.get("classname", "")
    if classname.endswith(".yaml"):          # a runbook collected as a test: dir.name.yaml
        return ROOT.joinpath(*classname[:-len(".yaml")].split(".")).with_suffix(".yaml")
    parts = classname.split(".")
    for n in range(len(parts), 0, -1):
        p = ROOT.joinpath(*parts[:n]).with_suffix(".py")
        if p.exists():
            return p
    return ROOT / (case.get("file") or "unknown.py")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("junit", help="a JUnit XML file written by pytest --junitxml")
    ap.add_argument("--write", action="store_true", help=f"write the groups' times to {OUT.relative_to(ROOT)}")
    ap.add_argument("--top", type=int, default=25, help="how many of the slowest tests to list")
    args = ap.parse_args(argv)
    suite = _conftest()
    try:
        root = ET.parse(args.junit).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"suite_times: cannot read {args.junit}: {e}", file=sys.stderr)
        return 2
    layers: dict[str, float] = defaultdict(float)
    groups: dict[str, float] = defaultdict(float)
    tests: list[tuple[float, str]] = []
    for case in root.iter("testcase"):
        t = float(case.get("time") or 0.0)
        parts = suite._parts(_path_of(case))
        layer = suite._layer(parts) or "other"
        layers[layer] += t
        group = suite._group(parts, layer)
        groups[group or f"(ungrouped {layer})"] += t
        tests.append((t, f"{case.get('classname')}::{case.get('name')}"))
    total = sum(layers.values())
    print(f"{'layer':<28}{'seconds':>9}")
    for name, t in sorted(layers.items(), key=lambda kv: -kv[1]):
        print(f"{name:<28}{t:>9.0f}")
    print(f"{'total (one worker)':<28}{total:>9.0f}\n")
    print(f"{'xdist group':<40}{'seconds':>9}")
    for name, t in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"{name:<40}{t:>9.0f}")
    print(f"\nslowest {args.top} tests")
    for t, name in sorted(tests, reverse=True)[:args.top]:
        print(f"{t:>8.1f}  {name}")
    if args.write:
        OUT.write_text(json.dumps({k: round(v, 1) for k, v in sorted(groups.items())
                                   if not k.startswith("(")}, indent=1) + "\n")
        print(f"\nwrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
