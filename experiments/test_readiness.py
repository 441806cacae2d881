"""Readiness, the quick form (what CI runs): the resilient stack against an event scaled to
this machine (60 listeners arriving at 10 joins/s, against the incident's 600,000 at ~833/s)
must be GO: every tier measured by a sweep to its knee, projected to the target's own
fleet, with the headroom wanted. The other known answers (fragile + dc_loss: NO-GO naming
redis in dc-a; a demand above the knee: NO-GO; a capped generator: INCONCLUSIVE) are in
tests/integration/test_readiness.py."""

import pytest

pytestmark = pytest.mark.chaos_profile("resilient")


def test_readiness_quick_go(chaos_readiness):
    a = chaos_readiness(audience=60, join_rate="600/min", quick=True, expect=("GO",))
    doc = a.doc
    assert doc["run_ids"] and all((a.dir.parent / r / "journal.json").exists() for r in doc["run_ids"])
    assert doc["target"]["fingerprint"] and doc["date"] and "scale" in doc
    assert {t["tier"] for t in doc["tiers"]} == {"join", "fanout"}
    assert all(t["headroom"] >= 0.3 for t in doc["tiers"])
