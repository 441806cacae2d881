"""The layering of DESIGN.md section 3 as a contract (import-linter, configured in
pyproject.toml): calls point down the layers, adapters are independent of each other, only
the space adapter imports the reference stack's package, and no package has an import
circle (but the fault registry's self-registration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    report = out.stdout + out.stderr
    assert out.returncode == 0, f"an import breaks the layering:\n{report}"
    assert "BROKEN" not in report and report.count("KEPT") == 4, report
