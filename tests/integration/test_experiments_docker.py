"""A chosen subset of `pytest experiments/` against the docker runtime, as a user runs it:
the baseline and the loss of dc-b (containers killed by DC label and started again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.targets import images
from chaos.targets.docker import STACK_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
SUBSET = ["experiments/test_baseline.py", "experiments/test_dc_loss.py::test_dc_loss_mid_event[dc-b]"]


def test_experiment_subset_passes_on_docker(tmp_path, chaos_home):
    try:
        client = images.docker_client(timeout=5)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"docker engine not reachable ({str(e)[:160]})")
    try:
        if client.containers.list(all=True, filters={"label": [STACK_LABEL]}):
            pytest.skip("a docker space stack is already running here; not touching it")
    finally:
        client.close()
    images.ensure_images(print)
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *SUBSET, "--chaos-runtime", "docker", "-p", "no:cacheprovider",
         "-q", "--chaos-reports", str(reports)],
        cwd=ROOT, env={**os.environ, "CHAOS_HOME": str(chaos_home)}, capture_output=True,
        text=True, timeout=840, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    journals = [json.loads(p.read_text()) for p in reports.glob("*/journal.json")]
    assert sorted(j["experiment"]["name"] for j in journals) == ["baseline", "dc_loss_dc_b"], out[-2000:]
    for j in journals:
        assert j["target"]["runtime"] == "docker" and j["verdict"] == "passed"
    loss = next(j for j in journals if j["experiment"]["name"] == "dc_loss_dc_b")
    assert {s["dc"] for s in loss["faults"][0]["target"]["services"]} == {"dc-b"}
