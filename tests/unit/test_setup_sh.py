"""fixtures/setup.sh says what it installs and needs: `--help` prints it and changes nothing.

The script is run for real, but only with --help (or a bad argument), from a copy, with fakes
first on PATH for every program that would install or start something: a fake that is called
leaves a mark, and the test fails on it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "fixtures" / "setup.sh"
# what setup.sh runs to install or start things; none may run under --help
ACTING = ("apt-get", "apt", "sudo", "go", "docker", "dockerd", "docker-compose", "systemctl",
          "python3", "python", "pip", "debootstrap", "iptables", "redis-server", "toxiproxy-server",
          "install", "nohup")


def _setup(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, float, Path]:
    clone = tmp_path / "clone"
    (clone / "fixtures").mkdir(parents=True)
    shutil.copy(SETUP, clone / "fixtures" / "setup.sh")
    fakes, mark = tmp_path / "fakes", tmp_path / "called"
    fakes.mkdir()
    for name in ACTING:
        fake = fakes / name
        fake.write_text(f'#!/bin/sh\necho "{name} $*" >> "{mark}"\nexit 97\n')
        fake.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PATH": f"{fakes}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
    env.pop("CHAOS_SKIP_DOCKER", None)
    t0 = time.monotonic()
    r = subprocess.run(["bash", str(clone / "fixtures" / "setup.sh"), *args], cwd=elsewhere, env=env,
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    assert not mark.exists(), f"setup.sh {' '.join(args)} ran: {mark.read_text()}"
    made = sorted(str(p.relative_to(tmp_path)) for d in (clone, elsewhere) for p in d.rglob("*"))
    assert made == ["clone/fixtures", "clone/fixtures/setup.sh"], f"setup.sh {' '.join(args)} made {made}"
    return r, elapsed, clone


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_says_what_it_needs_and_installs_and_changes_nothing(tmp_path, flag):
    r, elapsed, _ = _setup(tmp_path, flag)
    assert r.returncode == 0, r.stderr
    assert elapsed < 5, f"setup.sh {flag} took {elapsed:.1f} s"
    out = r.stdout
    for words in ("Debian", "root", "sudo", "Go", "toxiproxy-server", "Python 3.11", ".venv/",
                  "test, docs and otel extras", "dockerd", "images", "network", "redis-server service"):
        assert words in out, f"setup.sh --help does not say {words!r}:\n{out}"
    script = SETUP.read_text(encoding="utf-8")
    version = re.search(r"^TOXIPROXY_VERSION=(\S+)$", script, re.M).group(1)
    assert f"cmd/server@{version}" in out, f"the help names another toxiproxy than {version}"
    packages = {p for group in re.findall(r"need\+=\(([^)]*)\)", script) for p in group.split()}
    assert {"redis-server", "docker.io", "chromium"} <= packages, packages   # the parse found them
    missing = sorted(p for p in packages if not re.search(rf"(?<![\w.-]){re.escape(p)}(?![\w.-])", out))
    assert not missing, f"setup.sh installs Debian packages its --help does not list: {missing}"
    env_vars = {v for v in re.findall(r"\$\{([A-Z][A-Z0-9_]*)", script) if not v.startswith("BASH_")}
    assert "CHAOS_SKIP_DOCKER" in env_vars
    unsaid = sorted(v for v in env_vars if v not in out)
    assert not unsaid, f"setup.sh reads environment variables its --help does not name: {unsaid}"


def test_an_unknown_argument_is_refused_and_changes_nothing(tmp_path):
    r, _, _ = _setup(tmp_path, "--yes")
    assert r.returncode == 2
    assert "unknown argument --yes" in r.stderr and "--help" in r.stderr
