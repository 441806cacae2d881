"""The command's contract (DESIGN.md section 8, chaos.core.exits): every --help ends with the
exit codes, --version, --json on every command (one JSON object on stdout, errors included),
one mapping from errors to exit codes, and the files others read are 0644. No stack is
started: CHAOS_HOME is an empty folder, so no stack is found."""

from __future__ import annotations

import argparse
import json
import os
import stat
import tomllib
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import pytest

import chaos.cli as cli
from chaos.cli import main
from chaos.core import atomic, errors
from chaos.core.exits import EPILOG, Exit, for_verdicts

ROOT = Path(__file__).resolve().parents[2]
JOURNALS = Path(__file__).parent / "journals"

from tests.unit.test_cli import GAMEDAY as RUNBOOK  # noqa: E402 - the same drill


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)          # relative defaults (reports/) land here


@pytest.fixture
def runbook(tmp_path) -> Path:
    rb = tmp_path / "drill.yaml"
    rb.write_text(RUNBOOK)
    return rb


def _parsers(p: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every parser of the command, with the words that reach it."""
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


ALL = list(_parsers(cli._parser()))


def test_the_tree_has_every_documented_command():
    paths = {" ".join(path) for path, _ in ALL}
    assert {"stack up", "stack status", "stack down", "stack reset", "probe", "fault plan",
            "fault inject", "report", "readiness", "gameday", "explore", "target check",
            "target proxies"} <= paths


@pytest.mark.parametrize("path", [path for path, _ in ALL], ids=lambda p: " ".join(p) or "chaos")
def test_every_help_ends_with_the_exit_codes(path, capsys):
    with pytest.raises(SystemExit) as e:
        main([*path, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(EPILOG.rstrip())      # verbatim: not re-wrapped by argparse


@pytest.mark.parametrize("path, parser", ALL, ids=lambda x: " ".join(x) if isinstance(x, tuple) else "")
def test_every_option_says_what_it_is_for(path, parser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"chaos {' '.join(path)} {'/'.join(action.option_strings) or action.dest}: no help"


@pytest.mark.parametrize("path, parser", [(p, x) for p, x in ALL if p and not any(
    isinstance(a, argparse._SubParsersAction) for a in x._actions)], ids=lambda x: " ".join(x)
    if isinstance(x, tuple) else "")
def test_every_command_takes_json(path, parser):
    assert "--json" in parser._option_string_actions, f"chaos {' '.join(path)} has no --json"


# -- --version ----------------------------------------------------------------------------------

def test_version_prints_the_package_version_and_exits_0(capsys):
    from importlib import metadata
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"chaos {metadata.version('chaos-audio')}"
    with pytest.raises(SystemExit) as e:
        main(["--version", "--json"])
    assert e.value.code == 0
    assert json.loads(capsys.readouterr().out) == {"version": metadata.version("chaos-audio")}


def test_version_falls_back_to_the_source_trees_when_not_installed(monkeypatch):
    from importlib import metadata

    import chaos

    def missing(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(metadata, "version", missing)
    monkeypatch.setattr(chaos, "__version__", "9.8.7", raising=False)
    assert cli.version() == "9.8.7"


def test_chaos_audio_is_a_second_script_with_the_same_entry_point(capsys):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["chaos-audio"] == scripts["chaos"] == "chaos.cli:main"
    module, _, name = scripts["chaos-audio"].partition(":")
    entry = getattr(import_module(module), name)
    assert entry is main
    assert entry(["stack", "down", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"removed": []}


# -- --json, with no stack up -------------------------------------------------------------------

NO_STACK = [
    ["stack", "status"],
    ["stack", "reset"],
    ["probe"],
    ["probe", "--listeners", "3", "--seconds", "1"],
    ["fault", "inject", "dc_loss", "--dc", "dc-b", "--duration", "1"],
    ["readiness", "--audience", "600", "--join-rate", "10"],
    ["explore", "--budget", "1m"],
    ["explore", "--replay", "schedule.json"],
    ["gameday", "RUNBOOK", "--auto"],
]


def _one_object(out: str) -> dict:
    doc = json.loads(out)          # raises on anything but exactly one JSON document
    assert isinstance(doc, dict)
    return doc


def _argv(argv, runbook):
    return [str(runbook) if a == "RUNBOOK" else a for a in argv]


@pytest.mark.parametrize("argv", NO_STACK, ids=" ".join)
def test_json_without_a_stack_is_one_error_object_and_exit_5(argv, runbook, capsys):
    code = main(_argv(argv, runbook) + ["--json"])
    out, err = capsys.readouterr()
    doc = _one_object(out)
    assert code == Exit.NOT_READY == doc["exit"]
    assert "chaos stack up" in doc["error"] and "chaos stack up" in doc["what_to_do"]
    assert doc["kind"] == "StackNotUp"
    assert "chaos stack up" in err                       # and the human line on stderr


@pytest.mark.parametrize("argv, says", [
    (["fault", "plan", "teleport"], "unknown fault 'teleport'"),
    (["fault", "inject", "latency", "--link", "listener.edge-b", "--duration", "1"], "latency_ms"),
    (["report", "missing/journal.json"], "no journal at"),
    (["stack", "up", "--target", "mine.yaml"], "starts and stops the reference stack only"),
    (["explore", "--budget", "soon"], "--budget 'soon'"),
    (["readiness", "--audience", "600"], "--join-rate"),
    (["gameday", "RUNBOOK"], "--json goes with --auto or --dry-run"),
    (["probe", "--shards", "4"], "give its rate too"),
    (["target", "check", "missing.yaml"], "no such file"),
    (["target", "proxies", str(ROOT / "fixtures" / "icecast" / "chaos-target.yaml")],
     "none of its links declares both listen and upstream"),
])
def test_json_with_bad_input_is_one_error_object_and_exit_2(argv, says, runbook, capsys):
    code = main(_argv(argv, runbook) + ["--json"])
    doc = _one_object(capsys.readouterr().out)
    assert code == Exit.USAGE == doc["exit"]
    assert says in doc["error"] and "--help" in doc["what_to_do"]


@pytest.mark.parametrize("argv", [
    ["probe", "--listeners", "many", "--json"],
    ["stack", "sideways", "--json"],
    ["--json"],
    ["--json", "fault", "plan"],                         # the NAME is missing
])
def test_json_with_bad_usage_is_one_error_object_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    doc = _one_object(out)
    assert e.value.code == Exit.USAGE == doc["exit"]
    assert "--help" in doc["what_to_do"]
    assert "usage:" in err                               # argparse's usage, on stderr


@pytest.mark.parametrize("argv", [["stack", "down", "--json"], ["--json", "stack", "down"]])
def test_a_command_that_succeeds_prints_its_document(argv, capsys):
    assert main(argv) == 0
    assert _one_object(capsys.readouterr().out) == {"removed": []}


def test_plans_and_dry_runs_need_no_stack(runbook, capsys):
    assert main(["fault", "plan", "link_down", "--link", "listener.edge-a", "--json"]) == 0
    doc = _one_object(capsys.readouterr().out)
    assert doc["fault"] == "link_down" and doc["actions"]
    assert main(["gameday", str(runbook), "--dry-run", "--json"]) == 0
    doc = _one_object(capsys.readouterr().out)
    assert doc["dry_run"] and any("listener.edge-b" in line for line in doc["plan"])


def test_a_bad_runbook_under_json_says_where(runbook, capsys):
    runbook.write_text(RUNBOOK.replace("listener.edge-b", "listener.edge-q"))
    assert main(["gameday", str(runbook), "--dry-run", "--json"]) == 2
    doc = _one_object(capsys.readouterr().out)
    assert doc["kind"] == "RunbookError" and "no link of the stack matches" in doc["error"]
    assert (doc["problems"][0]["line"], doc["problems"][0]["column"]) == (5, 11)


def test_report_json_names_the_files_and_they_are_0644(tmp_path, capsys):
    old = os.umask(0o077)          # the mode is set, not left to the umask
    try:
        assert main(["report", str(JOURNALS / "baseline.json"), "--out", str(tmp_path / "out"),
                     "--json"]) == 0
    finally:
        os.umask(old)
    doc = _one_object(capsys.readouterr().out)
    assert doc["exit"] == 0 and not doc["rejudged"] and doc["verdict"]
    for path in doc["files"].values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path


# -- one mapping of errors to exit codes ----------------------------------------------------------

@pytest.mark.parametrize("error, code", [
    (errors.ConfigError("bad"), Exit.USAGE),
    (errors.YamlError("x.yaml", "bad", 1, 1), Exit.USAGE),
    (errors.RunbookError("bad"), Exit.USAGE),
    (errors.StackNotUp("none"), Exit.NOT_READY),
    (errors.StackError("unhealthy"), Exit.NOT_READY),
    (errors.MissingTool("redis-server"), Exit.NOT_READY),
    (errors.EngineUnavailable("docker"), Exit.NOT_READY),
    (errors.PortInUse("24000"), Exit.NOT_READY),
    (errors.StateDamaged("stack.json"), Exit.NOT_READY),
    (errors.StackAlreadyUp("up"), Exit.NOT_READY),
    (errors.ToxiproxyTimeout("slow"), Exit.NOT_READY),
    (errors.IptablesError("no nsenter"), Exit.NOT_READY),
    (errors.ProbeError("a worker died"), Exit.NOT_READY),
    (KeyboardInterrupt(), Exit.INTERRUPTED),
])
def test_errors_map_to_exit_codes_in_one_place(error, code):
    got, what_to_do = cli.exit_for(error)
    assert got == code and what_to_do


def test_ctrl_c_exits_130_with_its_json(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_probe", interrupted)
    assert main(["probe"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert main(["probe", "--json"]) == 130
    assert _one_object(capsys.readouterr().out)["exit"] == 130


def test_an_unexpected_error_under_json_is_still_one_object(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("a bug")
    monkeypatch.setattr(cli, "cmd_probe", broken)
    assert main(["probe", "--json"]) == 1
    out, err = capsys.readouterr()
    assert _one_object(out)["error"] == "RuntimeError: a bug" and "Traceback" in err
    with pytest.raises(RuntimeError):                  # without --json: Python's own traceback
        main(["probe"])


# -- verdicts as exit codes -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Sli:                 # what probe_exit reads of a probe's SLI result
    verdict: str


@pytest.mark.parametrize("verdicts, code", [
    (["passed", "passed"], Exit.OK),
    (["passed", "failed", "inconclusive"], Exit.NO),
    (["failed"], Exit.NO),
    (["passed", "inconclusive"], Exit.INCONCLUSIVE),
    ([], Exit.INCONCLUSIVE),                 # nothing measured is not a pass
])
def test_probe_exits_by_its_slis_verdicts(verdicts, code):
    slis = [_Sli(v) for v in verdicts]
    assert cli.probe_exit(slis) == code == for_verdicts(verdicts)


def test_status_of_an_unhealthy_stack_exits_5(monkeypatch, capsys):
    from chaos.adapters.space.reference import build
    from chaos.targets.base import ServiceStatus
    from chaos.targets.state import StackState

    state = StackState("s1", "local", "resilient", "2026-01-01T00:00:00Z", build("local", "resilient"))
    rows = [ServiceStatus("redis-a", "redis", "dc-a", True, "127.0.0.1:1"),
            ServiceStatus("edge-b", "edge", "dc-b", False, "127.0.0.1:2", "exited (137)")]
    monkeypatch.setattr(cli.stack, "current", lambda target=None: state)
    monkeypatch.setattr(cli.stack, "status", lambda s: rows)
    assert main(["stack", "status", "--json"]) == Exit.NOT_READY
    doc = _one_object(capsys.readouterr().out)
    assert doc["healthy"] is False and doc["stack_id"] == "s1"
    monkeypatch.setattr(cli.stack, "status", lambda s: rows[:1])
    assert main(["stack", "status", "--json"]) == Exit.OK


# -- files for others to read are 0644 ----------------------------------------------------------

def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_atomic_writer_sets_the_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        art = atomic.write(tmp_path / "a" / "x.json", "{}", atomic.ARTIFACT)
        priv = atomic.write(tmp_path / "p.json", "{}", atomic.PRIVATE)
        atomic.write(art, "{\"again\": 1}", atomic.ARTIFACT)      # replacing keeps the mode
    finally:
        os.umask(old)
    assert _mode(art) == 0o644 and _mode(priv) == 0o600
    assert art.read_text() == "{\"again\": 1}"
    assert [p.name for p in tmp_path.rglob(".*")] == []           # no staged file left


def test_journal_and_readiness_files_are_0644_the_state_file_0600(tmp_path):
    from chaos import report
    from chaos.adapters.space.reference import build
    from chaos.readiness import evidence
    from chaos.runner.journal import write
    from chaos.targets.state import StackState

    old = os.umask(0o077)
    try:
        path = write(report.load(JOURNALS / "baseline.json"), tmp_path / "run")
        files = evidence.write({"verdict": "GO"}, tmp_path / "readiness")
        StackState("s1", "local", "resilient", "t", build("local", "resilient")).save()
    finally:
        os.umask(old)
    assert path.name == "journal.json" and _mode(path) == 0o644
    assert {name: _mode(p) for name, p in files.items()} == {"readiness.json": 0o644,
                                                             "readiness.html": 0o644}
    assert _mode(StackState.path()) == 0o600        # the framework's own runtime state


# -- chaos target -------------------------------------------------------------------------------

TARGET = """\
name: radio
runtime: docker
toxiproxy: 127.0.0.1:21474
dcs: [dc-a]
adapter: {protocol: space}
services:
  - {name: origin, kind: origin, dc: dc-a, find: {labels: {app: radio, role: origin}}, address: "origin:8000"}
  - {name: relay-a, kind: relay, dc: dc-a, find: {labels: {app: radio, role: relay-a}}}
links:
  - {name: listener.relay-a, src: listener, dst: relay-a, connect: "127.0.0.1:21501",
     listen: "0.0.0.0:21501", upstream: "relay-a:8000"}
  - {name: relay-a.origin, src: relay-a, dst: origin}
depends: {relay-a: [origin]}
paths: {join: [relay], audio: [relay], speaker: [origin]}
"""


def test_target_check_validates_the_file_and_prints_what_it_describes(tmp_path, capsys):
    f = tmp_path / "chaos-target.yaml"
    f.write_text(TARGET)
    assert main(["target", "check", str(f), "--json"]) == 0
    doc = _one_object(capsys.readouterr().out)
    assert doc["name"] == "radio" and doc["links"] == ["listener.relay-a", "relay-a.origin"]
    assert doc["live"] is False
    f.write_text(TARGET.replace("dst: relay-a,", "dst: relay-q,"))
    assert main(["target", "check", str(f), "--json"]) == 2
    doc = _one_object(capsys.readouterr().out)
    assert "chaos-target.yaml:10:" in doc["error"] and "unknown service 'relay-q'" in doc["error"]


def test_target_proxies_creates_only_the_links_that_say_where(tmp_path):
    from chaos.cli.target import proxy_specs
    from chaos.targets.file import load
    f = tmp_path / "chaos-target.yaml"
    f.write_text(TARGET)
    specs, left = proxy_specs(load(f))
    assert specs == [{"name": "listener.relay-a", "listen": "0.0.0.0:21501",
                      "upstream": "relay-a:8000", "enabled": True}]
    assert left == ["relay-a.origin"]
