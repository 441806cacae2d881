"""The same framework against a stack that is not ours: Debian's Icecast as an origin in
dc-a and a relay per DC, every link through toxiproxy (fixtures/icecast/), described by its
target file and probed through the http-stream adapter. The session brings the fixture up
with the target's own `up` command if it is not running, and takes it down after.

Expects: a steady state like the reference stack's; latency on one DC's listener link
harms that DC only; a relay cut from the origin for a few seconds loses nobody; losing dc-a
silences every DC, and the report says it is because the origin lives in dc-a; a join storm
of listeners who stay (a GET of the mount each) leaves the room playing.
"""

import pytest

from chaos import Experiment, fault, objective
from chaos.experiment import Audience
from chaos.core.model import Phase, Verdict

pytestmark = pytest.mark.chaos_target("../../fixtures/icecast/chaos-target.yaml")

AUDIENCE = Audience(listeners=9, thick_per_dc=1, join_every_s=1.0)


def test_icecast_baseline(chaos_run):
    chaos_run(Experiment(
        name="icecast_baseline", title="Icecast: steady state with no fault",
        expects="every listener in every DC hears every frame on time", audience=AUDIENCE,
        steady_state=tuple(objective(s) for s in ("join_time", "audio_delivered", "mouth_to_ear",
                                                  "freeze", "silence")),
        before_s=5, after_s=5))


def test_icecast_latency_harms_only_its_dc(chaos_run):
    result = chaos_run(Experiment(
        name="icecast_latency_dc_b", title="Icecast: 600 ms on dc-b's listener link",
        expects="mouth_to_ear breaks in dc-b only, and recovers", audience=AUDIENCE,
        method=[fault("latency", link="listener.relay-b", at_s=0, duration_s=8, latency_ms=600)],
        during=[objective("mouth_to_ear")], before_s=5, after_s=8, recover_s=3), check=False)
    m2e = result.slo("mouth_to_ear", Phase.DURING)
    assert m2e.verdict is Verdict.FAILED, result.notes()
    assert {dc for dc, d in m2e.per_dc.items() if d.verdict is Verdict.FAILED} == {"dc-b"}, m2e.per_dc
    after = result.slo("mouth_to_ear", Phase.AFTER)
    assert after.verdict is Verdict.PASSED, result.notes()
    assert any("audio arrived late in dc-b" in line for line in result.notes()), result.notes()


def test_icecast_relay_cut_from_its_origin_loses_nobody(chaos_run):
    chaos_run(Experiment(
        name="icecast_link_down_relay_b", title="Icecast: relay-b cut from the origin for 4 s",
        expects="dc-b hears a gap; everyone hears audio again within 30 s", audience=AUDIENCE,
        method=[fault("link_down", link="relay-b.origin", at_s=0, duration_s=4)],
        after=[objective("audience_retained")], before_s=5, after_s=10, recover_s=4))


def test_icecast_dc_a_loss_silences_every_dc_because_of_the_origin(chaos_run):
    result = chaos_run(Experiment(
        name="icecast_dc_loss_dc_a", title="Icecast: dc-a lost (the origin and relay-a)",
        expects="every DC goes silent: the origin is a single point of failure",
        audience=AUDIENCE, method=[fault("dc_loss", dc="dc-a", at_s=0, duration_s=5, mode="kill")],
        during=[objective("audio_delivered")], before_s=5, after_s=12, recover_s=6), check=False)
    j = result.record
    assert j.verdict is Verdict.FAILED, result.notes()
    ad = result.slo("audio_delivered", Phase.DURING)
    assert {dc for dc, d in ad.per_dc.items() if d.verdict is Verdict.FAILED} == {"dc-a", "dc-b", "dc-c"}
    assert any("in all three DCs because the origin lives in dc-a" in line for line in result.notes()), \
        result.notes()
    assert all(f.reverted for f in j.faults)


# the storm's 240 streams load the relays' containers: with the other worker killing and
# restarting a stack beside it, two cores starved them (audio late in every DC); alone it holds
@pytest.mark.quiet
def test_icecast_join_storm_keeps_the_room_playing(chaos_run):
    result = chaos_run(Experiment(
        name="icecast_join_storm", title="Icecast: 30 joins/s for 8 s, every arrival stays",
        expects="the storm's joins (a GET of the mount each, timed to its first audio page) take "
                "under 2 s at p95, and the listeners already there keep hearing every frame",
        audience=AUDIENCE,
        method=[fault("join_storm", at_s=0, duration_s=8, rate=30, hold_s=600)],
        during=[objective("join_time"), objective("audio_delivered"), objective("mouth_to_ear")],
        before_s=5, after_s=6, recover_s=2))
    storm = result.record.storms[0]
    assert storm.arrivals >= 0.75 * 30 * 8, storm
    assert storm.joined + storm.failed == storm.arrivals
    assert storm.joined >= 0.95 * storm.arrivals, storm.failures
    assert storm.peak_concurrent >= 0.9 * storm.joined, storm   # they stayed
