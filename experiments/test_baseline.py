"""Baseline steady state: with no fault, a speaker and listeners in every DC, every SLO holds.

Expects: all listeners join, join_time p95 <= 2 s, audio_delivered >= 99.5 %,
mouth_to_ear p95 <= 400 ms. If this fails, no fault experiment is meaningful.
"""

import asyncio

from chaos.model import Verdict
from chaos.probes.session import run_probe


def test_steady_state_holds_without_faults(space_stack):
    result = asyncio.run(run_probe(space_stack.topology, listeners=20, seconds=5))
    failed = [f"{s.name}: {s.value} against {s.objective} ({s.verdict})"
              for s in result.slos if s.verdict is not Verdict.PASSED]
    assert result.listeners_joined == 20, result.to_dict()["join_errors"]
    assert not failed, "; ".join(failed)
