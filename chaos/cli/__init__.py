"""The `chaos` command (also installed as `chaos-audio`): stack, probe, fault, report,
readiness, gameday, explore, target. Its commands and exit codes are a contract that scripts
and CI rely on (chaos.core.exits, printed at the end of every --help).

Every command takes --json: stdout then carries exactly one JSON object, errors included
(``{"error": ..., "what_to_do": ..., "exit": N}``). Errors are mapped to exit codes in one
place, ``exit_for``: a bad argument or input file is 2, an environment that is not ready
(no stack up, unhealthy, unreachable, a tool missing) 5, Ctrl-C 130."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from chaos.adapters.space.reference import DEFAULT_BASE_PORT, PROFILES, RUNTIMES

from chaos.cli import fault as cli_fault, readiness as cli_readiness
from chaos.targets import stack
from chaos.core import errors
from chaos.core.errors import ChaosError, ConfigError
from chaos.core.exits import EPILOG, Exit, for_verdict, for_verdicts
from chaos.core.validate import MAX_LISTENERS, MAX_THICK_PER_DC, arg, integer, seconds

DIST = "chaos-audio"
JSON_HELP = "print one JSON object on stdout (errors too: {\"error\", \"what_to_do\", \"exit\"})"

# Whether this invocation asked for --json: set by main() from its argv before parsing, so
# that argparse's own errors (exit 2) and --version answer in JSON too.
_json_mode = False


def wants_json(argv: list[str]) -> bool:
    """--json anywhere among the options (before a `--`)."""
    for a in argv:
        if a == "--":
            return False
        if a == "--json":
            return True
    return False


def emit_error(message: str, what_to_do: str, code: int, kind: str | None = None,
               problems: list | None = None) -> None:
    """The one JSON error object on stdout (under --json); ``problems``: where in an input
    file (a runbook's line, column, field), when the error knows."""
    doc = {"error": message, "what_to_do": what_to_do, "exit": int(code)}
    if kind:
        doc["kind"] = kind
    if problems:
        doc["problems"] = problems
    print(json.dumps(doc, indent=2, default=str), flush=True)


class _Parser(argparse.ArgumentParser):
    """Every parser ends its --help with the exit codes and answers bad usage with exit 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("epilog", EPILOG)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # exit 2 with the usage, like argparse, plus a pointer
        what_to_do = f"Run `{self.prog} --help` for the accepted values."
        if _json_mode:
            emit_error(f"{self.prog}: {message}", what_to_do, Exit.USAGE, "usage")
        self.print_usage(sys.stderr)
        self.exit(Exit.USAGE, f"{self.prog}: error: {message}\n{what_to_do}\n")


def version() -> str:
    """The installed package's version, else the source tree's (chaos.__version__)."""
    from importlib import metadata
    try:
        return metadata.version(DIST)
    except metadata.PackageNotFoundError:
        import chaos
        return str(getattr(chaos, "__version__", "unknown"))


class _Version(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print the version and exit (with --json: {\"version\": ...})"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        v = version()
        print(json.dumps({"version": v}) if _json_mode else f"chaos {v}", flush=True)
        parser.exit(Exit.OK)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="chaos", description="Chaos and SLO tests for live audio rooms.")
    p.add_argument("--version", action=_Version)
    p.add_argument("--json", action="store_true", dest="json_global",
                   help="as a command's --json: " + JSON_HELP)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    st = sub.add_parser("stack", help="the reference space stack")
    st_sub = st.add_subparsers(dest="action", required=True, parser_class=_Parser)
    up = st_sub.add_parser("up", help="start the stack and wait until it is healthy")
    up.add_argument("--runtime", choices=RUNTIMES, default="local",
                    help="local processes (default) or docker containers")
    up.add_argument("--profile", choices=PROFILES, default="resilient",
                    help="resilient (default): standbys, admission control, backed-off retries; "
                         "fragile: like the incident, single points of failure")
    up.add_argument("--base-port", type=arg(integer, lo=1024, hi=64535), default=DEFAULT_BASE_PORT,
                    help=f"first port of the ~520 the stack uses (default {DEFAULT_BASE_PORT})")
    up.add_argument("--gateways-per-dc", type=arg(integer, lo=1, hi=9), default=1, metavar="N",
                    help="gateways in each DC: gateway-a, gateway-a2, ... (local runtime; default 1)")
    up.add_argument("--edges-per-dc", type=arg(integer, lo=1, hi=9), default=1, metavar="N",
                    help="edges in each DC: edge-a, edge-a2, ... (local runtime; default 1)")
    up.add_argument("--timeout", type=arg(seconds, positive=True), default=None, metavar="S",
                    help="give up if not healthy after S seconds (default 45 local, 240 docker)")
    status = st_sub.add_parser("status", help="services, DC, health, address")
    status.add_argument("--target", default=None, metavar="FILE", help="a target description (chaos-target.yaml): your own stack instead of the reference one")
    down = st_sub.add_parser("down", help="stop the stack and remove what it created")
    for p_ in (up, down):   # a described stack is yours: say so rather than "unrecognized"
        p_.add_argument("--target", default=None, metavar="FILE", help=argparse.SUPPRESS)
    for p_ in (up, status, down):
        p_.add_argument("--json", action="store_true", help=JSON_HELP)
    cli_fault.add_reset_parser(st_sub)

    pr = sub.add_parser("probe", help="join listeners, listen, print the SLIs measured")
    pr.add_argument("--listeners", type=arg(integer, lo=1, hi=MAX_LISTENERS), default=20, metavar="N",
                    help=f"listeners to join (1 to {MAX_LISTENERS}; default 20)")
    pr.add_argument("--seconds", type=arg(seconds, positive=True), default=5.0, metavar="S",
                    help="listen S seconds once joined (default 5)")
    pr.add_argument("--join-timeout", type=arg(seconds, positive=True, hi=600.0), default=5.0,
                    metavar="S", help="a listener not joined within S seconds failed to join (default 5)")
    pr.add_argument("--thick-per-dc", type=arg(integer, lo=0, hi=MAX_THICK_PER_DC), default=1,
                    metavar="K",
                    help="listeners per DC that decode and analyse the audio (default 1)")
    pr.add_argument("--rate", default=None, metavar="R",
                    help="also an open-loop audience arriving at R joins/s (833, 50000/min, ...)")
    pr.add_argument("--engine", default="local", choices=("local", "swarm", "k8s"),
                    help="fire the arriving audience from local processes (default), a Docker "
                         "Swarm service, or a Kubernetes Indexed Job (manifests written to k8s/)")
    pr.add_argument("--shards", type=int, default=1, metavar="N",
                    help="split the arriving audience over N shards on the engine (default 1)")
    pr.add_argument("--sink", default=None, metavar="HOST:PORT",
                    help="where the shards reach this machine's coordinator (k8s, remote swarm)")
    pr.add_argument("--json", action="store_true", help=JSON_HELP)
    pr.add_argument("--target", default=None, metavar="FILE", help="a target description (chaos-target.yaml): your own stack instead of the reference one")
    cli_fault.add_fault_parser(sub, _Parser)
    cli_readiness.add_parser(sub, _Parser)

    from chaos.cli import gameday as gameday_cli
    gameday_cli.add_parser(sub, _Parser)

    rp = sub.add_parser("report", help="re-render a journal into report.html, junit.xml and a summary")
    rp.add_argument("journal", metavar="JOURNAL", help="reports/<run-id>/journal.json (or its directory)")
    rp.add_argument("--out", default=None, metavar="DIR",
                    help="write the files here (default: next to the journal; with --rejudge, "
                         "its rejudged/ folder)")
    rp.add_argument("--rejudge", action="store_true",
                    help="judge the run again from its recorded history (history.npz)")
    rp.add_argument("--objective", action="append", default=[], metavar="SLI=T[@W]",
                    help="with --rejudge: another threshold T (and window W s) for an SLI, "
                         "e.g. join_time=3 or audio_delivered=0.99@10 (repeat for more)")
    rp.add_argument("--json", action="store_true", help=JSON_HELP)
    from chaos.cli.explore import add_parser as add_explore_parser
    add_explore_parser(sub, _Parser)
    from chaos.cli import target as cli_target
    cli_target.add_parser(sub, _Parser)
    cp = sub.add_parser("completion", help="print a shell completion script (bash, zsh or tcsh)",
                        description="Print the completion script of chaos (and chaos-audio) for a "
                                    "shell, e.g. `chaos completion bash > ~/.local/share/bash-completion"
                                    "/completions/chaos`, or `eval \"$(chaos completion zsh)\"`.")
    cp.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    cp.add_argument("--json", action="store_true", help=JSON_HELP)
    return p


SHELLS = ("bash", "zsh", "tcsh")


def _completion(args) -> int:
    """The shell's completion script, generated from the parser itself (shtab)."""
    try:
        import shtab
    except ImportError as e:
        raise errors.MissingTool("shell completion needs shtab: pip install shtab") from e
    parser = _parser()
    script = shtab.complete(parser, shell=args.shell)
    # the same completion for the second console script
    if args.shell == "bash":
        script += "\ncomplete -o filenames -F _shtab_chaos chaos-audio\n"
    elif args.shell == "zsh":
        script += "\ncompdef _shtab_chaos chaos-audio\n"
    if args.json:
        print(json.dumps({"shell": args.shell, "script": script, "exit": int(Exit.OK)}))
    else:
        sys.stdout.write(script)
    return Exit.OK


def _console(stderr: bool = False):
    from rich.console import Console
    return Console(stderr=stderr, highlight=False)


def _progress(msg: str) -> None:
    _console(stderr=True).print(f"[dim]{msg}[/dim]")


def cmd_stack(args) -> int:
    if args.action in ("up", "down") and args.target:
        raise ConfigError(f"`chaos stack {args.action}` starts and stops the reference stack only; "
                          f"a described target ({args.target}) is started and stopped by you (its "
                          "file's commands.up/down, if it has them); the other commands take --target")
    if args.action == "up":
        if args.timeout is not None and args.timeout <= 0:
            raise ConfigError(f"--timeout must be more than 0 s, got {args.timeout}")
        state = stack.up(args.runtime, args.profile, args.base_port, args.timeout, _progress,
                         gateways_per_dc=args.gateways_per_dc, edges_per_dc=args.edges_per_dc)
        gws = [s.public for s in state.topology.of_kind("gateway")]
        if args.json:
            print(json.dumps({"stack_id": state.stack_id, "runtime": state.runtime,
                              "profile": state.profile, "services": len(state.topology.services),
                              "healthy": True, "gateways": gws}, indent=2))
            return Exit.OK
        gws = ", ".join(gws)
        _console().print(f"stack [bold]{state.stack_id}[/bold] is up: {state.runtime} runtime, "
                         f"{state.profile} profile, {len(state.topology.services)} services healthy; "
                         f"gateways at {gws}")
        return Exit.OK
    if args.action == "reset":
        return cli_fault.cmd_reset(args)
    if args.action == "status":
        state = stack.current(args.target)
        rows = stack.status(state)
        if args.json:
            print(json.dumps({"stack_id": state.stack_id, "runtime": state.runtime,
                              "profile": state.profile, "started_at": state.started_at,
                              "healthy": all(r.healthy for r in rows),
                              "services": [r.to_dict() for r in rows]}, indent=2))
        else:
            from rich.table import Table
            t = Table(title=f"{state.stack_id}: {state.runtime}, {state.profile or state.topology.source}, "
                            f"since {state.started_at}")
            for col in ("service", "DC", "health", "address", "detail"):
                t.add_column(col)
            for r in rows:
                t.add_row(r.name, r.dc or "-", "[green]healthy[/]" if r.healthy else "[red]unhealthy[/]",
                          r.address, r.detail)
            _console().print(t)
        return Exit.OK if all(r.healthy for r in rows) else Exit.NOT_READY
    removed = stack.down(_progress)
    if args.json:
        print(json.dumps({"removed": list(removed)}, indent=2))
    elif not removed:
        _console().print("no stack is up: nothing to do")
    else:
        _console().print(f"stack down: removed {len(removed)} things")
        for r in removed:
            _console().print(f"  [dim]{r}[/dim]")
    return Exit.OK


def cmd_probe(args) -> int:
    from chaos.load import parse_rate
    from chaos.session.probe import run_probe, validate
    rate = parse_rate(args.rate) if args.rate is not None else None
    validate(args.listeners, args.seconds, args.join_timeout, args.thick_per_dc, rate)
    from chaos.scale.config import ScaleOut
    scale = ScaleOut(args.engine, args.shards, sink=args.sink)
    if scale.scaled and rate is None:
        raise ConfigError(f"--engine {args.engine} --shards {args.shards} splits an arriving "
                          "audience over shards: give its rate too (--rate 833)")
    state = stack.current(args.target)
    stack.require_healthy(state)
    result = asyncio.run(run_probe(state.topology, args.listeners, args.seconds, args.join_timeout,
                                   thick_per_dc=args.thick_per_dc, rate=rate, scale=scale))
    doc = result.to_dict(state.topology)
    doc["scale"].update(scale.to_dict())     # which engine, how many shards
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        from rich.table import Table
        t = Table(title=f"probe: {doc['listeners_joined']} of {doc['listeners_requested']} listeners joined "
                        f"(+{doc['thick_listeners']} thick), {doc['seconds']:g} s; "
                        f"scale: {doc['scale']['described']} ({scale.describe()})")
        for col in ("SLO", "objective", "value", "verdict"):
            t.add_column(col)
        for s in result.slos:
            colour = {"passed": "green", "failed": "red"}.get(s.verdict, "yellow")
            from chaos.core.slo import SLIS
            from chaos.report import fmt
            value = "-" if s.value is None else fmt.value(s.name, SLIS[s.name].unit if s.name in SLIS else "",
                                                          s.value)
            t.add_row(s.name, s.objective, value, f"[{colour}]{s.verdict}[/]")
        _console().print(t)
        for s in result.slos:
            if s.verdict == "inconclusive" and s.note:
                _console().print(f"[yellow]{s.name}:[/] {s.note}")
        for p in doc["probe"]["processes"]:
            if p.get("seconds"):
                _console().print(f"[dim]{p['label']} (pid {p['pid']}): lag max {p['lag_ms_max']:g} ms, "
                                 f"CPU mean {p['cpu_pct_mean']:g} %, memory {p['rss_mb_at_1min']:g} MB "
                                 f"after 1 min (or its end), {p['rss_mb_end']:g} MB at the end[/]")
        for e in doc["join_errors"]:
            _console().print(f"[yellow]join error:[/] {e}")
    return probe_exit(result.slos)


def probe_exit(slos) -> Exit:
    """A probe's exit code from its SLIs' verdicts: 1 if any failed, else 4 if any (or all)
    could not be measured, else 0."""
    return for_verdicts(s.verdict for s in slos)


def _report(args) -> int:
    """Re-render a journal; exit 0 when the files were written, whatever the run's verdict;
    with --rejudge, the new verdict's code (for_verdict)."""
    from pathlib import Path

    from chaos import report
    journal = report.load(args.journal)  # before anything is written: a bad journal leaves no files
    run_dir = report.journal_path(args.journal).parent
    out = Path(args.out) if args.out else run_dir
    if args.objective and not args.rejudge:
        raise ConfigError("--objective goes with --rejudge (judge the run again with it)")
    if args.rejudge:
        from chaos.runner.history import parse_override, rejudge
        from chaos.runner.journal import document, write
        journal = rejudge(document(journal), run_dir, [parse_override(t) for t in args.objective])
        out = Path(args.out) if args.out else run_dir / "rejudged"
        out.mkdir(parents=True, exist_ok=True)
        write(journal, out)
        was = journal.rejudged.was.verdict
        if not args.json:
            _console().print(f"judged again: {was} -> {journal.verdict} ({journal.reason})")
    paths = report.render(journal, out)
    code = for_verdict(journal.verdict) if args.rejudge else Exit.OK
    if args.json:
        doc = {"journal": str(report.journal_path(args.journal)), "verdict": str(journal.verdict),
               "reason": journal.reason, "rejudged": bool(args.rejudge),
               "files": {k: str(v) for k, v in paths.items()}, "exit": int(code)}
        if args.rejudge:
            doc["was"] = str(was)
            doc["files"]["journal"] = str(out / "journal.json")
        print(json.dumps(doc, indent=2))
        return code
    report.summary(journal, _console(), report_path=paths["html"])
    _console().print(f"junit: {paths['junit']}", soft_wrap=True)
    return code


# Errors as exit codes, in one place; the first class that matches wins. A ConfigError is
# the user's input; every other error the framework raises on purpose means the environment
# could not do what was asked (no stack, unhealthy, unreachable, a tool or a permission
# missing): the verdict was never reached.
_ERRORS: tuple[tuple[type[BaseException], Exit, str], ...] = (
    (errors.ConfigError, Exit.USAGE,
     "Fix the argument or input file named above; `chaos <command> --help` lists what is accepted."),
    (errors.StackNotUp, Exit.NOT_READY,
     "Start the reference stack with `chaos stack up`, or name your own with --target FILE."),
    (errors.StackAlreadyUp, Exit.NOT_READY,
     "Use the stack that is up, or stop it first with `chaos stack down`."),
    (errors.MissingTool, Exit.NOT_READY,
     "Install the program named above (fixtures/setup.sh installs the reference stack's tools)."),
    (errors.EngineUnavailable, Exit.NOT_READY,
     "Start the docker engine (or use --runtime local), then run the command again."),
    (errors.PortInUse, Exit.NOT_READY,
     "Free the port named above or choose another --base-port."),
    (errors.StateDamaged, Exit.NOT_READY,
     "`chaos stack down` sets the damaged state file aside; then `chaos stack up`."),
    (errors.StackError, Exit.NOT_READY,
     "See `chaos stack status`; `chaos stack reset`, or `chaos stack down` and `up`, to restart it."),
    (errors.ToxiproxyError, Exit.NOT_READY,
     "Check that the stack's toxiproxy answers (`chaos stack status`)."),
    (errors.ChaosError, Exit.NOT_READY,
     "The environment could not do what was asked (see above); "
     "`chaos stack reset` puts the stack back."),
)


def exit_for(error: BaseException) -> tuple[Exit, str]:
    """The exit code of an error, and what to do about it."""
    if isinstance(error, KeyboardInterrupt):
        return Exit.INTERRUPTED, "Interrupted; run it again. `chaos stack reset` reverts what a fault left."
    for cls, code, what_to_do in _ERRORS:
        if isinstance(error, cls):
            return code, what_to_do
    return Exit.NO, "An unexpected error (a bug): the traceback is on stderr; please report it."


def _dispatch(args) -> int:
    if args.command == "stack":
        return cmd_stack(args)
    if args.command == "fault":
        return cli_fault.cmd_fault(args)
    if args.command == "report":
        return _report(args)
    if args.command == "explore":
        from chaos.cli.explore import cmd
        return cmd(args, _console(stderr=args.json), _progress)
    if args.command == "readiness":
        return cli_readiness.cmd(args)
    if args.command == "target":
        from chaos.cli import target as cli_target
        return cli_target.cmd(args)
    if args.command == "completion":
        return _completion(args)
    if args.command == "gameday":
        from chaos.cli import gameday as gameday_cli
        return gameday_cli.cmd(args, _console(stderr=args.json))
    return cmd_probe(args)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (chaos.core.exits). Bad usage exits 2 from the parser
    (SystemExit, as argparse does), --version and --help exit 0."""
    global _json_mode
    argv = list(sys.argv[1:] if argv is None else argv)
    _json_mode = wants_json(argv)
    args = _parser().parse_args(argv)
    args.json = bool(getattr(args, "json", False) or args.json_global)
    try:
        return int(_dispatch(args))
    except (ChaosError, KeyboardInterrupt) as e:
        code, what_to_do = exit_for(e)
        words = " ".join(w for w in (args.command, getattr(args, "action", None)) if w)
        what_to_do = what_to_do.replace("chaos <command>", f"chaos {words}")
        message = str(e) or "interrupted"
        if isinstance(e, ConfigError):
            print(f"chaos: error: {message}", file=sys.stderr)
        else:
            print(f"chaos: {message}", file=sys.stderr)
        if args.json:
            emit_error(message, what_to_do, code, type(e).__name__, getattr(e, "problems", None))
        return int(code)
    except Exception as e:
        if not args.json:
            raise
        import traceback
        traceback.print_exc()
        code, what_to_do = exit_for(e)
        emit_error(f"{type(e).__name__}: {e}", what_to_do, code, type(e).__name__)
        return int(code)


if __name__ == "__main__":
    sys.exit(main())
