"""The pytest plugin's glue, on collection only (no stack): profile selection and order,
marker and option errors; its options' environment and ini twins and old spellings; runbooks
collected only where the ini says; the refusal to run distributed; and the plugin as a guest
in a project of its own (its own --target, a gameday_*.yaml of its own)."""

from __future__ import annotations

import numpy  # noqa: F401
import pytest
import yaml  # noqa: F401

# In-process pytester runs forget the modules first imported during them. Modules the suite
# keeps (chaos.core.yamlfile's cached loader) then hold another PyYAML's classes, and numpy
# refuses to load twice: both stay loaded for the whole process.


pytest_plugins = ["pytester"]

EXPERIMENTS = """
import pytest

def test_a(chaos_run):
    pass

@pytest.mark.chaos_profile("fragile")
def test_canary(chaos_run):
    pass

def test_b(chaos_run):
    pass

def test_plain():
    pass
"""


def _ids(result) -> list[str]:
    return [line.split("::")[-1].strip() for line in result.outlines if "::" in line]


def test_experiments_are_grouped_by_profile(pytester):
    pytester.makepyfile(test_exp=EXPERIMENTS)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_a", "test_b", "test_canary"]


def test_stack_profile_selects_that_profile_s_experiments(pytester):
    pytester.makepyfile(test_exp=EXPERIMENTS)
    result = pytester.runpytest("--collect-only", "-q", "--chaos-stack-profile", "fragile",
                                "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_canary"]
    result.stdout.fnmatch_lines(["*2 deselected*"])


def test_an_unknown_profile_marker_is_a_usage_error(pytester):
    pytester.makepyfile(test_exp="""
import pytest

@pytest.mark.chaos_profile("sturdy")
def test_x(chaos_run):
    pass
""")
    result = pytester.runpytest("--collect-only", "-q", "--chaos-stack-profile", "fragile",
                                "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*chaos_profile('sturdy')*use one of: resilient, fragile*"])


def test_a_wrong_runtime_flag_is_refused(pytester):
    pytester.makepyfile(test_exp=EXPERIMENTS)
    result = pytester.runpytest("--chaos-runtime", "kubernetes", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*invalid choice: 'kubernetes'*"])


TARGETED = EXPERIMENTS + """

@pytest.mark.chaos_target("radio.yaml")
def test_radio(chaos_run):
    pass
"""


def test_experiments_for_a_described_target_group_apart_and_leave_profile_selection(pytester):
    pytester.makepyfile(test_exp=TARGETED)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_a", "test_b", "test_canary", "test_radio"]
    result = pytester.runpytest("--collect-only", "-q", "--chaos-stack-profile", "resilient",
                                "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_a", "test_b"]


def test_target_option_deselects_experiments_written_for_a_reference_profile(pytester):
    pytester.makepyfile(test_exp=TARGETED)
    result = pytester.runpytest("--collect-only", "-q", "--chaos-target", "mine.yaml", "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_a", "test_b", "test_radio"]
    result.stdout.fnmatch_lines(["*1 deselected*"])
    result = pytester.runpytest("--collect-only", "-q", "--chaos-target", "mine.yaml", "--chaos-stack-profile",
                                "fragile", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--chaos-target describes the stack: drop --chaos-stack-profile*"])


@pytest.mark.parametrize("args, says", [
    (["--chaos-shards", "0"], "*--chaos-shards=0: shards must be an integer from 1 to 1024*"),
    (["--chaos-engine", "k8s", "--chaos-shards", "4"], "*the k8s engine needs sink*"),
    (["--chaos-engine", "swarm", "--chaos-sink", "nohost"], "*must be host:port*"),
])
def test_a_bad_scale_out_is_a_usage_error_before_any_stack(pytester, args, says):
    pytester.makepyfile(test_exp=EXPERIMENTS)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *args)
    assert result.ret == 4
    result.stderr.fnmatch_lines([says])


RUNBOOK = """\
title: drill
target: {runtime: local, profile: fragile}
steps:
  - note: hello
"""


def test_gameday_runbooks_are_collected_as_tests_in_their_target_profile(pytester):
    pytester.makeini("[pytest]\nchaos_runbooks = .\n")
    pytester.makepyfile(test_exp=EXPERIMENTS)
    pytester.makefile(".yaml", gameday_drill=RUNBOOK, other=RUNBOOK)   # only gameday_*.yaml
    result = pytester.runpytest("--collect-only", "-q", "--chaos-stack-profile", "fragile",
                                "-p", "no:cacheprovider")
    ids = _ids(result)
    assert ids[0] == "test_plain" and sorted(ids[1:]) == ["gameday_drill", "test_canary"]
    result.stdout.fnmatch_lines(["*2 deselected*"])


def test_a_runbook_with_an_error_is_a_collection_error_with_its_line(pytester):
    pytester.makeini("[pytest]\nchaos_runbooks = .\n")
    pytester.makefile(".yaml", gameday_bad=RUNBOOK.replace("note: hello", "nope: hello"))
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*gameday_bad.yaml, line 4, column 5*a step is one of fault*"])


def test_runbooks_are_collected_only_in_the_folders_the_ini_names(pytester):
    pytester.makefile(".yaml", **{"drills/gameday_drill": RUNBOOK, "notes/gameday_notes": RUNBOOK})
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 5 and _ids(result) == []            # opt-in: none without the ini
    pytester.makeini("[pytest]\nchaos_runbooks = drills\n")
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert _ids(result) == ["gameday_drill"]


# -- the options' twins: command line > environment > ini > default ------------------------

def test_the_environment_twin_selects_like_the_option_and_the_command_line_wins(pytester,
                                                                                monkeypatch):
    pytester.makepyfile(test_exp=EXPERIMENTS)
    monkeypatch.setenv("CHAOS_STACK_PROFILE", "fragile")
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_canary"]
    result = pytester.runpytest("--collect-only", "-q", "--chaos-stack-profile", "resilient",
                                "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_a", "test_b"]


def test_the_ini_twin_selects_like_the_option_and_the_environment_wins(pytester, monkeypatch):
    pytester.makepyfile(test_exp=EXPERIMENTS)
    pytester.makeini("[pytest]\nchaos_stack_profile = fragile\n")
    monkeypatch.delenv("CHAOS_STACK_PROFILE", raising=False)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_canary"]
    monkeypatch.setenv("CHAOS_STACK_PROFILE", "resilient")
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_a", "test_b"]


def test_a_target_in_the_ini_is_relative_to_the_ini_file(pytester, monkeypatch):
    monkeypatch.delenv("CHAOS_TARGET", raising=False)
    pytester.makeini("[pytest]\nchaos_target = targets/mine.yaml\n")
    pytester.makepyfile(test_exp="""
import pytest

@pytest.mark.chaos_target()
def test_radio(request):
    from chaos.pytest_plugin import _target_of
    print("TARGET", _target_of(request.node, request.config))
""")
    sub = pytester.mkdir("sub")
    monkeypatch.chdir(sub)                 # run from elsewhere: the ini's folder counts
    result = pytester.runpytest("-s", "-q", "-p", "no:cacheprovider", str(pytester.path))
    result.stdout.fnmatch_lines([f"TARGET {pytester.path / 'targets' / 'mine.yaml'}*"])


@pytest.mark.parametrize("where, says", [
    ("env", "*Invalid runtime 'kubernetes' from CHAOS_RUNTIME; use one of: local, docker*"),
    ("ini", "*Invalid runtime 'kubernetes' from ini chaos_runtime (*tox.ini); use one of: "
            "local, docker*"),
])
def test_a_bad_value_of_a_twin_says_where_it_came_from(pytester, monkeypatch, where, says):
    pytester.makepyfile(test_exp=EXPERIMENTS)
    monkeypatch.delenv("CHAOS_RUNTIME", raising=False)
    if where == "env":
        monkeypatch.setenv("CHAOS_RUNTIME", "kubernetes")
    else:
        pytester.makeini("[pytest]\nchaos_runtime = kubernetes\n")
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines([says])


def test_shards_from_the_environment_are_checked_before_any_stack(pytester, monkeypatch):
    pytester.makepyfile(test_exp=EXPERIMENTS)
    monkeypatch.setenv("CHAOS_SHARDS", "0")
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*CHAOS_SHARDS=0: shards must be an integer from 1 to 1024*"])


def test_an_old_spelling_still_works_and_warns_that_it_is_deprecated(pytester):
    pytester.makepyfile(test_exp=TARGETED)
    result = pytester.runpytest("--collect-only", "-q", "--target", "mine.yaml",
                                "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_a", "test_b", "test_radio"]
    result.stdout.fnmatch_lines(["*PytestDeprecationWarning: --target is deprecated: "
                                 "use --chaos-target*"])
    result = pytester.runpytest("--collect-only", "-q", "--chaos-target", "mine.yaml",
                                "-p", "no:cacheprovider")
    assert "deprecated" not in result.stdout.str()


# -- a guest in a project of its own --------------------------------------------------------

FOREIGN_CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--target", default="staging", help="the project's own deploy target")
"""

FOREIGN_TEST = """
def test_deploys_to_its_own_target(pytestconfig):
    assert pytestconfig.getoption("--target") == "prod-eu"
"""


def test_a_foreign_project_with_its_own_target_option_and_a_gameday_yaml_runs_green(pytester):
    """The plugin is loaded as installed (its entry point), in a pytest of its own."""
    pytester.makeconftest(FOREIGN_CONFTEST)
    pytester.makepyfile(test_deploy=FOREIGN_TEST)
    pytester.makefile(".yaml", gameday_x="its own game day, not a runbook: [")
    result = pytester.runpytest_subprocess("--target", "prod-eu", "-p", "no:cacheprovider",
                                           "--chaos-runtime", "docker")   # the plugin is loaded
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    out = result.stdout.str()
    assert "gameday_x" not in out and "deprecated" not in out
    helped = pytester.runpytest_subprocess("--help")
    helped.stdout.fnmatch_lines(["*--chaos-target=FILE*", "*--target=TARGET*the project's own*"])


# -- one stack at a time --------------------------------------------------------------------

WORKER = """
def pytest_configure(config):
    config.workerinput = {"workerid": "gw0", "workercount": 2}   # as pytest-xdist's workers
"""


def test_a_worker_of_a_distributed_run_refuses_experiments_before_any_stack(pytester):
    pytester.makeconftest(WORKER)
    pytester.makepyfile(test_exp="""
def test_experiment(chaos_run):
    raise AssertionError("never reached: the stack fixtures refuse first")

def test_plain():
    pass
""")
    # a target file that does not exist: were the refusal missing, the test would fail fast
    # instead of starting a stack
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "--chaos-target", "missing.yaml")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*one stack at a time: run chaos experiments against a described "
                                 "target (*missing.yaml) without -n*"])
    assert "never reached" not in result.stdout.str()


def test_a_worker_of_a_distributed_run_refuses_the_docker_runtime(pytester):
    pytester.makeconftest(WORKER)
    pytester.makepyfile(test_exp="""
def test_experiment(chaos_run):
    raise AssertionError("never reached")
""")
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "--chaos-runtime", "docker")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*one stack at a time: run chaos experiments against the docker "
                                 "runtime*"])
    assert "never reached" not in result.stdout.str()


def test_each_worker_of_a_distributed_run_has_its_own_local_reference_stack(pytester, monkeypatch):
    home = pytester.path / "home"
    monkeypatch.setenv("CHAOS_HOME", str(home))
    pytester.makeconftest(WORKER.replace('"gw0"', '"gw1"'))
    pytester.makeini("[pytest]\nchaos_stack_base_port = 15000\n")
    pytester.makepyfile(test_exp=f"""
import os

def test_its_own_state_and_ports(chaos_stacks):
    # built, not started: the stack starts when an experiment asks for it
    assert chaos_stacks.base_port == 15600
    assert os.environ["CHAOS_HOME"] == {str(home / "xdist-gw1")!r}
""")
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_project_that_groups_its_workers_itself_may_run_a_target_distributed(pytester, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(pytester.path / "home"))   # the worker's home is set in it
    pytester.makeconftest(WORKER)
    pytester.makeini("[pytest]\nchaos_xdist_grouped = true\n")
    pytester.makepyfile(test_exp="""
def test_experiment(chaos_run):
    pass
""")
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "--chaos-target", "missing.yaml")
    assert "one stack at a time" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*missing.yaml*"])      # it went on to read the target file


def test_a_worker_runs_a_plain_project_as_usual(pytester):
    pytester.makeconftest(WORKER)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_pytest_xdist_with_experiments_stops_with_the_reason(pytester):
    pytest.importorskip("xdist")       # present here; not a dependency of the plugin
    pytester.makepyfile(test_exp="""
def test_experiment(chaos_run):
    raise AssertionError("never reached")

def test_plain():
    pass
""")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider",
                                           "--chaos-target", "missing.yaml")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*one stack at a time: run chaos experiments against a described "
                                 "target (*missing.yaml) without -n*"])
    assert "never reached" not in result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_workers_runs_reach_the_controllers_table():
    """Under pytest-xdist the runs happen in workers: each hands them over when it ends (as
    JSON, which execnet carries) and the controller prints the one table."""
    import json
    from pathlib import Path
    from types import SimpleNamespace

    from chaos import pytest_plugin as plugin
    from chaos.report.schema import typed

    doc = json.loads((Path(__file__).parent / "journals" / "baseline.json").read_text())
    j = typed(doc)
    worker = SimpleNamespace(stash={plugin._RESULTS: [("experiments/test_baseline.py::test_b", j,
                                                       {"html": Path("/r/report.html")})]},
                             workeroutput={})
    plugin.pytest_sessionfinish(SimpleNamespace(config=worker))
    sent = json.loads(json.dumps(worker.workeroutput))         # what crosses the channel
    controller = SimpleNamespace(stash={})
    plugin.pytest_testnodedown(SimpleNamespace(workeroutput=sent, config=controller), None)
    [(nodeid, got, files)] = controller.stash[plugin._RESULTS]
    assert nodeid == "experiments/test_baseline.py::test_b" and files == {"html": "/r/report.html"}
    assert got.verdict is j.verdict and got.run_id == j.run_id and got.reason == j.reason
