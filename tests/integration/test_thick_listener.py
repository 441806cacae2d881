"""Thick listeners on the local stack: what listeners in every DC actually hear."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import aiohttp
import numpy as np
import pytest

from chaos.audio import sli
from chaos.targets import stack
from chaos.audio.analysis.reference import reference
from chaos.audio import testsignal
from chaos.adapters.space.joinapi import create_space
from chaos.adapters.space.listener import Listener
from chaos.audio.reception import SecondBins
from chaos.adapters.space import gateway_order
from chaos.session.probe import DRAIN_S
from chaos.adapters.space.speaker import Speaker
from chaos.adapters.space.thick import RunCache, ThickListener, analyse
from chaos.core.slo import weighted_percentile
from space.topology import DCS
from space.wire import FRAME_SAMPLES, SAMPLE_RATE

from .conftest import bring_up

pytestmark = [pytest.mark.local, pytest.mark.timeout(240)]
BASE = int(os.environ.get("CHAOS_TEST_THICK_BASE_PORT", 29000))  # below the ephemeral range
SECONDS = 5.0
PER_DC = 2          # thin and thick listeners each, per DC


@pytest.fixture(scope="module")
def local_stack(chaos_home):
    state = bring_up("local", "resilient", BASE)
    yield state
    stack.down()


class HotMic:
    """A test signal whose microphone hears the speaker's own past signal again: a copy
    ``lag_ms`` later at ``gain_db`` (a hot mic without echo cancelling), mixed in before
    encoding. Stands in for ``chaos.audio.voice.testsignal``."""

    def __init__(self, lag_ms: float, gain_db: float) -> None:
        self.lag = round(lag_ms * SAMPLE_RATE / 1000)
        self.gain = 10 ** (gain_db / 20)

    def frame(self, seq: int, seed: int = 0) -> np.ndarray:
        x = testsignal.frame(seq, seed).astype(np.float64)
        start = seq * FRAME_SAMPLES - self.lag          # first sample of the copy
        lo = max(0, start)                              # nothing before the speaker began
        end = start + FRAME_SAMPLES
        if lo < end:
            f0, f1 = lo // FRAME_SAMPLES, (end - 1) // FRAME_SAMPLES
            past = reference(f0, f1 - f0 + 1, seed).astype(np.float64)
            x[lo - start:] += self.gain * past[lo - f0 * FRAME_SAMPLES:end - f0 * FRAME_SAMPLES]
        return np.clip(np.round(x), -32768, 32767).astype(np.int16)


thin_bins: dict = {}   # home DC -> the thin listeners' per-second bins of the last listen()


async def listen(topo, seconds: float = SECONDS):
    """A speaker in dc-a; PER_DC thin and PER_DC thick listeners in every DC, for ``seconds``."""
    retry = topo.client_retry
    stop, stop_listeners = asyncio.Event(), asyncio.Event()
    run_start_ns = time.time_ns()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        space = await create_space(session, gateway_order(topo, DCS[0]), f"thick-{uuid.uuid4().hex[:8]}")
        speaker = Speaker(session, gateway_order(topo, DCS[0]), space, retry=retry)
        speaker_task = asyncio.create_task(speaker.run(stop))
        await asyncio.wait_for(speaker.connected.wait(), 10)
        thin, thick = [], []
        thin_bins.clear()
        thin_bins.update({dc: SecondBins(run_start_ns, 0.4) for dc in DCS})
        for i in range(PER_DC * len(DCS)):
            dc = DCS[i % len(DCS)]
            args = (session, i, dc, gateway_order(topo, dc), space, speaker.id, retry, 5.0)
            thin.append(Listener(*args, bins=thin_bins[dc]))
            thick.append(ThickListener(*args))
        tasks = [asyncio.create_task(lst.run(stop_listeners)) for lst in thin + thick]
        await asyncio.sleep(seconds)
        stop.set()
        await speaker_task
        await asyncio.sleep(DRAIN_S)
        stop_listeners.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await speaker.close()
    return speaker, thin, thick, run_start_ns


def reports(speaker, thick, run_start_ns):
    cache = RunCache(speaker.seed)
    return [analyse(t.rec, speaker.produced, seed=speaker.seed, run_start_ns=run_start_ns,
                    cache=cache) for t in thick]


def test_thick_listeners_hear_clean_audio_in_every_dc(local_stack):
    speaker, thin, thick, t0 = asyncio.run(listen(local_stack.topology))
    got = reports(speaker, thick, t0)
    assert {t.rec.dc for t in thick} == set(DCS)
    for t, r in zip(thick, got):
        assert r.joined, t.rec.join_error
        assert r.frames_expected >= 0.8 * SECONDS * 50
        assert r.audio_delivered >= 0.99, (r.dc, r.frames_lost, r.frames_late)
        assert r.freeze.intervals == ()
        assert r.echo.measured and not r.echo.detected and r.echo_db < -25.0
        assert r.silence.longest_s == 0.0 and r.silence.intervals == ()
        assert abs(r.audio_offset_ms) < 1.0           # frames unchanged end to end
        assert r.mos > 4.3
        assert r.mouth_to_ear_p95_s < 0.4
        # The thick record is a thin one too: same bookkeeping, same figures.
        assert t.rec.frames_heard == t.rec.messages and t.rec.out_of_order == 0
    # Mouth-to-ear agrees with the thin listeners' timestamps, DC by DC (their per-second
    # histograms read within ~2 %).
    for dc in DCS:
        thin_lat = sli.mouth_to_ear([thin_bins[dc]])
        thick_p50 = [r.mouth_to_ear_p50_s for r in got if r.home_dc == dc]
        assert thin_lat.events() and thick_p50
        thin_p50 = weighted_percentile(thin_lat.values, thin_lat.weights, 50)
        assert abs(float(np.median(thick_p50)) - thin_p50) < 0.005, dc


def test_thick_listeners_hear_a_hot_mic_echo_at_its_lag_and_strength(local_stack, monkeypatch):
    monkeypatch.setattr("chaos.audio.voice.testsignal", HotMic(250, -12.0))
    speaker, _, thick, t0 = asyncio.run(listen(local_stack.topology))
    for r in reports(speaker, thick, t0):
        assert r.joined and r.audio_delivered >= 0.99
        assert r.echo.measured and r.echo.detected, (r.dc, r.echo)
        assert abs(r.echo.lag_ms - 250) <= 20, (r.dc, r.echo.lag_ms)
        assert abs(r.echo.strength_db + 12) <= 2, (r.dc, r.echo.strength_db)
        assert r.echo_db > -25.0                      # the SLO breaks
        assert r.silence.longest_s == 0.0             # an echo is not dead air
