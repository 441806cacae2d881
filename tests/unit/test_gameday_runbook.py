"""Runbook files: validated with line numbers, turned into the framework's declarations,
planned against the target before anything runs."""

from pathlib import Path
from textwrap import dedent

import pytest

from chaos.core.errors import ConfigError
from chaos.experiment import Experiment
from chaos.gameday.plan import build, load_plan, topology_for
from chaos.gameday.runbook import RunbookError, loads
from chaos.core.yamlfile import parse

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

GOOD = dedent("""\
    title: drill
    roles: {commander: alice}
    steps:
      - id: slow
        fault: latency
        link: edge-*.origin-a
        params: {latency_ms: 200}
      - prompt: mute it?
        role: commander
        choices: [mute, keep]
        default: keep
        timeout_s: 10
        then: {mute: revert slow}
      - wait: 2
      - revert: all
    """)


def refused(text: str, **kw) -> RunbookError:
    tree = None
    with pytest.raises(RunbookError) as e:
        book = loads(text, "rb.yaml")
        tree = parse(text, "rb.yaml")
        build(book, topology_for(book), "rb.yaml", tree, **kw)
    return e.value


def test_a_good_runbook_becomes_an_experiment_with_planned_faults():
    book = loads(GOOD, "rb.yaml")
    gp = build(book, topology_for(book), "rb.yaml", parse(GOOD, "rb.yaml"))
    assert isinstance(gp.experiment, Experiment)
    (step, actions), = gp.faults
    assert step.spec.name == "latency" and step.spec.params == {"latency_ms": 200}
    assert {a.target for a in actions} == {"edge-a.origin-a", "edge-b.origin-a", "edge-c.origin-a"}
    assert [p.kind for p in gp.steps] == ["fault", "prompt", "wait", "revert"]
    assert gp.steps[0].id == "slow" and gp.steps[2].id == "3-wait"
    assert "latency" in gp.describe() and "edge-b.origin-a" in gp.describe()


def test_a_yaml_error_names_its_line_and_column():
    e = refused("title: x\nsteps: [\n  - note: a\nb: 1\n")
    assert e.line in (3, 4), str(e)
    assert "not valid YAML" in str(e) and "line" in str(e)


def test_an_unknown_fault_is_refused_at_its_line_with_the_accepted_names():
    e = refused(GOOD.replace("fault: latency", "fault: latncy"))
    assert e.line == 5
    assert "did you mean latency" in str(e) and "rb.yaml, line 5" in str(e)


def test_a_dc_the_target_lacks_is_refused_at_its_line():
    text = GOOD.replace("link: edge-*.origin-a", "dc: dc-z")
    e = refused(text)
    assert e.line == 6 and "dc-z" in str(e), str(e)
    assert "target: local runtime, resilient profile" in str(e)


def test_a_service_the_target_lacks_is_refused():
    text = dedent("""\
        title: x
        steps:
          - fault: packet_drop
            service: edge-q
            params: {share: 0.1}
            duration_s: 3
        """)
    e = refused(text)
    assert e.line == 4 and "edge-q" in str(e) and "services are" in str(e), str(e)


def test_a_prompt_without_a_timeout_is_refused_with_what_to_write():
    e = refused(GOOD.replace("    timeout_s: 10\n", ""))
    assert e.line == 8
    assert "timeout_s: 60" in str(e)


def test_bad_parameters_unknown_fields_and_unknown_steps_each_say_what_to_write():
    e = refused(GOOD.replace("{latency_ms: 200}", "{latency_ms: -5}"))
    assert e.line == 7 and "out of range" in str(e)
    e = refused(GOOD.replace("default: keep", "defualt: keep"))
    assert "did you mean `default`" in str(e)
    e = refused(GOOD + "  - restart: origin-a\n")
    assert "a step is one of fault, load, wait" in str(e) and e.line == 16
    e = refused(GOOD.replace("then: {mute: revert slow}", "then: {mute: revert fast}"))
    assert "fast" in str(e) and e.line == 13, str(e)
    e = refused(GOOD.replace("revert: all", "revert: nothing"))
    assert e.line == 15 and "write `all` or one of: slow" in str(e)


def test_a_whole_float_audience_or_parameter_is_refused_with_what_to_write():
    e = refused(GOOD.replace("title: drill\n", "title: drill\naudience: {listeners: 12.0}\n"))
    assert e.line == 2 and "audience.listeners" in str(e), str(e)
    assert "12.0 is a float, not a whole number; accepted: 1 to 2000 (write 12" in str(e)
    e = refused(GOOD.replace("{latency_ms: 200}", "{latency_ms: 200.0}"))
    assert e.line == 7 and "latency_ms=200.0 is a float, not a whole number" in str(e), str(e)
    book = loads(GOOD.replace("title: drill\n", "title: drill\naudience: {listeners: 12}\n"), "rb.yaml")
    assert book.audience.listeners == 12 and type(book.audience.listeners) is int


def test_a_wait_or_check_on_an_sli_known_only_after_the_run_is_refused():
    e = refused(GOOD.replace("- wait: 2", "- wait: {until: [echo], timeout_s: 5}"))
    assert "echo is measured after the run" in str(e)
    e = refused(GOOD.replace("- wait: 2", "- wait: {until: [join_time]}"))
    assert "needs a timeout" in str(e)


def test_role_must_be_declared_and_default_must_be_a_choice():
    e = refused(GOOD.replace("role: commander", "role: cook"))
    assert "cook" in str(e) and e.line == 9
    e = refused(GOOD.replace("default: keep", "default: maybe"))
    assert "maybe" in str(e) and "not one of the choices" in str(e)


def test_from_and_only_select_steps_and_refuse_orphan_reverts():
    book = loads(GOOD, "rb.yaml")
    topo = topology_for(book)
    gp = build(book, topo, from_step="2")
    assert [p.id for p in gp.steps] == ["2-prompt", "3-wait", "4-revert"]
    assert gp.skipped == ("slow",)
    with pytest.raises(ConfigError, match="no such step"):
        build(book, topo, from_step="nope")
    gp = build(book, topo, only=["slow", "4"])
    assert [p.id for p in gp.steps] == ["slow", "4-revert"]
    text = GOOD.replace("revert: all", "revert: slow")
    book = loads(text, "rb.yaml")
    with pytest.raises(RunbookError, match="skips"):
        build(book, topology_for(book), "rb.yaml", parse(text, "rb.yaml"), only=["4"])


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("gameday_*.yaml")), ids=lambda p: p.stem)
def test_the_shipped_runbooks_plan_against_their_target(path):
    gp = load_plan(path)
    assert gp.faults, "every shipped runbook breaks something"
    assert gp.bound_s < 120


ICECAST_TARGET = Path(__file__).resolve().parents[2] / "fixtures" / "icecast" / "chaos-target.yaml"
ON_ANY = dedent("""\
    title: A relay's link goes down
    hypothesis: the other DCs keep their audio
    target: {file: %s}
    audience: {listeners: 3, thick_per_dc: 0}
    before_s: 4
    after_s: 4
    steps:
      - fault: link_down
        link: listener.relay-b
        duration_s: 2
    """)


def test_a_runbook_plans_against_the_target_file_it_names(tmp_path):
    rb = tmp_path / "gameday_relay.yaml"
    rb.write_text(ON_ANY % ICECAST_TARGET)
    gp = load_plan(rb)
    assert gp.target_file == str(ICECAST_TARGET) and gp.topology.name == "icecast"
    assert "target icecast, described in" in gp.describe()
    (step, actions), = gp.faults
    assert [a.target for a in actions] == ["listener.relay-b"]


def test_a_target_file_relative_to_the_runbook_and_one_given_instead(tmp_path):
    (tmp_path / "t.yaml").write_text(ICECAST_TARGET.read_text())
    rb = tmp_path / "gameday_relay.yaml"
    rb.write_text(ON_ANY % "t.yaml")
    assert load_plan(rb).target_file == str(tmp_path / "t.yaml")
    # --target FILE runs a reference-stack runbook against a described stack instead
    ref = tmp_path / "gameday_ref.yaml"
    ref.write_text((ON_ANY % "x").replace("target: {file: x}", "target: {runtime: local}"))
    gp = load_plan(ref, target=ICECAST_TARGET)
    assert gp.topology.name == "icecast" and gp.target_file == str(ICECAST_TARGET)


def test_a_runbook_with_a_file_and_a_profile_is_refused(tmp_path):
    rb = tmp_path / "gameday_both.yaml"
    rb.write_text((ON_ANY % ICECAST_TARGET).replace("target: {file:", "target: {profile: fragile, file:"))
    with pytest.raises(RunbookError, match="either file .* or the reference stack's runtime and profile"):
        load_plan(rb)


def test_a_link_the_described_target_lacks_is_refused_naming_the_file(tmp_path):
    rb = tmp_path / "gameday_bad.yaml"
    rb.write_text((ON_ANY % ICECAST_TARGET).replace("listener.relay-b", "listener.edge-b"))
    with pytest.raises(RunbookError, match="described in"):
        load_plan(rb)


def test_a_plan_against_a_file_will_not_run_on_another_stack(tmp_path):
    from chaos.core.errors import StackError
    from chaos.gameday.run import check_target
    from chaos.targets.state import StackState
    from chaos.adapters.space.reference import build as reference
    rb = tmp_path / "gameday_relay.yaml"
    rb.write_text(ON_ANY % ICECAST_TARGET)
    gp = load_plan(rb)
    other = StackState("space-local", "local", "resilient", "now", reference("local", "resilient"), {})
    with pytest.raises(StackError, match="--target"):
        check_target(gp, other)
