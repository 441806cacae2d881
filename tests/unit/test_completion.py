"""`chaos completion SHELL`: a completion script generated from the parser, that a real
bash completes commands and options with (for chaos and chaos-audio)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from chaos.cli import SHELLS, main


def _script(shell: str, capsys) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def _complete(script_path, words: list[str]) -> list[str]:
    line = " ".join(words)
    prog = f"""source {script_path}
COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE="{line}"; COMP_POINT={len(line)}
_shtab_chaos {words[0]} {words[-1]} {words[-2] if len(words) > 1 else words[0]}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")
def test_bash_completes_commands_and_options_from_the_script(tmp_path, capsys):
    script = tmp_path / "chaos.bash"
    script.write_text(_script("bash", capsys))
    assert _complete(script, ["chaos", "gam"]) == ["gameday"]
    assert _complete(script, ["chaos", "gameday", "x.yaml", "--tar"]) == ["--target"]
    assert "--join-rate" in _complete(script, ["chaos", "readiness", "--jo"])
    assert set(_complete(script, ["chaos", "stack", ""])) >= {"up", "down", "status", "reset"}
    done = subprocess.run(["bash", "-c", f"source {script}; complete -p chaos-audio"],
                          capture_output=True, text=True, timeout=30)
    assert "_shtab_chaos chaos-audio" in done.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_every_shell_gets_a_script_naming_every_command(shell, capsys):
    text = _script(shell, capsys)
    for command in ("stack", "probe", "fault", "readiness", "gameday", "report", "explore", "target"):
        assert command in text


def test_json_and_a_shell_it_does_not_know(capsys):
    assert main(["--json", "completion", "bash"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["shell"] == "bash" and "_shtab_chaos" in doc["script"]
    with pytest.raises(SystemExit) as e:
        main(["completion", "fish"])
    assert e.value.code == 2
