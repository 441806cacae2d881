"""`chaos gameday RUNBOOK.yaml [--target FILE] [--dry-run] [--auto] [--from STEP] [--only STEPS] [--json]`.

Exit codes (chaos.core.exits): the verdict's (for_verdict: 0 passed or the dry run planned
it, 1 failed or aborted, 4 inconclusive), 2 a bad runbook or flag (nothing was run), 5 no
stack up or not healthy.
"""

from __future__ import annotations

import json
import sys

from chaos.core.exits import Exit, for_verdict


def add_parser(sub, parser_class) -> None:
    gd = sub.add_parser("gameday", help="a guided game day from a runbook, with a live board")
    gd.add_argument("runbook", metavar="RUNBOOK", help="the runbook file (YAML)")
    gd.add_argument("--dry-run", action="store_true",
                    help="validate and plan against the target; inject nothing")
    gd.add_argument("--auto", action="store_true",
                    help="no board: prompts take their scripted (auto) or default answers")
    gd.add_argument("--from", dest="from_step", default=None, metavar="STEP",
                    help="start at this step (its id or number)")
    gd.add_argument("--only", default=None, metavar="STEPS",
                    help="run only these steps (ids or numbers, comma-separated)")
    gd.add_argument("--as", dest="who", default=None, metavar="NAME",
                    help="who is at the keyboard, for the timeline (default: the user name)")
    gd.add_argument("--target", default=None, metavar="FILE",
                    help="a target description (chaos-target.yaml): run against your own stack "
                         "instead of the runbook's target")
    gd.add_argument("--reports", default="reports", metavar="DIR",
                    help="where the run writes reports/<run-id>/ (default: reports)")
    from chaos.cli import JSON_HELP
    gd.add_argument("--json", action="store_true",
                    help=JSON_HELP + "; goes with --auto or --dry-run (the board needs the terminal)")


def cmd(args, console) -> int:
    from chaos.targets import stack
    from chaos.core.errors import ConfigError
    from chaos.targets.state import StackState
    from chaos.gameday.plan import load_plan
    from chaos.gameday.plan import target_file
    from chaos.gameday.runbook import load
    only = [s for s in args.only.split(",")] if args.only else None
    described = target_file(load(args.runbook), args.runbook, args.target)
    state = None if described is not None else StackState.load()
    gp = load_plan(args.runbook, state, args.from_step, only, auto=args.auto, target=described)
    if args.dry_run:
        if args.json:
            print(json.dumps({"runbook": args.runbook, "dry_run": True,
                              "plan": gp.describe().splitlines(), "exit": int(Exit.OK)}, indent=2))
            return Exit.OK
        print(gp.describe())
        console.print("dry run: validated and planned against the target; nothing was injected")
        return Exit.OK
    if args.json and not args.auto:
        raise ConfigError("--json goes with --auto or --dry-run: the game-day board needs the "
                          "terminal, and stdout carries the one JSON object")
    if not args.auto and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError("the game-day board needs a terminal; run with --auto (prompts take "
                          "their scripted or default answers) or from a terminal")
    if described is not None:
        from chaos.targets.external import attach
        from chaos.targets.file import check_live
        state = attach(gp.topology)
        check_live(state.topology)
    else:
        state = stack.current()
    from chaos.gameday.run import run
    reproduce = " ".join(["chaos gameday", args.runbook, "--auto"]
                         + (["--target", args.target] if args.target else [])
                         + (["--from", args.from_step] if args.from_step else [])
                         + (["--only", args.only] if args.only else []))

    def progress(t_s: float, total_s: float, msg: str) -> None:
        from rich.markup import escape
        console.print(f"[dim]\\[{t_s:6.1f} s] {escape(msg)}[/dim]")

    if args.auto:
        result = run(gp, state, args.reports, auto=True, progress=progress, who=args.who,
                     reproduce=reproduce)
    else:
        from chaos.gameday.board import show
        result = run(gp, state, args.reports, board=show, who=args.who, reproduce=reproduce)
    code = for_verdict(result.verdict)
    if args.json:
        print(json.dumps({"runbook": args.runbook, "verdict": str(result.verdict),
                          "reason": result.record.reason, "run_dir": str(result.dir),
                          "files": {k: str(v) for k, v in result.files.items()},
                          "exit": int(code)}, indent=2))
        return code
    from chaos import report
    report.summary(result.record, console, report_path=result.files.get("html"))
    return code
