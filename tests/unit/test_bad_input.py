"""Bad input, as a new user would give it: each case a clear ChaosError that says what, the
value, the limit and what to write instead; never a traceback, never a silent acceptance,
never a lost journal."""

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from chaos import report
from chaos.cli import main
from chaos.core.errors import ChaosError, ConfigError, StateDamaged
from chaos.experiment import Audience, Experiment, Sweep, fault, validate
from chaos.faults import Action, plan
from chaos.faults import overlap
from chaos.faults.base import Selector
from chaos.faults.ledger import Ledger
from chaos.runner import method as method_mod
from chaos.runner import preflight
from chaos.core.slo import objective
from chaos.targets.state import StackState
from chaos.adapters.space.reference import build

from .test_report import canary_journal

TOPO = build("local", "resilient", 18000)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _state() -> StackState:
    return StackState("space-test", "local", "resilient", "now", TOPO, {})


def _preflight(exp, monkeypatch):
    monkeypatch.setattr("chaos.targets.stack.require_healthy", lambda s: None)
    return preflight(exp, _state())


# -- declarations through the Python API ----------------------------------------------------

@pytest.mark.parametrize("make, words", [
    (lambda: plan(fault("latency", link="listener.edge-a", latency_ms=100, count="²").spec, TOPO),
     "count='²' is not a blast radius; accepted: all, one, a count"),
    (lambda: validate(Experiment("x", before_s=10**400)),
     "before_s=an integer of 401 digits is out of range; accepted: more than 0 to 86400 s"),
    (lambda: objective("join_time", threshold=10**400), "threshold=an integer of 401 digits is out of range"),
    (lambda: validate(Experiment("x", during=None)), "during=None is not a list"),
    (lambda: validate(Experiment("x", method=7)), "method=7 is not a list"),
    (lambda: validate(Experiment("x", audience=None)), "audience=None is not an Audience"),
    (lambda: validate(Experiment("x", sweep=Sweep("latency", "latency_ms", steps=("a",),
                                                   link="listener.edge-a"))),
     r"steps[0]='a' is not a number"),
    (lambda: plan(fault("dc_loss", dc=1).spec, TOPO), "dc=1 is not text"),
    (lambda: objective(["mos"]), "unknown SLI ['mos']; use one of: join_time"),
    (lambda: validate(Experiment("run\n")), "experiment name='run\\n' is not a valid name"),
    (lambda: validate(Experiment("x", halts=[objective("join_time", window_s=1000)])),
     "window_s=1000 is longer than the run (16 s)"),
    (lambda: objective("join_time", window_s=float("inf")), "window_s=inf is not a finite number"),
    (lambda: objective("join_time", window_s=2, step_s=1e-9), "step_s=1e-09 is out of range; accepted: 0.1"),
    (lambda: objective("join_time", window_s=2, step_s=1e-6), "step_s=1e-06 is out of range"),
    (lambda: objective("join_time", window_s=2, step_s=5), "step_s=5 is longer than the window (2 s)"),
    (lambda: objective("join_time", window_s=2, step_s=None), "step_s=None is not a number"),
    (lambda: validate(Experiment("x", seed=-1)), "seed=-1 is out of range; accepted: 0 to 4294967295"),
    (lambda: validate(Experiment("x", title=b"x")), "title=b'x' is not text (a bytes)"),
    (lambda: validate(Experiment("x", title="a\ud800")), "holds a lone surrogate"),
    (lambda: plan(fault("latency", link="listener.edge-a", latency_ms=0.9).spec, TOPO),
     "latency_ms=0.9 is not a whole number; accepted: 0 to 600000 ms (write 0 or 1)"),
    (lambda: validate(Experiment("x", audience=Audience(join_every_s=1e-9))), "join_every_s=1e-09 is too short"),
    (lambda: validate(Experiment("x", audience=Audience(retry="sometimes"))), "retry='sometimes' is not accepted"),
    (lambda: validate(Experiment("x", method=[fault("latency", at_s=float("nan"), latency_ms=1)])),
     "at_s=nan is not a finite number"),
])
def test_each_bad_declaration_is_a_clear_config_error(make, words):
    with pytest.raises(ConfigError) as e:
        make()
    assert words in str(e.value)


def test_a_short_window_slides_by_itself_unless_told():
    assert objective("join_time", window_s=0.5).step_s == 0.5
    assert objective("join_time", window_s=5).step_s == 1.0


# -- the CLI ----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["fault", "plan", "latency", "--link", "listener.edge-a", "--count", "²", "--param",
      "latency_ms=100"], "count='²' is not a blast radius"),
    (["fault", "plan", "timeout", "--link", "listener.edge-a", "--param", "timeout_ms=" + "9" * 400],
     "timeout_ms=an integer of 400 digits is out of range"),
    (["fault", "plan", "latency", "--link", "listener.edge-a", "--param", "latency_ms=0.9"],
     "latency_ms=0.9 is not a whole number"),
    (["fault", "plan", "latency", "--link", "listener.edge-a", "--param", "latency_ms=١٢"],
     "latency_ms='١٢' is not a number"),
])
def test_bad_cli_values_exit_2_with_the_reason(argv, words, capsys):
    assert main(argv) == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["probe", "--seconds", "inf"], "argument --seconds: inf is not a finite number"),
    (["probe", "--seconds", "1e999"], "argument --seconds: inf is not a finite number"),
    (["probe", "--listeners", "2.5"], "argument --listeners: 2.5 is not a whole number"),
    (["fault", "inject", "link_down", "--duration", "1e400"], "argument --duration: inf"),
    (["fault", "plan", "link_down", "--seed", "-1"], "argument --seed: -1 is out of range"),
])
def test_bad_flag_values_are_usage_errors(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert words in capsys.readouterr().err


# -- state files --------------------------------------------------------------------------

@pytest.mark.parametrize("content", ["", '{"stack_id": "sp', "[]", '{"stack_id": 1}', "\xff\xfe",
                                     '{"stack_id":"s","runtime":"local","profile":"resilient",'
                                     '"started_at":"t","topology":{}}', None])
def test_a_damaged_stack_state_is_a_clear_error_and_down_sets_it_aside(home, content, capsys):
    path = home / "stack.json"
    home.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content.encode("latin-1") if content == "\xff\xfe" else content.encode())
    with pytest.raises(StateDamaged, match="stack state file .* is damaged"):
        StackState.load()
    assert main(["stack", "status"]) == 5   # a damaged state: NOT_READY
    assert main(["fault", "plan", "link_down", "--link", "listener.edge-a"]) == 5
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("`chaos stack down` sets it aside") == 2
    assert main(["stack", "down"]) == 0
    assert not path.exists() and list(home.glob("stack.json.damaged-*"))
    assert StackState.load() is None


def test_a_saved_state_reads_back():
    st = _state()
    st.save()
    back = StackState.load()
    assert back.stack_id == st.stack_id and back.topology.to_json() == st.topology.to_json()


def test_a_damaged_ledger_keeps_what_can_be_read_and_a_copy(home):
    led = Ledger()
    a = Action("link_down", "ld-1", "proxy", "listener.edge-a", "dc-a", {"proxy": "listener.edge-a"})
    led.add([a], "space-test")
    entries = json.loads(led.path.read_text())
    led.path.write_text(json.dumps(entries + [{"key": 3}, "junk", {"key": "k", "stack_id": "s",
                                                                   "action": {"fault": 1}}]))
    assert led.active("space-test") == [a]
    assert list(led.path.parent.glob("active.json.damaged-*"))
    led.path.write_text("{truncated")
    assert led.active() == []


# -- journals: untrusted input to `chaos report` ---------------------------------------

def _damaged(kind: str) -> str:
    j = canary_journal()
    if kind == "wrong type":
        j["slos"][1]["value"] = "5 s"
        return json.dumps(j)
    if kind == "bool for a number":
        j["faults"][0]["started_s"] = True
        return json.dumps(j)
    if kind == "Infinity":
        return json.dumps(j).replace('"value": 5.0', '"value": Infinity', 1)
    if kind == "NaN":
        return json.dumps(j).replace('"threshold": 2.0', '"threshold": NaN', 1)
    if kind == "huge number":
        return json.dumps(j).replace('"value": 5.0', '"value": 1e999', 1)
    if kind == "huge integer":
        return json.dumps(j).replace('"duration_s": 41.2', '"duration_s": ' + "9" * 5000, 1)
    if kind == "lone surrogate":
        j["experiment"]["name"] = "dc\ud800"
        return json.dumps(j)
    if kind == "deep nesting":
        return json.dumps(j).replace('"storms": []', '"storms": ' + "[" * 100_000 + "]" * 100_000)
    if kind == "event not an object":
        j["events"].append("restarted")
        return json.dumps(j)
    if kind == "per_dc of numbers":
        j["slos"][1]["per_dc"] = {"dc-a": 3}
        return json.dumps(j)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["wrong type", "bool for a number", "Infinity", "NaN", "huge number",
                                  "huge integer", "lone surrogate", "deep nesting",
                                  "event not an object", "per_dc of numbers"])
def test_report_on_a_damaged_journal_says_where_and_writes_nothing(tmp_path, kind, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "journal.json").write_text(_damaged(kind), encoding="utf-8", errors="surrogatepass")
    (run / "report.html").write_text("old report")
    (run / "junit.xml").write_text("old junit")
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "not a chaos journal" in err and "Traceback" not in err
    assert (run / "report.html").read_text() == "old report"
    assert (run / "junit.xml").read_text() == "old junit"
    assert sorted(p.name for p in run.iterdir()) == ["journal.json", "junit.xml", "report.html"]


def test_report_on_a_path_too_long_is_a_clear_error(capsys):
    assert main(["report", "/tmp/" + "x" * 5000]) == 2
    err = capsys.readouterr().err
    assert "cannot read the journal" in err and "5005 characters" in err


def test_report_files_are_written_all_or_none(tmp_path, monkeypatch):
    (tmp_path / "report.html").write_text("old report")
    (tmp_path / "junit.xml").write_text("old junit")
    real = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(Path(dst).name)
        if Path(dst).name == "junit.xml" and Path(src).suffix == ".tmp":
            raise OSError(28, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ChaosError, match="nothing was written"):
        report.render(canary_journal(), tmp_path)
    assert (tmp_path / "report.html").read_text() == "old report"    # put back
    assert (tmp_path / "junit.xml").read_text() == "old junit"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "report.html"]
    monkeypatch.setattr(os, "replace", real)
    paths = report.render(canary_journal(), tmp_path)
    assert paths["html"].read_text().startswith("<!DOCTYPE html>")
    assert paths["junit"].read_text().startswith("<?xml")


# -- overlapping faults on one target ----------------------------------------------------

def test_two_link_downs_overlapping_on_one_link_are_refused(monkeypatch):
    exp = Experiment("x", method=[fault("link_down", 0, 10, link="listener.edge-a"),
                                  fault("link_down", 5, 10, link="listener.edge-*")])
    with pytest.raises(ConfigError) as e:
        _preflight(exp, monkeypatch)
    msg = str(e.value)
    assert "link_down(listener.edge-a) (t=0-10 s of the method) and link_down(listener.edge-*)" in msg
    assert "both disable listener.edge-a" in msg and "at_s >= 10" in msg


@pytest.mark.parametrize("steps", [
    [fault("link_down", 0, 10, link="listener.edge-a"), fault("link_down", 10, 5, link="listener.edge-a")],
    [fault("latency", 0, 10, link="listener.edge-a", latency_ms=50),
     fault("latency", 5, 10, link="listener.edge-a", latency_ms=80)],      # toxics stack up
    [fault("link_down", 0, 10, link="listener.edge-a"), fault("link_down", 0, 10, link="listener.edge-b")],
])
def test_faults_that_compose_or_do_not_overlap_are_accepted(steps, monkeypatch):
    plans, _ = _preflight(Experiment("x", method=steps), monkeypatch)
    assert len(plans) == 2


def test_partitions_of_two_dcs_at_once_share_links_and_are_refused(monkeypatch):
    exp = Experiment("x", method=[fault("dc_partition", 0, 10, dc="dc-a"),
                                  fault("dc_partition", 5, 10, dc="dc-b")])
    with pytest.raises(ConfigError, match="both disable edge-a.origin-b"):
        _preflight(exp, monkeypatch)


def test_a_fault_already_active_on_the_stack_blocks_the_same_target(monkeypatch):
    active = plan(fault("link_down", link="listener.edge-a").spec, TOPO, "ld-other")
    Ledger().add(active, "space-test")
    exp = Experiment("x", method=[fault("link_down", 0, 5, link="listener.edge-*")])
    with pytest.raises(ConfigError, match="which link_down \\(ld-other\\) already holds"):
        _preflight(exp, monkeypatch)
    with pytest.raises(ConfigError, match="already holds"):
        overlap.check_active(plan(fault("dc_partition", dc="dc-a").spec, TOPO), active, "p")


# -- the journal is written whatever happens after a run starts ---------------------------

class _Result:
    seconds = 20.0


def _finish(tmp_path, exp, method):
    from chaos.runner import finish as _finish
    out = tmp_path / "run"
    out.mkdir()
    return _finish(exp, _state(), "run-1", out, dt.datetime.now(dt.timezone.utc), 20.0, method,
                   _Result(), "")


def _method(exp, monkeypatch):
    plans, _ = _preflight(exp, monkeypatch)
    m = method_mod.Method(exp, None, plans)
    for f in m.tl.faults:
        f.started_s, f.ended_s, f.reverted = 6.0, 9.0, True
    m.tl.phases = {"before": [0.0, 6.0], "during": [6.0, 9.0], "after": [9.0, 20.0]}
    return m


def test_a_judging_failure_is_recorded_and_the_journal_written(tmp_path, monkeypatch):
    exp = Experiment("x", method=[fault("link_down", 0, 3, link="listener.edge-a")])
    m = _method(exp, monkeypatch)
    monkeypatch.setattr("chaos.runner._judge", lambda *a: 1 / 0)
    rr = _finish(tmp_path, exp, m)
    j = json.loads((rr.dir / "journal.json").read_text())
    assert j["verdict"] == "inconclusive" and "could not be judged: ZeroDivisionError" in j["reason"]
    assert "ZeroDivisionError" in j["error"]
    assert j["faults"][0]["reverted"] is True and (rr.dir / "report.html").exists()


def test_a_journal_that_cannot_be_built_is_written_bare(tmp_path, monkeypatch):
    exp = Experiment("x", method=[fault("link_down", 0, 3, link="listener.edge-a")])
    m = _method(exp, monkeypatch)
    monkeypatch.setattr("chaos.runner._judge", lambda *a: ([], None, {}, {}, [], {}))
    monkeypatch.setattr("chaos.runner.jr.fault_doc", lambda f, topo: 1 / 0)
    rr = _finish(tmp_path, exp, m)
    j = report.load(rr.dir / "journal.json")
    assert j.verdict == "inconclusive" and "could not be built" in j.reason
    assert j.faults[0].name == "link_down" and j.faults[0].reverted is True
    assert (rr.dir / "report.html").exists() and "report_error" not in j.model_fields_set
    assert "could not be built" in rr.notes()[0]


def test_a_rendering_failure_is_recorded_in_the_journal(tmp_path, monkeypatch):
    exp = Experiment("x", method=[fault("link_down", 0, 3, link="listener.edge-a")])
    m = _method(exp, monkeypatch)
    monkeypatch.setattr("chaos.runner._judge", lambda *a: ([], None, {}, {}, [], {}))
    monkeypatch.setattr("chaos.report.html.page", lambda j: 1 / 0)
    rr = _finish(tmp_path, exp, m)
    j = json.loads((rr.dir / "journal.json").read_text())
    assert "ZeroDivisionError" in j["report_error"]
    assert not (rr.dir / "report.html").exists() and not (rr.dir / "junit.xml").exists()


# -- docker executors touch only the target's containers ----------------------------------

class _Container:
    def __init__(self, stack_id, pid=4242, status="running"):
        self.labels = {"chaos.stack": "space", "chaos.service": "edge-a", "chaos.stack_id": stack_id}
        self.status = status
        self.attrs = {"State": {"Pid": pid}, "HostConfig": {}}


class _Client:
    def __init__(self, found):
        self.containers = self
        self.found = found

    def list(self, **kw):
        return list(self.found)

    def close(self):
        pass


@pytest.mark.parametrize("stack_id, ours", [("space-other", False), ("space-test", True), ("", True)])
def test_docker_cpu_and_iptables_touch_only_containers_of_the_stack(stack_id, ours, monkeypatch):
    from chaos.faults.executors import cpu as exec_cpu, iptables as exec_iptables
    monkeypatch.setattr("chaos.targets.images.docker_client",
                        lambda timeout=10: _Client([_Container(stack_id)]))
    state = StackState("space-test", "docker", "resilient", "now", build("docker", "resilient"), {})
    cpu = exec_cpu.CpuExecutor(state)
    if ours:
        assert cpu._container("edge-a").labels["chaos.stack_id"] == stack_id
        assert exec_iptables._container_pid("edge-a", "space-test") == 4242
    else:
        with pytest.raises(ChaosError, match="belong to stack space-other, not space-test"):
            cpu._container("edge-a")
        with pytest.raises(ChaosError, match="belong to stack space-other, not space-test"):
            exec_iptables._container_pid("edge-a", "space-test")


def test_a_nan_measurement_is_never_passed_nor_shown_as_minus_infinity():
    from chaos.core.model import Verdict
    from chaos.report import fmt
    from chaos.core.slo import Series
    o = objective("mos")
    assert o.judge(float("nan"), 3, "run").verdict is Verdict.INCONCLUSIVE
    r = o.evaluate(Series.of("mos", [(1.0, float("nan")), (2.0, 4.1)]), 0.0, 5.0)
    assert r.verdict is Verdict.PASSED and r.value == 4.1 and "1 sample(s) were not a number" in r.note
    r = o.evaluate(Series.of("mos", [(1.0, float("nan"))]), 0.0, 5.0)
    assert r.verdict is Verdict.INCONCLUSIVE and r.value is None
    assert fmt.value("mos", "", float("nan")) == "not a number"


def test_cli_inject_on_a_target_another_fault_holds_is_refused(capsys):
    _state().save()
    held = plan(fault("dc_partition", dc="dc-a").spec, TOPO, "part-a")
    Ledger().add(held, "space-test")
    assert main(["fault", "inject", "link_down", "--link", "listener.edge-a", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "would disable listener.edge-a, which dc_partition (part-a) already holds" in err
    assert Ledger().active("space-test") == held         # nothing added, nothing injected


# -- whole floats, non-ASCII digits, damaged histories, control characters in a report -----

@pytest.mark.parametrize("make, words", [
    (lambda: validate(Experiment("x", audience=Audience(listeners=12.0))),
     "audience.listeners=12.0 is a float, not a whole number; accepted: 1 to 10000 (write 12,"),
    (lambda: validate(Experiment("x", audience=Audience(thick_per_dc=1.0))),
     "audience.thick_per_dc=1.0 is a float, not a whole number"),
    (lambda: validate(Experiment("x", seed=3.0)),
     "seed=3.0 is a float, not a whole number; accepted: 0 to 4294967295 (write 3,"),
    (lambda: plan(fault("latency", link="listener.edge-a", latency_ms=100.0).spec, TOPO),
     "latency_ms=100.0 is a float, not a whole number"),
    (lambda: Selector(link="listener.edge-a", seed=2.0),
     "seed=2.0 is a float"),
])
def test_a_whole_float_where_a_count_belongs_is_refused_before_the_run(make, words):
    with pytest.raises(ConfigError) as e:
        make()
    assert words in str(e.value)


@pytest.mark.parametrize("argv, words", [
    (["probe", "--listeners", "12.0"], "argument --listeners: 12.0 is a float, not a whole number"),
    (["fault", "plan", "link_down", "--seed", "3.0"], "argument --seed: 3.0 is a float"),
])
def test_a_whole_float_flag_is_a_usage_error(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and words in capsys.readouterr().err


def test_a_whole_float_param_is_a_usage_error(capsys):
    assert main(["fault", "plan", "latency", "--link", "listener.edge-a", "--param",
                 "latency_ms=100.0"]) == 2
    assert "latency_ms=100.0 is a float, not a whole number" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["join_time=١", "join_time=٣.٥", "join_time=3@١٠", "join_time=²",
                                  "join_time=３"])
def test_an_objective_in_other_digits_is_refused(text):
    from chaos.runner.history import parse_override
    with pytest.raises(ConfigError, match="ASCII digits, e.g. join_time=3"):
        parse_override(text)


@pytest.mark.parametrize("argv, words", [
    (["explore", "--budget", "١٠m"], "--budget '١٠m': write a time like 90s"),
    (["explore", "--faults", "latency:latency_ms=10..90..١"], "write PARAM=LO..HI"),
])
def test_explore_refuses_other_digits(argv, words, capsys):
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def _rejudgeable_run(tmp_path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    src = Path(__file__).parent / "journals" / "baseline.json"
    (run / "journal.json").write_text(src.read_text())
    return run


def _npz(arrays: dict) -> bytes:
    import io

    import numpy as np
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _good_npz() -> bytes:
    import numpy as np
    t = np.array([0.5, 1.5, 2.5])
    return _npz({"all|join_time|t": t, "all|join_time|v": np.array([0.2, 0.3, 0.4])})


def _damaged_history(kind: str) -> bytes:
    import numpy as np
    good = _good_npz()
    if kind == "truncated":                     # EOFError / BadZipFile before
        return good[: len(good) // 2]
    if kind == "cut in its data":
        b = bytearray(good)
        b[40:60] = bytes(20)
        return bytes(b)
    if kind == "zip version":                   # NotImplementedError before
        b = bytearray(good)
        at = b.index(b"PK\x01\x02")
        b[at + 6:at + 8] = (99).to_bytes(2, "little")
        return bytes(b)
    if kind == "times out of order":            # a ValueError deep in the judge before
        return _npz({"all|join_time|t": np.array([3.0, 1.0, 2.0]),
                     "all|join_time|v": np.array([0.2, 0.3, 0.4])})
    if kind == "infinite times":
        return _npz({"all|join_time|t": np.array([0.5, np.inf]), "all|join_time|v": np.array([0.2, 0.3])})
    if kind == "text samples":
        return _npz({"all|join_time|t": np.array(["0.5", "1.5"]), "all|join_time|v": np.array(["1", "2"])})
    if kind == "health not json":
        return _npz({"health.json": np.frombuffer(b"\xff{", dtype=np.uint8),
                     "all|join_time|t": np.array([0.5]), "all|join_time|v": np.array([0.2])})
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "cut in its data", "zip version", "times out of order",
                                  "infinite times", "text samples", "health not json"])
def test_rejudge_of_a_damaged_history_is_one_clear_error_naming_the_file(tmp_path, kind, capsys):
    run = _rejudgeable_run(tmp_path)
    (run / "history.npz").write_bytes(_damaged_history(kind))
    assert main(["report", str(run), "--rejudge", "--objective", "join_time=1"]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'history.npz'}" in err and "cannot be judged again" in err
    assert "Traceback" not in err
    assert not (run / "rejudged").exists()


def test_rejudge_of_a_whole_history_still_judges(tmp_path, capsys):
    run = _rejudgeable_run(tmp_path)
    (run / "history.npz").write_bytes(_good_npz())
    from chaos.core.exits import for_verdict
    rc = main(["report", str(run), "--rejudge", "--objective", "join_time=1"])
    assert "judged again:" in capsys.readouterr().out
    again = json.loads((run / "rejudged" / "journal.json").read_text())
    assert rc == for_verdict(again["verdict"])          # judged, with its verdict's code
    assert (run / "rejudged" / "report.html").exists()


def test_a_nul_in_a_journal_string_is_never_written_raw_into_the_report(tmp_path):
    j = canary_journal()
    j["events"].append({"t_s": 1.0, "kind": "note", "message": "operator typed a\x00b\x1b[31m and \x7f"})
    j["experiment"]["title"] = "title\x00with a NUL"
    paths = report.render(j, tmp_path)
    html = paths["html"].read_text(encoding="utf-8")
    assert not any(c in html for c in "\x00\x1b\x7f")
    assert "operator typed a␀b␛[31m and ␡" in html and "title␀with a NUL" in html
    assert "\x00" not in paths["junit"].read_text(encoding="utf-8")
