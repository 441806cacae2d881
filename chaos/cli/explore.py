"""``chaos explore``: generated fault schedules against the running stack, shrunk.

    chaos explore [--faults dc_loss latency packet_drop] [--slo join_time ...] [--budget 10m]
                  [--max-faults 3] [--span 20] [--grid 2] [--repeats 3] [--seed N]
                  [--target FILE] [--reports DIR] [--store DIR | --no-store] [--json]
    chaos explore --replay reports/<run-id>/schedule.json [--repeats 3]

A catalogue entry is ``KIND[@WHERE[+WHERE...]][:PARAM=LO..HI[..GRID]]``: ``dc_loss@dc-c``,
``latency:latency_ms=10..90``, ``packet_drop@edge-b+edge-c:share=0.05..0.3``; WHERE is a
DC for dc_loss/dc_partition, a service for packet_drop/cpu_starve, a link otherwise.

Exit codes: 0 nothing broke within the budget (or a replay never broke); 1 a breaking
schedule was found (or a replay broke); 2 usage; 4 inconclusive: every run said nothing
(the gate refused a sick stack, ...), so nothing was measured; 5 no stack up or not healthy.
"""

from __future__ import annotations

import json
import re

from chaos.core.errors import ConfigError
from chaos.core.exits import Exit
from chaos.explore.spaces import WHERE, Space, space

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$", re.ASCII)  # '١٠m' is no budget


def add_parser(sub, parser_class) -> None:
    ex = sub.add_parser("explore", help="generated fault schedules: find one that breaks the "
                        "steady state and shrink it to the smallest")
    ex.add_argument("--faults", nargs="+", default=["dc_loss", "latency", "packet_drop"],
                    metavar="KIND[@WHERE][:P=LO..HI]",
                    help="the catalogue (default: dc_loss latency packet_drop)")
    ex.add_argument("--slo", action="append", default=[], metavar="SLI[=T[@W]]",
                    help="a required SLO (repeat; default: join_time and audio_delivered)")
    ex.add_argument("--budget", default="10m", metavar="TIME",
                    help="time budget: 90s, 10m, 1h (default 10m)")
    ex.add_argument("--max-faults", type=int, default=3, metavar="N",
                    help="at most N faults in a drawn schedule (default 3)")
    ex.add_argument("--span", type=float, default=20.0, metavar="S",
                    help="every fault starts and ends within S seconds (default 20)")
    ex.add_argument("--grid", type=float, default=2.0, metavar="S",
                    help="start times and durations on an S-second grid (default 2)")
    ex.add_argument("--repeats", type=int, default=3, metavar="N",
                    help="runs of the minimal schedule for its reproduction rate (default 3)")
    ex.add_argument("--max-examples", type=int, default=100, metavar="N",
                    help="draw at most N schedules (Hypothesis's max_examples; default 100)")
    ex.add_argument("--seed", type=int, default=None, help="Hypothesis's seed (reproducible draws)")
    ex.add_argument("--target", default=None, metavar="FILE",
                    help="a target description: your own stack instead of the reference one")
    ex.add_argument("--reports", default="reports", metavar="DIR",
                    help="where each run writes reports/<run-id>/ (default: reports)")
    ex.add_argument("--store", default=None, metavar="DIR",
                    help="where found examples are kept (default: DIR/explore-examples of --reports)")
    ex.add_argument("--no-store", action="store_true", help="neither replay nor keep examples")
    ex.add_argument("--replay", default=None, metavar="SCHEDULE_JSON",
                    help="run a found schedule again --repeats times and print its rate")
    from chaos.cli import JSON_HELP
    ex.add_argument("--json", action="store_true", help=JSON_HELP)


def parse_budget(text: str) -> float:
    m = _DURATION.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"--budget {text!r}: write a time like 90s, 10m or 1h")
    return float(m.group(1)) * {"s": 1, None: 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]


def parse_space(text: str) -> Space:
    """``latency@listener.edge-a:latency_ms=10..90`` -> a Space."""
    head, _, bounds_text = text.partition(":")
    kind, _, where = head.partition("@")
    kind = kind.strip()
    if kind not in WHERE:
        raise ConfigError(f"--faults {text!r}: unknown kind {kind!r}; the search draws "
                          f"{', '.join(WHERE)}")
    kw: dict = {}
    if where:
        field = {"dc": "dcs", "service": "services", "link": "links"}.get(WHERE[kind])
        if field is None:
            raise ConfigError(f"--faults {text!r}: {kind} takes no @WHERE")
        kw[field] = tuple(w for w in where.split("+") if w)
    for part in filter(None, bounds_text.split(",")):
        name, sep, rng = part.partition("=")
        nums = rng.split("..")
        try:
            values = tuple(float(x) for x in nums) if rng.isascii() else ()   # float() reads '١' too
        except ValueError:
            values = ()
        if not sep or len(values) not in (2, 3):
            raise ConfigError(f"--faults {text!r}: write PARAM=LO..HI or PARAM=LO..HI..GRID, "
                              "e.g. latency:latency_ms=10..90")
        kw[name.strip()] = values
    return space(kind, **kw)


def cmd(args, console, progress) -> int:
    from chaos.targets import stack
    from chaos.runner.history import parse_override
    from chaos.core.slo import objective
    from chaos.explore.stack import explore_stack, replay

    if args.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {args.repeats}")
    # usage first (exit 2), before the stack is looked at
    budget_s = parse_budget(args.budget)
    slos = [parse_override(s) if "=" in s else objective(s) for s in args.slo] or None
    spaces = [parse_space(f) for f in args.faults]
    state = stack.current(args.target)
    stack.require_healthy(state)
    if args.replay:
        broke, runs, outs = replay(state, args.replay, args.repeats, args.reports, progress)
        if args.json:
            print(json.dumps({"broke": broke, "runs": runs,
                              "runs_dirs": [o.run_dir for o in outs],
                              "slos_broken": sorted({n for o in outs for n in o.broke})}, indent=2))
        else:
            console.print(f"{broke} of {runs} run(s) broke "
                          f"{', '.join(sorted({n for o in outs for n in o.broke})) or 'nothing'}")
            for o in outs:
                if o.failed:
                    console.print(f"  {o.sentences[0] if o.sentences else o.reason}")
                console.print(f"  report: {o.run_dir}/report.html", soft_wrap=True)
        return Exit.NO if broke else Exit.OK if runs else Exit.INCONCLUSIVE
    store = None if args.no_store else (args.store or f"{args.reports}/explore-examples")
    again = (f"chaos explore --faults {' '.join(args.faults)} --budget {args.budget}"
             + (f" --seed {args.seed}" if args.seed is not None else ""))
    res = explore_stack(state, faults=spaces, steady_state=slos, budget_s=budget_s,
                        max_faults=args.max_faults, span_s=args.span, grid_s=args.grid,
                        min_duration_s=args.grid, repeats=args.repeats,
                        max_examples=args.max_examples, seed=args.seed,
                        reports_dir=args.reports, store_dir=store, progress=progress)
    if args.json:
        print(json.dumps(res.doc, indent=2))
    else:
        console.print(res.text, soft_wrap=True, markup=False)
        if res.found:
            console.print(f"Search again: {again}", soft_wrap=True, markup=False)
    return {"failed": Exit.NO, "passed": Exit.OK}.get(res.exploration.verdict, Exit.INCONCLUSIVE)
