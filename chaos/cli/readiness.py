"""`chaos readiness`: the go / no-go verdict with measured headroom (exit codes, chaos.core.exits:
0 GO, 1 NO-GO, 2 usage, 3 GO-AT-RISK, 4 INCONCLUSIVE, 5 no stack up or not healthy)."""

from __future__ import annotations

import argparse
import json

from chaos.core.errors import ConfigError


def add_parser(sub, parser_class) -> None:
    rd = sub.add_parser("readiness", help="a go / no-go verdict for an event, with measured headroom")
    rd.add_argument("--audience", type=int, default=None, metavar="N",
                    help="listeners at once at the event's peak (e.g. 600000)")
    rd.add_argument("--join-rate", default=None, metavar="R",
                    help="peak arrival rate: 833, 833/s, 50000/min")
    # --ramp and --session were taken and never used: refused with the reason (chaos.readiness.demand.UNUSED)
    rd.add_argument("--ramp", default=None, help=argparse.SUPPRESS)
    rd.add_argument("--session", default=None, help=argparse.SUPPRESS)
    rd.add_argument("--survive", choices=("none", "dc_loss"), default="none",
                    help="dc_loss: one DC must be survivable (N-1), measured by losing one")
    rd.add_argument("--fleet", default=None, metavar="FILE",
                    help="the production fleet per DC and tier (YAML; may carry the event too); "
                         "default: the target's own")
    rd.add_argument("--headroom", type=float, default=0.3, metavar="H",
                    help="spare capacity wanted for GO, as a share (default 0.3)")
    rd.add_argument("--budget", default=None, metavar="D",
                    help="start no measurement once this is spent (e.g. 15m)")
    rd.add_argument("--quick", action="store_true", help="the short form for CI (<= 3 min here)")
    rd.add_argument("--max-rate", type=float, default=None, metavar="R",
                    help="cap the load generator at R joins/s (what a smaller load rig could fire)")
    rd.add_argument("--reports", default="reports", metavar="DIR", help="where runs are written")
    from chaos.cli import JSON_HELP
    rd.add_argument("--json", action="store_true", help="print readiness.json: " + JSON_HELP)
    rd.add_argument("--target", default=None, metavar="FILE",
                    help="a target description (chaos-target.yaml): your own stack instead of the reference one")


def cmd(args) -> int:
    from dataclasses import replace

    from chaos.targets import stack
    from chaos.readiness import Demand, Plan, assess, load_fleet
    from chaos.readiness.demand import parse_duration, refuse_unused

    for name in ("ramp", "session"):
        if getattr(args, name) is not None:
            raise refuse_unused(name, f"--{name}")
    fleet, event = (None, {})
    if args.fleet:
        fleet, event = load_fleet(args.fleet)
    audience = args.audience if args.audience is not None else event.get("audience")
    rate = args.join_rate if args.join_rate is not None else event.get("join_rate")
    if audience is None or rate is None:
        raise ConfigError("give the event's size: --audience N and --join-rate R (e.g. --audience "
                          "600000 --join-rate 50000/min), or an event: section in the --fleet file")
    demand = Demand.of(audience, rate)
    budget_s = parse_duration(args.budget, "--budget") if args.budget is not None else None
    plan = Plan.quick() if args.quick else Plan()
    if args.max_rate is not None:
        if not args.max_rate > 0:
            raise ConfigError(f"--max-rate must be more than 0 joins/s, got {args.max_rate:g}")
        plan = replace(plan, max_rate_per_s=args.max_rate)
    from chaos.readiness.assess import check_options
    check_options(args.headroom, args.survive, budget_s)
    state = stack.current(args.target)       # usage is checked before the stack is looked at
    if args.fleet:
        fleet, _ = load_fleet(args.fleet, state.topology)
    a = _run(demand, state, fleet, args, budget_s, plan)
    if args.json:
        print(json.dumps(a.doc, indent=1))
    else:
        _summary(a)
    return a.exit_code


def _run(demand, state, fleet, args, budget_s, plan):
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from chaos.readiness import assess
    console = Console(stderr=True, highlight=False)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("readiness: starting", total=None)
        current = {"what": ""}

        def progress(what: str, t: float, total: float, msg: str) -> None:
            if what != current["what"]:
                if current["what"]:
                    bar.console.print(f"[dim]{current['what']} done[/dim]")
                current["what"] = what
            bar.update(task, description=f"{what}: [{t:4.0f}/{total:.0f} s] {msg}")
        return assess(demand, state, fleet=fleet, headroom=args.headroom, survive=args.survive,
                      quick=args.quick, budget_s=budget_s, reports_dir=args.reports, plan=plan,
                      progress=progress)


def _summary(a) -> None:
    from rich.console import Console
    from rich.table import Table

    from chaos.report import fmt

    c = Console(highlight=False)
    colour = {"GO": "green", "GO-AT-RISK": "yellow", "NO-GO": "red"}.get(str(a.verdict.verdict), "magenta")
    c.print(f"[bold {colour}]{a.verdict.verdict}[/]: {a.verdict.sentence}")
    t = Table(title=f"scale: {a.doc['scale']['described']}")
    for col in ("tier", "demand", "capacity", "headroom", "N-1", "fleet for GO", "verdict"):
        t.add_column(col)
    for tr in a.verdict.tiers:
        t.add_row(tr.tier, fmt.quantity(tr.demand, tr.unit), tr.capacity_text(),
                  fmt.share(tr.headroom), fmt.share(tr.headroom_n1),
                  f"{tr.needed_units} ({tr.needed_per_dc}/DC)" if tr.needed_units else "-",
                  str(tr.verdict))
    c.print(t)
    for r in a.verdict.reasons:
        c.print(f"  - {r}", soft_wrap=True)
    for tr in a.verdict.tiers:
        if tr.beyond:
            c.print(f"  [yellow]{tr.tier}: {tr.beyond}[/]", soft_wrap=True)
    c.print(f"readiness: {a.files['readiness.html']}", soft_wrap=True)
