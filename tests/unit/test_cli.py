"""The chaos command's answers to bad input: exit code, and a message that says what to do."""

import pytest

from chaos.cli import main


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))


@pytest.mark.parametrize("argv, expect", [
    (["stack", "up", "--runtime", "k8s"], "invalid choice: 'k8s'"),
    (["stack", "up", "--profile", "sturdy"], "invalid choice: 'sturdy'"),
    (["stack", "up", "--base-port", "eighty"], "argument --base-port: 'eighty' is not a number"),
    (["probe", "--listeners", "many"], "argument --listeners: 'many' is not a number"),
    (["probe", "--listeners", "0"], "argument --listeners: 0 is out of range; accepted: 1 to 10000"),
    (["probe", "--seconds", "-1"], "argument --seconds: -1 is out of range"),
    (["probe", "--seconds", "inf"], "argument --seconds: inf is not a finite number"),
    (["probe", "--thick-per-dc", "-1"], "argument --thick-per-dc: -1 is out of range"),
    (["stack", "up", "--base-port", "80"], "out of range; accepted: 1024 to 64535"),
    (["stack", "up", "--timeout", "0"], "argument --timeout: 0 is out of range; accepted: more than 0"),
    (["stack", "sideways"], "invalid choice"),
])
def test_bad_flags_exit_2_with_usage(argv, expect, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert expect in err and "--help" in err


@pytest.mark.parametrize("argv, expect", [
    (["probe", "--shards", "4"], "give its rate too (--rate 833)"),
    (["probe", "--rate", "100", "--shards", "0"], "shards must be an integer from 1 to"),
    (["probe", "--rate", "100", "--engine", "k8s", "--shards", "2"], "the k8s engine needs sink"),
])
def test_bad_scale_out_values_exit_2_before_anything_starts(argv, expect, capsys):
    assert main(argv) == 2
    assert expect in capsys.readouterr().err


def test_status_and_probe_with_nothing_up_say_how_to_start(capsys):
    assert main(["stack", "status"]) == 5           # exits.Exit.NOT_READY
    assert "chaos stack up" in capsys.readouterr().err
    assert main(["probe"]) == 5
    assert "chaos stack up" in capsys.readouterr().err


def test_down_with_nothing_up_is_harmless(capsys):
    assert main(["stack", "down"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_missing_tools_are_named_with_the_fix(monkeypatch, capsys):
    monkeypatch.setenv("CHAOS_REDIS_SERVER", "/nonexistent/redis-server")
    assert main(["stack", "up", "--base-port", "24000"]) == 5   # a tool missing: NOT_READY
    err = capsys.readouterr().err
    assert "redis-server" in err and "fixtures/setup.sh" in err


@pytest.mark.parametrize("argv, expect", [
    (["probe", "--rate", "-5"], "is not a rate"),
    (["probe", "--rate", "0/min"], "must be more than 0"),
    (["probe", "--rate", "fast"], "is not a rate"),
])
def test_bad_probe_values_are_rejected_before_anything_runs(argv, expect, capsys):
    assert main(argv) == 2
    assert expect in capsys.readouterr().err


GAMEDAY = """\
title: drill
steps:
  - id: slow
    fault: latency
    link: listener.edge-b
    params: {latency_ms: 50}
    duration_s: 5
"""


def test_gameday_dry_run_plans_and_a_bad_runbook_exits_2_with_its_line(tmp_path, capsys):
    rb = tmp_path / "drill.yaml"
    rb.write_text(GAMEDAY)
    assert main(["gameday", str(rb), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "latency: toxic on listener.edge-b" in out and "nothing was injected" in out
    rb.write_text(GAMEDAY.replace("listener.edge-b", "listener.edge-q"))
    assert main(["gameday", str(rb), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "drill.yaml, line 5, column 11" in err and "no link of the stack matches" in err
    assert main(["gameday", str(rb), "--dry-run", "--from", "9"]) == 2


def test_gameday_without_a_terminal_or_a_stack_says_what_to_do(tmp_path, capsys):
    rb = tmp_path / "drill.yaml"
    rb.write_text(GAMEDAY)
    assert main(["gameday", str(rb)]) == 2          # pytest's stdin is no terminal
    assert "--auto" in capsys.readouterr().err
    assert main(["gameday", str(rb), "--auto"]) == 5    # no stack up: NOT_READY
    assert "chaos stack up" in capsys.readouterr().err
