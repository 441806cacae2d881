"""The pytest plugin's glue, on collection only (no stack): profile selection and order,
marker and option errors."""

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
    result = pytester.runpytest("--collect-only", "-q", "--stack-profile", "fragile",
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
    result = pytester.runpytest("--collect-only", "-q", "--stack-profile", "fragile",
                                "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*chaos_profile('sturdy')*use one of: resilient, fragile*"])


def test_a_wrong_runtime_flag_is_refused(pytester):
    pytester.makepyfile(test_exp=EXPERIMENTS)
    result = pytester.runpytest("--runtime", "kubernetes", "-p", "no:cacheprovider")
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
    result = pytester.runpytest("--collect-only", "-q", "--stack-profile", "resilient",
                                "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_a", "test_b"]


def test_target_option_deselects_experiments_written_for_a_reference_profile(pytester):
    pytester.makepyfile(test_exp=TARGETED)
    result = pytester.runpytest("--collect-only", "-q", "--target", "mine.yaml", "-p", "no:cacheprovider")
    assert _ids(result) == ["test_plain", "test_a", "test_b", "test_radio"]
    result.stdout.fnmatch_lines(["*1 deselected*"])
    result = pytester.runpytest("--collect-only", "-q", "--target", "mine.yaml", "--stack-profile",
                                "fragile", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--target describes the stack: drop --stack-profile*"])


@pytest.mark.parametrize("args, says", [
    (["--shards", "0"], "*--engine/--shards/--sink: shards must be an integer from 1 to 1024*"),
    (["--engine", "k8s", "--shards", "4"], "*the k8s engine needs sink*"),
    (["--engine", "swarm", "--sink", "nohost"], "*must be host:port*"),
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
    pytester.makepyfile(test_exp=EXPERIMENTS)
    pytester.makefile(".yaml", gameday_drill=RUNBOOK, other=RUNBOOK)   # only gameday_*.yaml
    result = pytester.runpytest("--collect-only", "-q", "--stack-profile", "fragile",
                                "-p", "no:cacheprovider")
    ids = _ids(result)
    assert ids[0] == "test_plain" and sorted(ids[1:]) == ["gameday_drill", "test_canary"]
    result.stdout.fnmatch_lines(["*2 deselected*"])


def test_a_runbook_with_an_error_is_a_collection_error_with_its_line(pytester):
    pytester.makefile(".yaml", gameday_bad=RUNBOOK.replace("note: hello", "nope: hello"))
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*gameday_bad.yaml, line 4, column 5*a step is one of fault*"])
