"""Generated input through the public API, the CLI and `chaos report`: each answer is a
ChaosError or a valid result, never another exception, and nothing invalid is accepted.

Derandomized and without an example database, so CI sees the same inputs every time; a few
thousand examples in all, in well under a minute.
"""

import contextlib
import io
import json
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chaos import report
from chaos.core import validate as v
from chaos.cli import main, wants_json
from chaos.core.errors import ChaosError
from chaos.experiment import Audience, Experiment, FaultStep, Sweep, fault, validate
from chaos.faults.base import check_params, catalogue, plan
from chaos.faults import overlap
from chaos.core.slo import DEFAULTS, SLIS, STATS, Objective, Series, objective
from chaos.adapters.space.reference import build

from .test_report import ALL as JOURNALS

TOPO = build("local", "resilient", 18000)
KINDS = catalogue()
HOME = tempfile.mkdtemp(prefix="chaos-fuzz-")     # no stack is ever up here


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- what a careless or hostile user writes ------------------------------------------------

TRICKY = st.sampled_from(["²", "١٢", "inf", "-inf", "nan", "1e999", "-0", " 5", "5%", "0%", "101%",
                          "all", "one", "", "\n", "run\n", "dc-a", "listener.edge-a", "edge-*",
                          "a" * 300, "\x00", "[/]", "1_000"])
SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.integers(10**300, 10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e-6, 1e-6), st.text(max_size=12),
    SURROGATES, TRICKY, st.binary(max_size=4), st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.just(object()),
)
SECONDS = st.floats(0, 60, allow_nan=False)


@st.composite
def maybe(draw, good):
    """A sensible value, or junk: how often depends on the example's level of mischief
    (none for about half of them, so that valid declarations are drawn too)."""
    level = draw(LEVEL)
    return draw(JUNK) if level and draw(st.integers(1, 10)) <= level else draw(good)


LEVEL = st.shared(st.sampled_from([0, 0, 1, 3]), key="mischief")


@st.composite
def param_values(draw, kind_name):
    kind = KINDS.get(kind_name)
    out = {}
    if kind is None:
        return draw(st.dictionaries(st.text(max_size=8), JUNK, max_size=2))
    for name, p in kind.params.items():
        if not p.required and not draw(st.booleans()):
            continue
        if p.choices:
            good = st.sampled_from(p.choices)
        elif p.kind is int:
            good = st.integers(int(p.lo), int(min(p.hi, 10**7)))
        else:
            good = st.floats(p.lo, p.hi, allow_nan=False)
        out[name] = draw(maybe(good))
    if draw(LEVEL) and draw(st.integers(0, 9)) == 0:
        out[draw(st.text(min_size=1, max_size=8))] = draw(JUNK)
    return out


@st.composite
def fault_steps(draw):
    name = draw(maybe(st.sampled_from(sorted(KINDS))))
    where = {}
    if draw(st.booleans()):
        where["link"] = draw(maybe(st.sampled_from(["listener.edge-a", "edge-*.origin-a", "listener.edge-*",
                                                    "gateway-a.redis-a"])))
    if draw(st.booleans()):
        where["dc"] = draw(maybe(st.sampled_from(["dc-a", "dc-b", "dc-c"])))
    if draw(st.booleans()):
        where["service"] = draw(maybe(st.sampled_from(["edge-b", "edge", "gateway", "speaker", "origin-a"])))
    if draw(st.booleans()):
        where["count"] = draw(maybe(st.sampled_from(["all", "one", "1", "2", "50%"])))
    params = draw(param_values(name if isinstance(name, str) else ""))
    at, dur = draw(maybe(SECONDS)), draw(maybe(st.floats(0.1, 30)))
    return lambda: fault(name, at, dur, **where, **params)


@st.composite
def objectives(draw):
    sli = draw(maybe(st.sampled_from(sorted(DEFAULTS))))
    over = {}
    if draw(st.booleans()):
        spec = SLIS.get(sli) if isinstance(sli, str) else None
        over["threshold"] = draw(maybe(st.floats(spec.lo, spec.hi) if spec else st.floats(0, 1)))
    if draw(st.booleans()):
        over["window_s"] = draw(maybe(st.one_of(st.none(), st.floats(1, 20))))
    if draw(st.booleans()):
        over["step_s"] = draw(maybe(st.floats(0.1, 1)))
    if draw(st.integers(0, 5)) == 0:
        over["stat"] = draw(maybe(st.sampled_from(STATS)))
    if draw(st.integers(0, 5)) == 0:
        over["op"] = draw(maybe(st.sampled_from(["<=", ">="])))
    if draw(LEVEL) and draw(st.integers(0, 9)) == 0:
        over[draw(st.text(min_size=1, max_size=6))] = draw(JUNK)
    return lambda: objective(sli, **over)


def _build(thunks):
    return [t() for t in thunks]


@st.composite
def experiments(draw):
    kw = {}
    fields = {
        "name": st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        "title": st.text(max_size=20), "expects": st.text(max_size=20),
        "before_s": st.floats(0.5, 20), "after_s": st.floats(4, 20), "recover_s": st.floats(0, 3),
        "gate": st.booleans(), "seed": st.integers(0, 2**32 - 1),
    }
    for field, good in fields.items():
        if field == "name" or draw(st.booleans()):
            kw[field] = draw(maybe(good))
    for group in ("steady_state", "during", "after", "halts"):
        if draw(st.booleans()):
            kw[group] = draw(maybe(st.lists(objectives(), max_size=2).map(_Lazy)))
    if draw(st.booleans()):
        kw["method"] = draw(maybe(st.lists(fault_steps(), min_size=1, max_size=3).map(_Lazy)))
    if draw(st.integers(0, 3)) == 0:
        kw["sweep"] = draw(maybe(st.builds(
            Sweep, name=maybe(st.sampled_from(["packet_drop", "latency"])),
            param=maybe(st.sampled_from(["share", "latency_ms"])),
            steps=maybe(st.lists(maybe(st.floats(0, 0.5)), min_size=1, max_size=3)),
            step_s=maybe(st.floats(0.5, 10)), gap_s=maybe(st.floats(0, 2)),
            service=maybe(st.just("edge-b")), link=st.none())))
    if draw(st.integers(0, 3)) == 0:
        kw["audience"] = draw(maybe(st.builds(
            Audience, listeners=maybe(st.integers(1, 50)), thick_per_dc=maybe(st.integers(0, 3)),
            join_every_s=maybe(st.floats(0, 5)), join_timeout_s=maybe(st.floats(0.1, 10)),
            retry=maybe(st.sampled_from([None, "none", "fixed", "exponential"])))))
    return kw


class _Lazy(list):
    """Objectives and fault steps are built inside the test: their construction may refuse."""


def _materialise(kw):
    return {k: (_build(x) if isinstance(x, _Lazy) else x) for k, x in kw.items()}


# -- the oracle: what an accepted declaration must be -------------------------------------

def _finite(x, lo=-math.inf, hi=math.inf):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and lo <= x <= hi


def assert_valid_objective(o: Objective, run_s: float = v.MAX_RUN_S):
    spec = SLIS[o.sli]
    assert o.stat in STATS and o.op in ("<=", ">=")
    assert _finite(o.threshold, spec.lo, spec.hi)
    assert o.window_s is None or _finite(o.window_s, 0, run_s) and o.window_s > 0
    assert _finite(o.step_s, v.MIN_STEP_S, o.window_s or v.MAX_RUN_S)


def assert_valid_experiment(exp: Experiment, plans):
    assert isinstance(exp.name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", exp.name)
    for text in (exp.title, exp.expects):
        assert isinstance(text, str)
        text.encode("utf-8")
    assert "\n" not in exp.title
    assert isinstance(exp.seed, int) and not isinstance(exp.seed, bool) and 0 <= exp.seed < 2**32
    assert _finite(exp.before_s, 0) and exp.before_s > 0 and _finite(exp.after_s, 0)
    assert _finite(exp.total_s, 0, v.MAX_RUN_S)
    for group in (exp.steady_state, exp.during, exp.after, exp.halts):
        for o in group:
            assert_valid_objective(o, exp.total_s)
    a = exp.audience
    assert isinstance(a.listeners, int) and 1 <= a.listeners <= v.MAX_LISTENERS
    assert a.join_every_s == 0 or _finite(a.join_every_s, 0.1)
    for step, actions in plans:
        assert isinstance(step, FaultStep) and _finite(step.at_s, 0) and _finite(step.duration_s, 0)
        checked = check_params(KINDS[step.spec.name], step.spec.params)
        for k, wrote in step.spec.params.items():     # nothing rounded or coerced away
            assert checked[k] == wrote, (k, wrote, checked[k])
        json.dumps([a.to_dict() for a in actions], allow_nan=False)
    overlap.check(overlap.Scheduled(s.describe(), s.at_s, s.at_s + s.duration_s, acts)
                  for s, acts in plans)


@fuzz(1500)
@given(experiments())
def test_declarations_give_a_chaos_error_or_a_valid_plan(kw):
    try:
        exp = Experiment(**_materialise(kw))
        validate(exp)
        plans = [(s, plan(s.spec, TOPO)) for s in exp.steps()]
        overlap.check(overlap.Scheduled(s.describe(), s.at_s, s.at_s + s.duration_s, acts)
                      for s, acts in plans)
    except ChaosError as e:
        assert str(e)
        event("refused")
        return
    event(f"accepted with {len(plans)} fault(s)")
    assert_valid_experiment(exp, plans)


@fuzz(1000)
@given(objectives())
def test_objectives_give_a_chaos_error_or_one_that_judges_in_bounded_time(make):
    try:
        o = make()
    except ChaosError:
        event("refused")
        return
    event("accepted")
    assert_valid_objective(o)
    series = Series.of(o.sli, [(t * 0.25, 1.0) for t in range(40)])
    r = o.evaluate(series, 0.0, 10.0)
    json.dumps(r.to_dict(), allow_nan=False)


# -- the CLI ------------------------------------------------------------------------------

FLAG_VALUES = st.one_of(st.sampled_from(["0", "1", "5", "-1", "2.5", "1e3", "inf", "nan", "²", "١٢",
                                         "9" * 400, "1e999", "", "x", "50%", "one", "all"]),
                        st.text(max_size=8).filter(lambda s: "\x00" not in s))


@st.composite
def argvs(draw):
    cmd = draw(st.sampled_from(["plan", "inject", "probe", "status", "report"]))
    if cmd in ("plan", "inject"):
        argv = ["fault", cmd, draw(maybe(st.sampled_from(sorted(KINDS))).map(str))]
        for flag in ("--service", "--dc", "--link", "--count", "--seed"):
            if draw(st.booleans()):
                argv += [flag, draw(FLAG_VALUES)]
        for _ in range(draw(st.integers(0, 3))):
            k = draw(st.sampled_from(["latency_ms", "jitter_ms", "share", "mode", "rate", "timeout_ms",
                                      "x"]))
            argv += ["--param", f"{k}={draw(FLAG_VALUES)}"]
        if cmd == "inject":
            argv += ["--duration", draw(FLAG_VALUES)]
        return argv
    if cmd == "probe":
        argv = ["probe"]
        for flag in ("--listeners", "--seconds", "--join-timeout", "--thick-per-dc", "--rate"):
            if draw(st.booleans()):
                argv += [flag, draw(FLAG_VALUES)]
        return argv
    if cmd == "status":
        return ["stack", "status"] + (["--json"] if draw(st.booleans()) else [])
    return ["report", draw(st.one_of(FLAG_VALUES, st.just("/tmp/" + "y" * 5000)))]


@fuzz(500)
@given(argvs(), st.booleans())
def test_cli_arguments_exit_0_2_or_5_never_a_traceback(argv, as_json):
    argv = argv + ["--json"] if as_json else argv
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, {"CHAOS_HOME": HOME}), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:       # argparse's usage error
            rc = e.code
    event(f"exit {rc}")
    # no stack is up (CHAOS_HOME is empty): nothing can reach a verdict (1, 3, 4); 5 is the
    # environment not ready (chaos.core.exits)
    assert rc in (0, 2, 5), (argv, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if rc == 2:
        assert err.getvalue().strip()
    if wants_json(argv):
        doc = json.loads(out.getvalue())             # one JSON object, errors included
        assert isinstance(doc, dict) and (rc == 0 or doc["exit"] == rc), (argv, out.getvalue())


# -- journals -----------------------------------------------------------------------------

def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, x in doc.items():
            yield from _paths(x, prefix + (k,))
    elif isinstance(doc, list):
        for i, x in enumerate(doc[:4]):
            yield from _paths(x, prefix + (i,))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


SAME_TYPE = {
    float: st.floats(-1e9, 1e9), int: st.integers(-10**9, 10**9), bool: st.booleans(),
    str: st.one_of(st.text(max_size=30), st.sampled_from(["[/]", "[bold]x", "<script>", "]]>", "&amp;",
                                                          "\x1b[31m", "a" * 2000])),
    type(None): st.one_of(st.none(), st.floats(-1e3, 1e3), st.text(max_size=5)),
    list: st.lists(st.integers(0, 100), max_size=3),
}


def _set(doc, path, value):
    if not path:
        return value
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


JOURNAL_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.integers(10**20, 10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10), SURROGATES,
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.recursive(st.integers(), lambda c: st.lists(c, max_size=2), max_leaves=40),
)


@st.composite
def damaged_journals(draw):
    # a deep copy: the sample journals share module-level parts
    doc = draw(st.sampled_from(sorted(JOURNALS)).map(lambda k: json.loads(json.dumps(JOURNALS[k]()))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        old = _get(doc, path)
        if draw(st.booleans()):       # the same type, another value: a journal that still renders
            new = draw(SAME_TYPE.get(type(old), JOURNAL_JUNK))
        else:
            new = draw(JOURNAL_JUNK)
        doc = _set(doc, path, new)
    text = json.dumps(doc, allow_nan=True)
    how = draw(st.integers(0, 5))
    if how == 0:        # truncated
        text = text[:draw(st.integers(0, len(text)))]
    elif how == 1:      # a character replaced
        i = draw(st.integers(0, max(0, len(text) - 1)))
        text = text[:i] + draw(st.sampled_from(['"', "{", "]", "\\", "x", "\ud800", "9"])) + text[i + 1:]
    return text


@fuzz(600)
@given(damaged_journals())
def test_report_of_a_damaged_journal_is_a_chaos_error_or_a_whole_report(text):
    with tempfile.TemporaryDirectory() as d:
        run = Path(d)
        (run / "journal.json").write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            journal = report.load(run)
            paths = report.render(journal, run)
            report.summary(journal, _console(), report_path=paths["html"])
        except ChaosError:
            event("refused")
            assert sorted(p.name for p in run.iterdir()) == ["journal.json"]   # nothing half-written
            return
        event("rendered")
        assert paths["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        ET.fromstring(paths["junit"].read_bytes())


def _console():
    from rich.console import Console
    return Console(file=io.StringIO(), width=100, force_terminal=False)
