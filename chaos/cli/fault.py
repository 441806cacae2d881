"""`chaos fault plan|inject` and `chaos stack reset` (wired into cli.py).

    chaos fault plan NAME [--service S] [--dc D] [--link L] [--count C] [--param k=v ...]
    chaos fault inject NAME ... --duration S
    chaos stack reset

`plan` is the dry run: it resolves the fault against the stack (the one that is up, else
the topology of --runtime/--profile) and lists the actions; it touches nothing. `inject`
starts the dead-man switch, injects, holds, reverts (Ctrl-C reverts at once), all under
deadlines. Every bad input (unknown fault, bad parameter, a selector that matches nothing)
is refused with exit 2 before anything is injected. Exit codes (chaos.core.exits): 0 done,
2 usage, 5 no stack / not healthy / a step left unreverted or a reset that left the stack
unhealthy, 130 Ctrl-C (after the fault was reverted).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any

from chaos.adapters.space.reference import PROFILES, RUNTIMES, build

from chaos.targets import stack
from chaos.core.errors import ConfigError
from chaos.core.exits import Exit
from chaos.core.validate import MAX_RUN_S, arg, duration, parse_scalar, seconds, seed

MAX_DURATION_S = MAX_RUN_S


def add_fault_parser(sub, parser_class) -> None:
    fault = sub.add_parser("fault", help="faults: plan (dry run) or inject for a while")
    f_sub = fault.add_subparsers(dest="action", required=True, parser_class=parser_class)
    for name, helptext in (("plan", "list what a fault would do, touching nothing"),
                           ("inject", "inject a fault, hold it, revert it")):
        p = f_sub.add_parser(name, help=helptext)
        p.add_argument("name", metavar="NAME", help="the fault: dc_loss, dc_partition, latency, ...")
        p.add_argument("--service", help="a service name (edge-b) or kind (edge)")
        p.add_argument("--dc", help="a data center: dc-a, dc-b, dc-c")
        p.add_argument("--link", help="a link name, * globs allowed (edge-*.origin-a)")
        p.add_argument("--count", default="all", help="blast radius: all, one, N or P%% (default all)")
        p.add_argument("--seed", type=arg(seed), default=0, help="which matches one/N/P%% picks")
        p.add_argument("--param", action="append", default=[], metavar="K=V",
                       help="a parameter of the fault (repeat for more)")
        p.add_argument("--json", action="store_true", help=_json_help())
        p.add_argument("--target", default=None, metavar="FILE", help="a target description (chaos-target.yaml): your own stack instead of the reference one")
        if name == "plan":
            p.add_argument("--runtime", choices=RUNTIMES, default=None,
                           help="plan against this runtime's topology "
                                "(default: the stack that is up, else local)")
            p.add_argument("--profile", choices=PROFILES, default=None,
                           help="plan against this profile's topology "
                                "(default: the stack that is up, else resilient)")
        else:
            p.add_argument("--duration", type=arg(duration, hi=MAX_DURATION_S), required=True,
                           metavar="S",
                           help="hold the fault S seconds, then revert")
            p.add_argument("--force", action="store_true",
                           help="inject even if the stack is not healthy (no steady-state gate)")


def add_reset_parser(st_sub) -> None:
    r = st_sub.add_parser("reset", help="put the whole stack back: faults reverted, toxics, "
                                        "paused/stopped services, iptables rules, waits until healthy")
    r.add_argument("--timeout", type=arg(seconds, positive=True), default=None, metavar="S",
                   help="wait at most S seconds for health at the end (default 60 local, 120 docker)")
    r.add_argument("--json", action="store_true", help=_json_help())
    r.add_argument("--target", default=None, metavar="FILE", help="a target description (chaos-target.yaml): your own stack instead of the reference one")


def _json_help() -> str:
    from chaos.cli import JSON_HELP
    return JSON_HELP


def parse_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: write it as key=value, e.g. --param mode=freeze")
        out[key.strip()] = parse_scalar(raw)
    return out


def _spec(args):
    from chaos.faults import FaultSpec, Selector
    return FaultSpec(args.name, Selector(service=args.service, dc=args.dc, link=args.link,
                                         count=args.count, seed=args.seed),
                     parse_params(args.param))


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_fault(args) -> int:
    from chaos.faults import plan
    from chaos.targets.state import StackState

    spec = _spec(args)
    if args.action == "plan":
        if args.target:
            if args.runtime or args.profile:
                raise ConfigError("--target describes the stack: drop --runtime/--profile")
            from chaos.targets.file import load
            topo = load(args.target)
            state, against = None, f"target {topo.name} ({args.target}; not checked against a running stack)"
        else:
            state = StackState.load()
        if args.target:
            pass
        elif args.runtime or args.profile or state is None:
            runtime = args.runtime or (state.runtime if state else "local")
            profile = args.profile or (state.profile if state else "resilient")
            topo, against = build(runtime, profile), f"a {runtime} {profile} topology (not a running stack)"
        else:
            topo, against = state.topology, f"stack {state.stack_id} ({state.runtime}, {state.profile})"
        actions = plan(spec, topo)
        if args.json:
            _out(json.dumps({"fault": spec.name, "selector": spec.target.describe(),
                             "params": dict(spec.params), "against": against,
                             "actions": [a.to_dict() for a in actions]}, indent=2))
        else:
            _out(f"{spec.name} ({spec.target.describe()}) against {against}: "
                 f"{len(actions)} step(s), dry run, nothing touched")
            for i, a in enumerate(actions, 1):
                _out(f"  {i:>2}. {a.describe()}")
        return 0
    return _inject(spec, args)


def _inject(spec, args) -> int:
    from chaos.faults import Engine, plan
    from chaos.faults.executors import executors_for
    from chaos.faults.watchdog import guard

    if not 0 < args.duration <= MAX_DURATION_S:
        raise ConfigError(f"--duration must be more than 0 and at most {MAX_DURATION_S:g} s, "
                          f"got {args.duration:g}")
    from chaos.targets.state import StackState
    state = stack.current(args.target) if args.target else StackState.load()
    if state is None:                               # bad input first (exit 2), then no stack (5)
        plan(spec, build("local", "resilient"))
        state = stack.current()
    actions = plan(spec, state.topology)            # every bad input is refused here
    from chaos.faults import overlap
    from chaos.faults.ledger import Ledger
    overlap.check_active(actions, Ledger().active(state.stack_id), f"{spec.name} ({spec.target.describe()})")
    if not args.force:
        stack.require_healthy(state)
    engine = Engine(executors_for(state), state.stack_id)
    interrupted = False
    with guard(state) as hb:
        t0 = time.monotonic()
        try:
            engine.inject(actions)                  # all or nothing; a failure is reverted
            if not args.json:
                _out(f"injected {spec.name} ({spec.target.describe()}) on stack {state.stack_id}: "
                     f"{len(actions)} step(s) in {time.monotonic() - t0:.2f} s; holding "
                     f"{args.duration:g} s (Ctrl-C reverts now)")
                for a in actions:
                    _out(f"  {a.describe()}")
            end = time.monotonic() + args.duration
            while (left := end - time.monotonic()) > 0 and hb.tripped() is None:
                time.sleep(min(0.25, left))
        except KeyboardInterrupt:
            interrupted = True
        held = time.monotonic() - t0
        previous = signal.signal(signal.SIGINT, lambda *_: _err("chaos: reverting, please wait"))
        try:
            t1 = time.monotonic()
            report = engine.revert(actions)
        finally:
            signal.signal(signal.SIGINT, previous)
        tripped = hb.tripped()            # read before the guard cleans up
    doc = {"fault": spec.name, "selector": spec.target.describe(), "stack_id": state.stack_id,
           "held_s": round(held, 2), "interrupted": interrupted,
           "reverted": len(report.reverted), "revert_s": round(time.monotonic() - t1, 2),
           "failed": [f"{a.describe()}: {why}" for a, why in report.failed],
           "watchdog_tripped": tripped}
    if args.json:
        _out(json.dumps(doc, indent=2))
    else:
        _out(("interrupted: " if interrupted else "") + f"reverted {len(report.reverted)} of "
             f"{len(actions)} step(s) in {doc['revert_s']:.2f} s after {held:.1f} s")
        for line in doc["failed"]:
            _err(f"chaos: not reverted: {line}")
    if report.failed:
        _err("chaos: some steps could not be reverted; they stay in the ledger. "
             "`chaos stack reset` puts the whole stack back.")
        return Exit.NOT_READY
    return Exit.INTERRUPTED if interrupted else Exit.OK


def cmd_reset(args) -> int:
    from chaos.faults.reset import reset
    from chaos.targets.base import quiet

    if args.timeout is not None and not args.timeout > 0:
        raise ConfigError(f"--timeout must be more than 0 s, got {args.timeout:g}")
    state = stack.current(args.target)
    progress = quiet if args.json else (lambda m: _err(f"  {m}"))
    rep = reset(state, progress, args.timeout)
    if args.json:
        _out(json.dumps(rep.to_dict(), indent=2))
    else:
        _out(f"stack {rep.stack_id} reset in {rep.took_s:.1f} s:")
        for line in rep.did:
            _out(f"  {line}")
        for line in rep.problems:
            _err(f"chaos: problem: {line}")
        _out("every service is healthy" if rep.healthy else
             f"NOT healthy: {'; '.join(rep.unhealthy)}")
    return Exit.OK if rep.healthy and not rep.problems else Exit.NOT_READY
