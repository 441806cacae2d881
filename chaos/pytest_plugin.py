"""pytest glue: `pytest experiments/ [--chaos-runtime local|docker] [--chaos-stack-profile P]
[--chaos-target FILE]`.

Thin on purpose: options, fixtures, JUnit properties and a summary; the framework
(chaos.runner) does the work. Nothing heavy is imported until a fixture is used.

    @pytest.mark.chaos_profile("fragile")        # the stack profile it is written for
    @pytest.mark.chaos_target("my-target.yaml")  # or: a described target it is written for
    def test_dc_a_loss(chaos_run):
        result = chaos_run(Experiment(...))      # fails the test unless the verdict is passed
        result = chaos_run(exp, check=False)     # or judge the result yourself (canaries)

    @given(schedule=schedules(faults=("dc_loss", "latency")))   # generated schedules
    def test_any_schedule(chaos_explore, schedule):
        chaos_explore(schedule, steady_state=[objective("join_time")])

A good guest in any project it is installed beside: every option is ``--chaos-*``, with an
ini twin (``chaos_*``) and an environment twin (``CHAOS_*``); the command line wins over the
environment, the environment over the ini. The old spellings (``--target``, ``--runtime``, ...)
still work, with a deprecation warning, unless the project itself defines them. Runbooks
(``gameday_*.yaml``) are tests only in the folders the ini's ``chaos_runbooks`` names, played
with ``--auto`` (the ``chaos_gameday`` fixture) in the profile of their ``target``.

Distributed (pytest-xdist's ``-n N``): each worker starts its own local reference stack, with
its own state (``$CHAOS_HOME/xdist-gwN``) and ports (the base port + 600 x N), so no two workers
drive the same stack. A described target (``--chaos-target``) is one stack, and the docker
runtime's stack is the machine's: those refuse to run distributed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

RUNTIMES = ("local", "docker")
PROFILES = ("resilient", "fragile")
ENGINES = ("local", "swarm", "k8s")
_RESULTS = pytest.StashKey[list]()          # (test id, typed journal, files) per run
_SETTINGS = pytest.StashKey[dict]()         # option name -> Setting, resolved at configure
_CURRENT = pytest.StashKey[object]()      # the test being run (chaos_explore is session-wide)
_RUNS = ("chaos_run", "chaos_explore", "chaos_gameday")   # fixtures that run experiments
_STACK = (*_RUNS, "chaos_readiness", "chaos_stack", "chaos_stacks")   # that drive a stack
ONE_STACK = ("one stack at a time: run chaos experiments against {what} without -n (pytest-xdist "
             "distributes tests over workers, and every worker would drive the same stack; use "
             "-n 0, or -p no:xdist). The local reference stack runs distributed: one per worker")
WORKER_PORT_STEP = 600           # a reference stack uses its base port + 80 to + 540


def _runs(item: pytest.Item, fixtures: tuple[str, ...] = _RUNS) -> bool:
    return any(f in getattr(item, "fixturenames", ()) for f in fixtures)


def _port(text: str) -> int:
    from chaos.core.validate import arg, integer
    return arg(integer, lo=1024, hi=64535)(text)


def _count(text: str) -> int:
    from chaos.core.validate import arg, integer
    return arg(integer)(text)      # its range is the engine's to say (chaos.scale.ScaleOut)


@dataclass(frozen=True)
class Option:
    """One setting: ``--chaos-<name>``, ini ``chaos_<name>``, environment ``CHAOS_<NAME>``,
    and the old spelling it replaces (kept as a deprecated alias)."""
    name: str                                   # stack_profile
    help: str
    old: str | None = None                      # --stack-profile
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    type: Callable[[str], Any] | None = None    # converts and checks a value (argparse type=)
    default: Any = None
    path: bool = False                          # in the ini: relative to the ini file

    @property
    def flag(self) -> str:
        return "--chaos-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "chaos_" + self.name

    @property
    def env(self) -> str:
        return "CHAOS_" + self.name.upper()

    @property
    def dest(self) -> str:
        return "chaos_" + self.name

    @property
    def old_dest(self) -> str:
        return "chaos_old_" + self.name

    def twins(self) -> str:
        return f" Also {self.env}, or ini {self.ini} (command line > environment > ini)."


OPTIONS = (
    Option("target", old="--target", metavar="FILE", path=True,
           help="run the experiments against this target description (your own stack); "
                "experiments written for the reference stack's profiles are deselected."),
    Option("runtime", old="--runtime", choices=RUNTIMES, default="local",
           help="runtime of the reference stack under test (default: local)."),
    Option("stack_profile", old="--stack-profile", choices=PROFILES,
           help="run only the experiments written for this stack profile (default: each "
                "experiment's own, that of ini chaos_profile if it names none)."),
    Option("stack_base_port", old="--stack-base-port", type=_port, metavar="PORT",
           help="first port of a stack the session starts (default 17000)."),
    Option("reports", metavar="DIR", path=True,
           help="where runs write reports/<run-id>/ (default: reports/ in the rootdir)."),
    Option("engine", old="--engine", choices=ENGINES,
           help="where join storms are fired from: local processes (default), a Docker Swarm "
                "service, or a Kubernetes Indexed Job (manifests written to k8s/)."),
    Option("shards", old="--shards", type=_count, metavar="N",
           help="split each join storm over N shards on the engine (default 1)."),
    Option("sink", old="--sink", metavar="HOST:PORT",
           help="where the shards reach this machine's coordinator (k8s, remote swarm)."),
)


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str      # where it came from: "--chaos-target", "CHAOS_TARGET", "ini chaos_target", ...


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "chaos experiments against a live audio stack (each option "
                                     "also as CHAOS_<NAME> in the environment and chaos_<name> in "
                                     "the ini; command line > environment > ini > default)")
    for o in OPTIONS:
        group.addoption(o.flag, dest=o.dest, default=None, choices=o.choices, type=o.type,
                        metavar=o.metavar, help=o.help + o.twins())
        parser.addini(o.ini, f"{o.help} Overridden by {o.env} and {o.flag}."
                      + (" Relative to the ini file." if o.path else ""), default=None)
    parser.addini("chaos_profile", "the stack profile of an experiment that names none "
                  "(default resilient)", default="resilient")
    parser.addini("chaos_runbooks", "folders whose gameday_*.yaml runbooks are collected as tests "
                  "(relative to the ini file; none by default)", type="paths", default=[])
    parser.addini("chaos_xdist_grouped", "the project's own xdist scheduler keeps every test of a "
                  "described target, and of the docker runtime, on one worker: distributed runs "
                  "are not refused for them (default false)", type="bool", default=False)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args):
    """The old spellings are registered after the project's own conftest.py files and plugins
    have added theirs: a project's own --target wins, and the alias is left out."""
    try:
        return (yield)
    finally:
        _add_old_spellings(parser)


def _add_old_spellings(parser: pytest.Parser) -> None:
    import argparse
    group = parser.getgroup("chaos")
    for o in OPTIONS:
        if o.old is None:
            continue
        try:
            group.addoption(o.old, dest=o.old_dest, default=None, choices=o.choices, type=o.type,
                            metavar=o.metavar, help=argparse.SUPPRESS)
        except (argparse.ArgumentError, ValueError):
            pass      # the project (or another plugin) has its own option of that name


def _resolve(config: pytest.Config) -> dict[str, Setting]:
    """Every option's value and where it came from: command line > environment > ini > default."""
    out = {}
    for o in OPTIONS:
        given, old = config.getoption(o.dest, None), config.getoption(o.old_dest, None)
        if given is not None:
            out[o.name] = Setting(given, o.flag)
            continue
        if old is not None:
            config.issue_config_time_warning(pytest.PytestDeprecationWarning(
                f"{o.old} is deprecated: use {o.flag} (or {o.env}, or ini {o.ini}); "
                f"the old spelling goes in a later release"), stacklevel=2)
            out[o.name] = Setting(old, o.old)
            continue
        env = os.environ.get(o.env)
        if env:
            out[o.name] = Setting(_check(o, env, o.env), o.env)
            continue
        ini = config.getini(o.ini)
        if ini not in (None, ""):
            where = f"ini {o.ini} ({config.inipath})"
            value = _check(o, str(ini), where)
            if o.path and config.inipath is not None:
                value = str(config.inipath.parent / value)
            out[o.name] = Setting(value, where)
            continue
        out[o.name] = Setting(o.default, "default")
    return out


def _check(o: Option, text: str, source: str) -> Any:
    """A value from the environment or the ini, checked as the command line checks it."""
    import argparse
    if o.choices is not None and text not in o.choices:
        raise pytest.UsageError(f"Invalid {o.name.replace('_', ' ')} {text!r} from {source}; "
                                f"use one of: {', '.join(o.choices)}")
    if o.type is None:
        return text
    try:
        return o.type(text)
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise pytest.UsageError(f"Invalid {o.name.replace('_', ' ')} {text!r} from {source}: "
                                f"{e}") from None


def _given(config: pytest.Config, name: str) -> Setting:
    if _SETTINGS not in config.stash:       # a hook before pytest_configure
        config.stash[_SETTINGS] = _resolve(config)
    return config.stash[_SETTINGS][name]


def _setting(config: pytest.Config, name: str) -> Any:
    return _given(config, name).value


def _distributed(config: pytest.Config) -> bool:
    """A worker of pytest-xdist (its controller collects nothing: the workers do). Asked of
    the config only: xdist need not be installed."""
    return hasattr(config, "workerinput")


def _worker_index(config: pytest.Config) -> int:
    name = str(config.workerinput.get("workerid", "gw0"))    # type: ignore[attr-defined]
    return int(name[2:]) if name[2:].isdigit() else 0


def _shared_stack(config: pytest.Config, items) -> str | None:
    """What a distributed run would drive from several workers at once: a described target or
    the docker runtime's stack (None: each worker's own local reference stack)."""
    for item in items:
        if _runs(item, _STACK) and _target_of(item, config) is not None:
            return f"a described target ({_target_of(item, config)})"
    if _setting(config, "runtime") == "docker" and any(_runs(i, _STACK) for i in items):
        return "the docker runtime (its stack is the machine's)"
    return None


def _own_worker_home(config: pytest.Config) -> None:
    """A worker's own state: $CHAOS_HOME/xdist-gwN, so its session stacks are its own."""
    from pathlib import Path
    from chaos.targets.state import home
    worker = str(config.workerinput.get("workerid", "gw0"))    # type: ignore[attr-defined]
    if Path(home()).name != f"xdist-{worker}":
        os.environ["CHAOS_HOME"] = str(Path(home()) / f"xdist-{worker}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos_profile(name): the stack profile an experiment "
                            "is written for (resilient or fragile)")
    config.addinivalue_line("markers", "chaos_target(file): the target description an experiment "
                            "is written for (relative to the test file); no file: any "
                            "--chaos-target")
    config.stash[_RESULTS] = []
    _given(config, "target")   # every setting resolved (and an old spelling warned about) once
    _scale_out(config)   # a bad engine/shards/sink fails before any stack starts


def _target_of(item: pytest.Item, config: pytest.Config) -> str | None:
    """The target file an experiment runs against: --chaos-target, else its chaos_target
    marker's file (relative to the test file); None: the reference stack."""
    from pathlib import Path
    given = _setting(config, "target")
    m = item.get_closest_marker("chaos_target")
    if given:
        return str(Path(given).resolve())
    if m is None:
        return None
    if not m.args:
        raise pytest.UsageError(f"{item.nodeid}: chaos_target() names no file; run it with "
                                "--chaos-target FILE, or write chaos_target('path/to/target.yaml')")
    return str((Path(str(item.fspath)).parent / m.args[0]).resolve())


def _profile_of(item: pytest.Item, config: pytest.Config) -> str | None:
    """The profile an experiment is written for: its marker, else the ini's (resilient);
    None for an experiment written for a described target."""
    if item.get_closest_marker("chaos_target") is not None or _setting(config, "target"):
        return None
    m = item.get_closest_marker("chaos_profile")
    if m is None:
        value = config.getini("chaos_profile")
        if value not in PROFILES:
            raise pytest.UsageError(f"Invalid profile {value!r} from the ini file (chaos_profile); "
                                    f"use one of: {', '.join(PROFILES)}")
        return value
    if not m.args or m.args[0] not in PROFILES:
        raise pytest.UsageError(f"{item.nodeid}: chaos_profile({', '.join(map(repr, m.args))}); "
                                f"use one of: {', '.join(PROFILES)}")
    return m.args[0]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Only the wanted profile's experiments with --chaos-stack-profile; grouped by profile so
    that the stack switches profile at most once."""
    wanted = _setting(config, "stack_profile")
    if _setting(config, "target"):
        if wanted:
            raise pytest.UsageError("--chaos-target describes the stack: drop --chaos-stack-profile "
                                    "(profiles belong to the reference stack)")
        # experiments (and runbooks) written for the reference stack's profiles do not fit
        # another target
        keep = [i for i in items if not _runs(i) or i.get_closest_marker("chaos_profile") is None]
        dropped = [i for i in items if i not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
    elif wanted:
        keep = [i for i in items if not _runs(i) or _profile_of(i, config) == wanted]
        dropped = [i for i in items if i not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
    uses = [i for i in items if _runs(i)]
    if uses:
        first = {id(i): n for n, i in enumerate(items)}
        def group(i):
            return _target_of(i, config) or _profile_of(i, config)
        order = {g: min(first[id(i)] for i in uses if group(i) == g) for g in {group(i) for i in uses}}
        items.sort(key=lambda i: order.get(group(i), -1) if _runs(i) else -1)


def pytest_collection_finish(session: pytest.Session) -> None:
    """One stack at a time: tests that drive the stack, collected by a worker of pytest-xdist,
    stop the run. A worker cannot raise a usage error cleanly (xdist reports a crash), so it
    fails the session with the reason, which the controller prints as it stops; the stack
    fixtures refuse too, before any stack starts."""
    if _distributed(session.config) and not session.config.getini("chaos_xdist_grouped"):
        shared = _shared_stack(session.config, session.items)
        if shared is not None:
            session.shouldfail = ONE_STACK.format(what=shared)


def pytest_collect_file(file_path, parent):
    """A game-day runbook (gameday_*.yaml) in a folder of ini chaos_runbooks is a test: played
    with --auto. Elsewhere a gameday_*.yaml is the project's own business."""
    if file_path.suffix not in (".yaml", ".yml") or not file_path.name.startswith("gameday_"):
        return None
    if not any(file_path.is_relative_to(folder) for folder in parent.config.getini("chaos_runbooks")):
        return None
    return RunbookFile.from_parent(parent, path=file_path)


class RunbookFile(pytest.File):
    def collect(self):
        from chaos.gameday.runbook import load
        book = load(self.path)      # a bad runbook is a collection error, with its line
        item = pytest.Function.from_parent(self, name=self.path.stem, callobj=_play_runbook)
        if book.target.file is None:     # a described target has no profile of ours
            item.add_marker(pytest.mark.chaos_profile(book.target.profile))
        yield item


def _play_runbook(chaos_gameday, request):
    chaos_gameday(request.node.path)


def _reports(config: pytest.Config) -> str:
    from pathlib import Path
    return _setting(config, "reports") or str(Path(config.rootpath) / "reports")


@pytest.fixture(scope="session")
def chaos_runtime(pytestconfig: pytest.Config) -> str:
    return _setting(pytestconfig, "runtime")


@pytest.fixture(scope="session")
def chaos_stacks(pytestconfig: pytest.Config, chaos_runtime: str):
    """The session's stacks by profile (chaos.runner.stacks.SessionStacks)."""
    base_port = _setting(pytestconfig, "stack_base_port")
    if _distributed(pytestconfig):     # a worker of pytest-xdist: its own stack, or none
        if chaos_runtime == "docker" and not pytestconfig.getini("chaos_xdist_grouped"):
            pytest.fail(ONE_STACK.format(what="the docker runtime (its stack is the machine's)"),
                        pytrace=False)
        from chaos.adapters.space.reference import DEFAULT_BASE_PORT
        _own_worker_home(pytestconfig)
        base_port = (base_port or DEFAULT_BASE_PORT) + WORKER_PORT_STEP * _worker_index(pytestconfig)
    from chaos.runner.stacks import SessionStacks
    stacks = SessionStacks(chaos_runtime, progress=lambda msg: _say(pytestconfig, msg),
                           base_port=base_port)
    try:
        yield stacks
    finally:
        stacks.close()


@pytest.fixture
def chaos_stack(request: pytest.FixtureRequest, chaos_stacks):
    """The stack under test (chaos.targets.state.StackState): the described target the test
    runs against, else the reference stack in the test's profile."""
    target = _target_of(request.node, request.config)
    if target is not None:
        if _distributed(request.config) and not request.config.getini("chaos_xdist_grouped"):
            pytest.fail(ONE_STACK.format(what=f"a described target ({target})"), pytrace=False)
        from chaos.core.errors import EngineUnavailable
        try:
            return chaos_stacks.target(target)
        except EngineUnavailable as e:   # a docker target on a machine without an engine
            pytest.skip(f"target {target}: {e}")
    return chaos_stacks.get(_profile_of(request.node, request.config))


def _reproduce(nodeid: str, target: str | None, state) -> str:
    if target:
        return f"pytest '{nodeid}' --chaos-target {target}"
    return (f"pytest '{nodeid}' --chaos-runtime {state.runtime} "
            f"--chaos-stack-profile {state.profile}")


@pytest.fixture
def chaos_run(request: pytest.FixtureRequest, chaos_stack, record_property):
    """Run an experiment: ``chaos_run(experiment, check=True) -> chaos.runner.RunResult``.
    Writes reports/<run-id>/ (journal, report.html, junit.xml), records every SLO verdict
    as a JUnit property, and (check=True) fails the test unless the verdict is passed,
    with the SLO that broke, when, under which fault, in which DC, and how to reproduce."""
    from chaos.core.model import Verdict
    from chaos.runner import run
    config = request.config
    reports = _reports(config)
    target = _target_of(request.node, config)
    reproduce = _reproduce(request.node.nodeid, target, chaos_stack)

    def progress(t_s: float, total_s: float, msg: str) -> None:
        _say(config, f"[{t_s:5.1f}/{total_s:.0f} s] {msg}")

    def _run(experiment, check: bool = True):
        against = (f"target {chaos_stack.topology.name}" if target else
                   f"{chaos_stack.runtime}/{chaos_stack.profile}")
        _say(config, f"experiment {experiment.name}: {experiment.total_s:.0f} s against {against}")
        result = run(experiment, chaos_stack, reports, progress=progress, reproduce=reproduce,
                     scale=_scale_out(config))
        j = result.record
        record_property("chaos.verdict", str(j.verdict))
        record_property("chaos.run_id", j.run_id)
        record_property("chaos.report", str(result.files.get("html", result.dir)))
        for s in j.slos:
            if s.required:
                record_property(f"slo.{s.name}.{s.phase}",
                                f"{s.verdict} value={s.value} objective={s.objective}")
        config.stash[_RESULTS].append((request.node.nodeid, j, result.files))
        if check and result.verdict is not Verdict.PASSED:
            pytest.fail("\n".join(result.notes()), pytrace=False)
        return result
    return _run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    item.config.stash[_CURRENT] = item
    try:
        out = yield
    finally:
        item.config.stash[_CURRENT] = None
    _explored(item)
    return out


def _explored(item: pytest.Item) -> None:
    """A chaos_explore test whose every run was inconclusive measured nothing: it fails
    (as an inconclusive chaos_run does), saying why, instead of passing."""
    explorer = getattr(item, "funcargs", {}).get("chaos_explore")
    if explorer is None:
        return
    from chaos.explore.given import Explorer
    said = explorer.inconclusive(item.nodeid) if isinstance(explorer, Explorer) else ""
    if said:
        pytest.fail(f"chaos_explore: {said}", pytrace=False)


@pytest.fixture(scope="session")
def chaos_explore(pytestconfig: pytest.Config, chaos_stacks):
    """Run a drawn schedule inside a Hypothesis test (chaos.explore.given):
    ``chaos_explore(schedule, steady_state=[...], budget_s=300, repeats=3)``. Session-wide
    (Hypothesis reruns the test body, not its fixtures); the stack is the running test's."""
    from chaos.explore.given import Explorer
    config = pytestconfig
    reports = _reports(config)

    def current():
        item = config.stash.get(_CURRENT, None)
        if item is None:
            raise pytest.UsageError("chaos_explore is called from inside a test")
        target = _target_of(item, config)
        state = chaos_stacks.target(target) if target else chaos_stacks.get(_profile_of(item, config))
        return state, item.nodeid, _reproduce(item.nodeid, target, state)
    return Explorer(current, reports, progress=lambda msg: _say(config, msg))


@pytest.fixture
def chaos_readiness(request: pytest.FixtureRequest, chaos_stack, record_property):
    """Gate a release on an event: ``chaos_readiness(audience=600_000, join_rate="50000/min",
    survive="dc_loss", fleet="fleet.yaml", quick=True, expect=("GO",))`` ->
    chaos.readiness.Assessment; fails the test unless the verdict is one of ``expect``
    (``expect=None``: judge it yourself), with the verdict's sentence and reasons."""
    from pathlib import Path

    from chaos.readiness import Demand, assess, load_fleet
    config = request.config
    reports = _reports(config)

    def _assess(audience: int, join_rate, *, fleet=None, expect=("GO",), **kw):
        fleet_obj = None
        if fleet is not None:
            path = Path(request.node.path).parent / fleet
            fleet_obj, _ = load_fleet(path, chaos_stack.topology)
        from chaos.readiness.demand import UNUSED, refuse_unused
        for name in UNUSED:
            if name in kw:
                raise refuse_unused(name, f"chaos_readiness({name}=...)")
        demand = Demand.of(audience, join_rate)     # readiness judges the peak: no ramp, no session
        _say(config, f"readiness: {audience:,} listeners at {demand.join_rate_per_s:.4g} joins/s")
        a = assess(demand, chaos_stack, fleet=fleet_obj, reports_dir=reports,
                   progress=lambda what, t, total, msg: _say(config, f"[{what}] {msg}"), **kw)
        record_property("chaos.readiness", str(a.verdict.verdict))
        record_property("chaos.readiness.report", str(a.files["readiness.html"]))
        if expect is not None and str(a.verdict.verdict) not in expect:
            pytest.fail("\n".join([f"readiness {a.verdict.verdict} (expected {' or '.join(expect)}): "
                                   f"{a.verdict.sentence}", *a.verdict.reasons,
                                   f"report: {a.files['readiness.html']}"]), pytrace=False)
        return a
    return _assess


@pytest.fixture
def chaos_gameday(request: pytest.FixtureRequest, record_property):
    """Play a runbook with --auto: ``chaos_gameday(path, check=True) -> RunResult``; fails
    the test unless the verdict is passed, with the reason and the report's path."""
    from pathlib import Path

    from chaos.core.model import Verdict
    from chaos.gameday.plan import load_plan
    from chaos.gameday.run import run
    config = request.config
    reports = _reports(config)

    def progress(t_s: float, total_s: float, msg: str) -> None:
        _say(config, f"[{t_s:5.1f} s] {msg}")

    def _play(path, check: bool = True):
        from chaos.gameday.plan import target_file
        from chaos.gameday.runbook import load
        described = target_file(load(path), path)
        if described is not None:       # the runbook's own target file: that stack, not ours
            from chaos.targets.external import attach
            from chaos.targets.file import check_live
            state = attach(described)
            check_live(state.topology)
        else:
            state = request.getfixturevalue("chaos_stack")
        gp = load_plan(path, state)
        if described is None and gp.book.target.runtime != state.runtime:
            pytest.skip(f"{Path(path).name} is written for the {gp.book.target.runtime} runtime")
        _say(config, f"game day {gp.experiment.name}: {len(gp.steps)} steps against "
                     f"{described or f'{state.runtime}/{state.profile}'}")
        result = run(gp, state, reports, auto=True, progress=progress,
                     reproduce=f"chaos gameday {path} --auto")
        if getattr(result, "interrupted", False):
            raise KeyboardInterrupt(f"game day {gp.experiment.name} interrupted; faults reverted")
        j = result.record
        record_property("chaos.verdict", str(j.verdict))
        record_property("chaos.run_id", j.run_id)
        record_property("chaos.report", str(result.files.get("html", result.dir)))
        config.stash[_RESULTS].append((request.node.nodeid, j, result.files))
        if check and result.verdict is not Verdict.PASSED:
            pytest.fail("\n".join(result.notes()), pytrace=False)
        return result
    return _play


@pytest.fixture
def chaos_experiment(request: pytest.FixtureRequest):
    """Build an experiment named after the test: ``chaos_experiment(method=[...], ...)``."""
    from chaos.experiment import Experiment

    def build(**kwargs):
        kwargs.setdefault("name", request.node.name.replace("[", "-").replace("]", "")[:64])
        return Experiment(**kwargs)
    return build


def _scale_out(config: pytest.Config):
    """The session's engine, shards and sink (chaos.scale.ScaleOut), None when not given."""
    given = [_given(config, k) for k in ("engine", "shards", "sink")]
    engine, shards, sink = (s.value for s in given)
    if engine is None and shards is None and sink is None:
        return None
    from chaos.core.errors import ConfigError
    from chaos.scale.config import ScaleOut
    try:
        return ScaleOut(engine or "local", 1 if shards is None else shards, sink=sink)
    except ConfigError as e:
        said = " ".join(f"{s.source}={s.value}" for s in given if s.value is not None)
        raise pytest.UsageError(f"{said}: {e}") from None


def _say(config: pytest.Config, msg: str) -> None:
    """A progress line on the terminal, also while output is captured."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    cap = config.pluginmanager.get_plugin("capturemanager")
    if tr is None or config.get_verbosity() < 0:
        return
    if cap is not None:
        with cap.global_and_fixture_disabled():
            tr.write_line(f"  chaos {msg}")
    else:
        tr.write_line(f"  chaos {msg}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker of pytest-xdist hands its runs to the controller, which prints the table."""
    out = getattr(session.config, "workeroutput", None)
    if out is not None:
        out["chaos_runs"] = [(nodeid, j.model_dump(mode="json", by_alias=True, exclude_unset=True),
                              {k: str(v) for k, v in files.items()})
                             for nodeid, j, files in session.config.stash.get(_RESULTS, [])]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """The controller of pytest-xdist: a worker's runs, for the session's table."""
    runs = (getattr(node, "workeroutput", None) or {}).get("chaos_runs") or []
    if runs:
        from chaos.report.schema import typed
        node.config.stash.setdefault(_RESULTS, []).extend(
            (nodeid, typed(doc), files) for nodeid, doc, files in runs)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, [])
    if not results:
        return
    from chaos.report.runs import runs_table
    terminalreporter.write_sep("=", "chaos experiments")
    terminalreporter.write(runs_table(results, color=terminalreporter.hasmarkup))
