"""The client-side faults (echo, join_storm): planning, the client executor with and without
a hub, the hub's thread hand-over to a running speaker, the speaker's hot-mic mixing and
double publishing on PCM (through the origin's real mixer), and the load generator's early
stop. No stack needed."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import time

import numpy as np
import pytest

from chaos.audio.analysis.echo import measure_echo
from chaos.audio.analysis.reference import reference
from chaos.core.errors import ConfigError
from chaos.faults import Engine, FaultError, FaultSpec, Ledger, Selector, catalogue, plan
from chaos.faults.executors import client as exec_client
from chaos.faults.executors import MECHANISMS
from chaos.load.worker import WorkerStorm
from chaos.audio import voice as voice_mod
from chaos.session.clients import SessionClients
from chaos.session.probe import LiveRun
from chaos.adapters.space.speaker import Speaker
from chaos.audio.voice import HISTORY_FRAMES, Voice, hot_mic
from space import wire
from space.mixer import SLOT_S, Mixer
from space.opus import Decoder
from chaos.core.retry import RetryPolicy
from chaos.adapters.space.reference import build

from .test_load_worker import FakeStack, spec

pytestmark = pytest.mark.timeout(60)
LOCAL = build("local", "resilient", 35000)
DOCKER = build("docker", "resilient")
N = wire.FRAME_SAMPLES
SR = wire.SAMPLE_RATE


# -- planning -----------------------------------------------------------------------------

def test_both_kinds_are_registered_for_both_runtimes_on_the_client_mechanism():
    registry = catalogue()
    for name in ("echo", "join_storm"):
        assert set(registry[name].runtimes) == {"local", "docker"}
    assert MECHANISMS["client"] == "client"


def test_echo_plans_one_client_action_on_the_speaker():
    for topo in (LOCAL, DOCKER):
        (a,) = plan(FaultSpec("echo"), topo, "e-1")
        assert (a.fault, a.fault_id, a.mechanism, a.target, a.dc) == ("echo", "e-1", "client", "speaker", None)
        assert a.params == {"delay_ms": 200, "gain_db": -6, "mode": "hot_mic"}
    (a,) = plan(FaultSpec("echo", Selector(service="speaker"),
                          {"delay_ms": 350, "gain_db": -12, "mode": "double"}), LOCAL, "e-2")
    assert a.params == {"delay_ms": 350.0, "gain_db": -12.0, "mode": "double"}
    assert a.describe() == "echo: client on speaker [delay_ms=350.0, gain_db=-12.0, mode=double]"


@pytest.mark.parametrize("params, match", [
    ({"delay_ms": 5}, r"delay_ms=5 is out of range; accepted: 30 to 1000 ms"),
    ({"delay_ms": 1500}, r"delay_ms=1500 is out of range"),
    ({"gain_db": 3}, r"gain_db=3 is out of range; accepted: -40 to 0 dB"),
    ({"mode": "feedback"}, r"mode='feedback' is not accepted; use one of hot_mic, double"),
    ({"delay": 200}, r"unknown parameter\(s\) delay"),
])
def test_echo_refuses_bad_parameters(params, match):
    with pytest.raises(ConfigError, match=match):
        plan(FaultSpec("echo", params=params), LOCAL)


@pytest.mark.parametrize("selector", [Selector(service="edge-b"), Selector(service="edge"),
                                      Selector(link="speaker.origin-a"), Selector(dc="dc-a"),
                                      Selector(count="2")])
def test_client_faults_refuse_a_selector_naming_the_stack(selector):
    for name in ("echo", "join_storm"):
        with pytest.raises(ConfigError, match=rf"{name} is played by the run's own .*client-side"):
            plan(FaultSpec(name, selector), LOCAL)


def test_join_storm_plans_one_bounded_client_action():
    (a,) = plan(FaultSpec("join_storm", params={"rate": 30, "hold_s": 2, "retry": "none"}),
                LOCAL, "s-1")
    assert (a.mechanism, a.target, a.dc) == ("client", "audience", None)
    assert a.params == {"rate": 30.0, "burst": 0, "burst_at_s": 0, "hold_s": 2.0,
                        "retry": "none", "max_s": 600.0}
    (a,) = plan(FaultSpec("join_storm", Selector(service="audience")), DOCKER, "s-2")
    assert a.params["rate"] == 50 and a.params["retry"] == "profile"


@pytest.mark.parametrize("params, match", [
    ({"rate": 0}, r"rate=0 is out of range"), ({"rate": 5000}, r"rate=5000 is out of range"),
    ({"retry": "sometimes"}, r"retry='sometimes' is not accepted; use one of none, fixed, "
                             r"exponential, exponential_jitter, profile"),
    ({"hold_s": -1}, r"hold_s=-1 is out of range"), ({"burst": 10**6}, r"burst=1000000 is out of range"),
])
def test_join_storm_refuses_bad_parameters(params, match):
    with pytest.raises(ConfigError, match=match):
        plan(FaultSpec("join_storm", params=params), LOCAL)


def test_join_storm_fires_only_at_loopback_gateways():
    far = dataclasses.replace(LOCAL.services["gateway-b"], public="10.1.2.3:8080")
    topo = dataclasses.replace(LOCAL, services={**LOCAL.services, "gateway-b": far})
    with pytest.raises(ConfigError, match=r"loopback .*10\.1\.2\.3:8080"):
        plan(FaultSpec("join_storm"), topo)


# -- the executor, with and without a hub ---------------------------------------------------

class FakeHub:
    def __init__(self, fail: bool = False):
        self.started, self.stopped, self.threads = [], [], set()
        self.fail = fail

    def start(self, a):
        self.threads.add(threading.get_ident())
        if self.fail:
            raise FaultError("the speaker is gone")
        self.started.append(a.key)

    def stop(self, a):
        self.stopped.append(a.key)


def engine(tmp_path, slot: exec_client.ClientSlot | None = None) -> Engine:
    ex = exec_client.ClientExecutor(None, slot)
    return Engine(lambda mechanism: ex, "stack-1", Ledger(tmp_path / "active.json"))


def test_inject_without_a_hub_says_where_client_faults_can_run(tmp_path):
    actions = plan(FaultSpec("echo"), LOCAL, "e-1")
    with pytest.raises(FaultError, match=r"echo and join_storm are played by the experiment's own "
                                         r"clients: they can only be injected during a "
                                         r"probe/experiment run, not by `chaos fault inject`"):
        exec_client.make(None).inject(actions[0])
    eng = engine(tmp_path)
    with pytest.raises(FaultError, match="only be injected during a probe"):
        eng.inject(actions)
    assert eng.ledger.active("stack-1") == []  # the engine's revert (a no-op) cleared it


def test_revert_without_a_hub_is_a_no_op_and_idempotent(tmp_path):
    """What the watchdog and `chaos stack reset` meet: the run that played it is gone."""
    actions = plan(FaultSpec("join_storm"), LOCAL, "s-1")
    eng = engine(tmp_path)
    eng.ledger.add(actions, "stack-1")        # left by a runner that died
    for _ in range(2):
        exec_client.make(None).revert(actions[0])
    report = eng.revert_all()
    assert report.ok and [a.key for a in report.reverted] == [actions[0].key]
    assert eng.ledger.active("stack-1") == []


def test_with_a_hub_inject_and_revert_reach_it_from_the_engine_threads(tmp_path):
    actions = plan(FaultSpec("echo"), LOCAL, "e-1") + plan(FaultSpec("join_storm"), LOCAL, "s-1")
    slot = exec_client.ClientSlot()
    hub, eng = FakeHub(), engine(tmp_path, slot)
    with slot.plugged(hub) as got:
        assert got is hub and slot.hub is hub
        eng.inject(actions)
        assert hub.started == [a.key for a in actions]
        assert threading.get_ident() not in hub.threads   # under the engine's deadline, in a thread
        report = eng.revert(actions)
        assert report.ok and hub.stopped == [a.key for a in reversed(actions)]
    assert slot.hub is None
    eng.revert(actions)                                 # unplugged: a no-op again
    assert hub.stopped == [a.key for a in reversed(actions)]


def test_a_hub_that_cannot_start_makes_the_engine_revert(tmp_path):
    slot = exec_client.ClientSlot()
    hub, eng = FakeHub(fail=True), engine(tmp_path, slot)
    with slot.plugged(hub):
        with pytest.raises(FaultError, match="the speaker is gone; reverted 1 step"):
            eng.inject(plan(FaultSpec("echo"), LOCAL, "e-1"))
    assert hub.stopped == ["e-1/client/speaker"] and eng.ledger.active("stack-1") == []


def test_one_hub_at_a_time_in_a_run_and_none_shared_between_runs(tmp_path):
    slot, other = exec_client.ClientSlot(), exec_client.ClientSlot()
    first = FakeHub()
    with slot.plugged(first):
        with pytest.raises(FaultError, match="already plugged"):
            with slot.plugged(FakeHub()):
                pass
        assert slot.hub is first
        assert other.hub is None            # nothing process-global: another run sees no hub
        with pytest.raises(FaultError, match="only be injected during a probe"):
            engine(tmp_path, other).inject(plan(FaultSpec("echo"), LOCAL, "e-1"))
    assert slot.hub is None


# -- the hub and a running speaker (no network: frames produced, not sent) ------------------

def live_run(spk: Speaker) -> LiveRun:
    return LiveRun(LOCAL, None, "space-1", spk, RetryPolicy("fixed", 0.1), 2.0, time.time_ns(),
                   [], [], asyncio.Event())


def test_the_hub_plays_an_echo_on_the_running_speaker_at_frame_boundaries():
    actions = plan(FaultSpec("echo", params={"delay_ms": 240, "gain_db": -12}), LOCAL, "e-1")
    slot = exec_client.ClientSlot()
    ex = exec_client.ClientExecutor(None, slot)

    async def main():
        stop = asyncio.Event()
        spk = Speaker(None, [], "space-1", retry=RetryPolicy("fixed", 0.1))
        task = asyncio.create_task(spk.run(stop))
        await asyncio.sleep(0.1)
        async with SessionClients(live_run(spk), slot) as hub:
            with pytest.raises(FaultError, match="event loop thread"):
                hub.start(actions[0])
            await asyncio.to_thread(ex.inject, actions[0])
            on = spk.echo
            await asyncio.to_thread(ex.inject, actions[0])      # idempotent
            await asyncio.sleep(0.1)
            await asyncio.to_thread(ex.revert, actions[0])
            off = spk.echo
            await asyncio.to_thread(ex.revert, actions[0])      # idempotent
        stop.set()
        await task
        return spk, on, off

    spk, on, off = asyncio.run(main())
    assert on is not None and (on.mode, on.delay_s, on.delay_samples) == ("hot_mic", 0.24, 11520)
    assert on.gain == pytest.approx(10 ** (-12 / 20))
    assert off is None
    assert [s is None for _, _, s in spk.echo_log] == [False, True]
    (t_on, seq_on, state), (t_off, seq_off, _) = spk.echo_log
    assert state.seq == seq_on and 3 <= seq_off - seq_on <= 8, spk.echo_log
    produced = dict(spk.produced)
    assert produced[seq_on] == t_on and produced[seq_off] == t_off   # taken at a frame's start


def test_the_hub_refuses_after_the_run_and_an_unknown_fault():
    async def main():
        spk = Speaker(None, [], "space-1")
        hub = SessionClients(live_run(spk))
        bad = dataclasses.replace(plan(FaultSpec("echo"), LOCAL, "x")[0], fault="latency")
        with pytest.raises(FaultError, match="play echo and join_storm, not latency"):
            await asyncio.to_thread(hub.start, bad)
        await hub.aclose()
        with pytest.raises(FaultError, match="closing"):
            await asyncio.to_thread(hub.start, plan(FaultSpec("echo"), LOCAL, "e")[0])
        return hub

    hub = asyncio.run(main())
    action = plan(FaultSpec("echo"), LOCAL, "e")[0]
    hub.stop(action)                               # the loop is gone: nothing to undo
    with pytest.raises(FaultError, match="the probe run is over"):
        hub.start(action)


# -- the hot mic, on PCM --------------------------------------------------------------------

def hot_mic_pcm(frames: int, delay_s: float, gain: float, on_from: int = 0, seed: int = 0):
    """What the speaker's loop encodes, frame by frame, with the echo on from a seq."""
    voice, out = Voice(seed), []
    n = int(round(delay_s * SR))
    for seq in range(frames):
        pcm = voice.frame(seq)
        out.append(hot_mic(pcm, voice.delayed(n), gain) if seq >= on_from else pcm)
    return np.concatenate(out)


def test_hot_mic_adds_the_delayed_signal_sample_accurately():
    delay_s, gain = 0.237, 10 ** (-6 / 20)          # 11376 samples: not a whole frame
    d = int(round(delay_s * SR))
    out = hot_mic_pcm(100, delay_s, gain)
    ref = reference(0, 100)
    assert out.dtype == np.int16
    want = ref.astype(np.float64)
    want[d:] += gain * ref[:-d]
    assert np.abs(out - np.clip(np.rint(want), -32768, 32767)).max() <= 1
    assert np.array_equal(out[:d], ref[:d])         # before the signal began: nothing to echo


def test_hot_mic_cross_correlates_at_its_lag_and_gain():
    for delay_ms, gain_db in ((200, -6), (45, -20), (900, -3)):
        out = hot_mic_pcm(300, delay_ms / 1000, 10 ** (gain_db / 20))
        res = measure_echo(out, reference(0, 300))
        assert res.detected, res
        assert res.lag_ms == pytest.approx(delay_ms, abs=0.05)
        assert res.strength_db == pytest.approx(gain_db, abs=0.5)
        assert res.direct_lag_ms == 0


def test_hot_mic_clips_to_int16_instead_of_wrapping():
    loud = np.full(N, 30000, dtype=np.int16)
    mixed = hot_mic(loud, np.full(N, 30000, dtype=np.float32), 1.0)
    assert mixed.dtype == np.int16 and (mixed == 32767).all()
    mixed = hot_mic(-loud, np.full(N, -30000, dtype=np.float32), 1.0)
    assert (mixed == -32768).all()


def test_voice_reaches_back_a_whole_second():
    voice = Voice()
    for seq in range(HISTORY_FRAMES + 5):
        voice.frame(seq)
    last = HISTORY_FRAMES + 4
    assert np.array_equal(voice.delayed(50 * N), reference(last - 50, 1).astype(np.float32))
    with pytest.raises(ValueError, match="at most 1 s"):
        asyncio.run(_set_echo(Speaker(None, [], "s"), 1.2, 0.5))


async def _set_echo(spk, delay_s, gain, **kw):
    return spk.set_echo(delay_s, gain, **kw)


# -- double publishing, through the origin's mixer ------------------------------------------

class FakeSocket:
    def __init__(self):
        self.sent: list[tuple[int, bytes]] = []

    async def send(self, data: bytes) -> None:
        self.sent.append((time.monotonic_ns(), data))


def test_double_publishes_a_delayed_copy_that_the_mixer_adds_and_listeners_ignore():
    delay_s, gain = 0.2, 10 ** (-6 / 20)

    async def main():
        stop = asyncio.Event()
        spk = Speaker(None, [], "space-1", speaker_id="spk-1", retry=RetryPolicy("fixed", 0.1))
        copy = Speaker(None, [], "space-1", speaker_id="spk-1.echo")
        spk._ws, copy._ws = FakeSocket(), FakeSocket()
        task = asyncio.create_task(spk.run(stop))
        await asyncio.sleep(0.3)
        with pytest.raises(ValueError, match="needs the second publisher"):
            spk.set_echo(delay_s, gain, mode="double")
        state = await spk.set_echo(delay_s, gain, mode="double", copy=copy)
        await asyncio.sleep(4.5)
        await spk.clear_echo()
        await asyncio.sleep(0.2)
        stop.set()
        await task
        return spk, copy, state

    spk, copy, state = asyncio.run(main())
    main_frames = [wire.decode(m) for _, m in spk._ws.sent]
    copy_frames = [wire.decode(m) for _, m in copy._ws.sent]
    assert {f.contributors[0].speaker for f in main_frames} == {"spk-1"}
    assert {f.contributors[0].speaker for f in copy_frames} == {"spk-1.echo"}
    # one copy frame with each of the speaker's frames while the echo played: same seq, same
    # capture time, sent right after it
    on = [f for f in main_frames if state.seq <= f.seq < spk.echo_log[-1][1]]
    assert [f.seq for f in copy_frames] == [f.seq for f in on]
    assert [f.contributors[0].capture_ns for f in copy_frames] == [f.contributors[0].capture_ns for f in on]
    assert copy.produced == [(f.seq, f.contributors[0].capture_ns) for f in on]
    assert len(copy_frames) >= 200

    # the copy alone: the signal 200 ms (+ the codec's 312 samples) late
    dec = Decoder()
    pcm = np.concatenate([dec.decode(f.payload)[:N] for f in copy_frames]).astype(float)
    first = copy_frames[0].seq
    lead = min(first, 50)
    assert lead >= 12
    ref = reference(first - lead, len(copy_frames) + lead).astype(float)
    assert lead * N + best_lag(pcm, ref) == int(delay_s * SR) + 312

    # the origin's mixer, fed in the order they were sent, adds them: echo at 200 ms, -6 dB,
    # and each room frame still carries the speaker's own seq and capture time
    room = asyncio.run(_mix([(t, m) for t, m in spk._ws.sent + copy._ws.sent]))
    ours = [(c, f) for f in room for c in f.contributors if c.speaker == "spk-1"]
    assert [c.seq for c, _ in ours] == [f.seq for f in main_frames]
    both = [f for c, f in ours if len(f.contributors) == 2 and c.seq >= first + 50]
    assert len(both) >= 150
    dec = Decoder()
    heard = np.concatenate([dec.decode(f.payload)[:N] for f in both])
    s0 = next(c.seq for c in both[0].contributors if c.speaker == "spk-1")
    res = measure_echo(heard, reference(s0 - 50, len(both) + 50))
    assert res.detected, res
    assert res.lag_ms == pytest.approx(200, abs=1)
    assert res.strength_db == pytest.approx(-6, abs=1.5)


def best_lag(received: np.ndarray, ref: np.ndarray) -> int:
    """k with received[m] ~ ref[m - k] (the strongest cross-correlation), by FFT."""
    n = 1 << (len(received) + len(ref)).bit_length()
    xc = np.fft.irfft(np.fft.rfft(received, n) * np.conj(np.fft.rfft(ref, n)), n)
    k = int(np.argmax(np.abs(xc)))
    return k if k < n // 2 else k - n


async def _mix(sent: list[tuple[int, bytes]]) -> list[wire.Frame]:
    """The mixer fed the frames at the times they were sent (its clock is theirs), its
    slot timer played by hand: it fires when the next frame is more than SLOT_S away."""
    out: list[bytes] = []
    now = [0.0]
    mixer = Mixer("space-1", out.append, first_seq=0, clock=lambda: now[0])
    sent = sorted(sent, key=lambda x: x[0])
    for i, (t, msg) in enumerate(sent):
        now[0] = t / 1e9
        mixer.push(wire.decode(msg))
        if mixer._timer is not None:     # not the loop's timer: the frames' own clock
            mixer._timer.cancel()
            mixer._timer = None
            if i + 1 == len(sent) or (sent[i + 1][0] - t) / 1e9 > SLOT_S:
                mixer.flush()
    mixer.flush()
    return [wire.decode(m) for m in out]


def test_set_echo_checks_its_arguments():
    async def main():
        spk = Speaker(None, [], "s")
        for args, match in (((0.2, 0.5, "loud"), "echo mode 'loud'"), ((0.0, 0.5), "delay 0 s"),
                            ((0.2, 2.0), "gain 2: use 0 to 1")):
            with pytest.raises(ValueError, match=match):
                spk.set_echo(*args)
        state = await spk.set_echo(0.1, 0.5)        # not running: taken at once
        assert spk.echo is state and spk.echo_log[-1][2] is state
        assert await spk.clear_echo() is None and spk.echo is None
    asyncio.run(main())


# -- the load generator's early stop (one worker, in-process) --------------------------------

def test_a_stopped_storm_reports_what_it_fired_and_no_unfired_failures():
    async def main():
        async with FakeStack() as stack:
            release = asyncio.Event()
            w = WorkerStorm(spec(stack, [i * 0.02 for i in range(500)], 10.0),
                                time.monotonic() + 0.05)
            asyncio.get_running_loop().call_later(0.6, release.set)
            t = time.monotonic()
            report = await w.run(release, lambda: None)
            return report, time.monotonic() - t

    report, took = asyncio.run(main())
    assert took < 3.0, "stopped, not run to the schedule's 10 s"
    assert 20 <= report["fired"] <= 35, report["fired"]
    assert report["arrivals"] == report["fired"] == report["joined"]
    assert "generator:not_fired" not in report["failures"] and report["join"]["failed"] == 0


def test_a_storm_not_stopped_runs_its_schedule_and_holds_until_release():
    async def main():
        async with FakeStack() as stack:
            release = asyncio.Event()
            drained = []
            w = WorkerStorm(spec(stack, [i * 0.02 for i in range(20)], 0.5, hold_s=None),
                                time.monotonic() + 0.05)

            def on_drained():
                drained.append(time.monotonic())
                asyncio.get_running_loop().call_later(0.3, release.set)
            report = await w.run(release, on_drained)
            return report, drained

    report, drained = asyncio.run(main())
    assert report["arrivals"] == report["fired"] == report["joined"] == 20 and drained
    assert max(report["held_by_s"]) == 20


def test_speaker_module_constants():
    assert voice_mod.MAX_ECHO_S == 1.0 and HISTORY_FRAMES == 52
