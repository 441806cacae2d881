"""The thick listener's post-run analysis on recorded histories of real Opus packets."""

import asyncio
import json
import math
import socket
import time

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus, InvalidURI

from chaos.audio.analysis.reference import reference
from chaos.audio.leanws import connect as open_lean
from chaos.adapters.space.speaker import _hint
from chaos.adapters.space.thick import RunCache, ThickListener, ThickRecord, analyse
from space import wire
from space.opus import Encoder
from chaos.core.retry import RetryPolicy

SPEAKER = "spk-1"
SPACE = "test-space"
FRAMES = 300                  # 6 s produced
JOIN_AT = 50                  # the listener's first frame: 5 s heard
T0 = 1_700_000_000_000_000_000
FRAME_NS = 20_000_000
MS = 48


def capture_ns(seq: int) -> int:
    return T0 + seq * FRAME_NS


PRODUCED = [(s, capture_ns(s)) for s in range(FRAMES)]


def encode(pcm: np.ndarray) -> list[bytes]:
    enc = Encoder()
    pcm = np.clip(np.round(pcm), -32768, 32767).astype(np.int16)
    return [enc.encode(pcm[i:i + 960]) for i in range(0, len(pcm), 960)]


def with_echo(x: np.ndarray, db: float, lag_ms: float) -> np.ndarray:
    lag = round(lag_ms * MS)
    y = x.astype(np.float64)
    y[lag:] += 10 ** (db / 20) * x[:-lag]
    return y


@pytest.fixture(scope="module")
def clean() -> list[bytes]:
    return encode(reference(0, FRAMES))


def history(packets, *, join_at=JOIN_AT, latency_s=0.02, drop=(), late=None, left_after_s=1.0,
            order=None, frames=FRAMES) -> ThickRecord:
    """A ThickRecord as a listener that joined at ``join_at`` would have kept it."""
    late = late or {}
    rec = ThickRecord(0, "dc-a", speaker=SPEAKER, join_s=0.1, dc="dc-a", edge="edge-a")
    msgs = []
    for seq in order or range(join_at, frames):
        if seq in drop:
            continue
        recv = capture_ns(seq) + round(1e9 * late.get(seq, latency_s))
        msgs.append((recv, wire.single(SPACE, SPEAKER, seq, capture_ns(seq), packets[seq])))
    if order is None:
        msgs.sort(key=lambda m: m[0])
    for recv, msg in msgs:
        rec.keep(recv, msg)
    rec.joined_ns = msgs[0][0]
    rec.left_ns = capture_ns(frames - 1) + round(left_after_s * 1e9)
    return rec


def test_the_log_round_trips_every_frame(clean):
    rec = history(clean)
    got = list(rec.frames())
    assert rec.messages == len(got) == FRAMES - JOIN_AT
    recv, frame = got[7]
    assert frame.contributors[0].seq == JOIN_AT + 7 and frame.payload == clean[JOIN_AT + 7]
    assert recv == capture_ns(JOIN_AT + 7) + 20_000_000


def test_clean_history_full_delivery_no_echo_no_silence(clean):
    r = analyse(history(clean), PRODUCED, seed=0, run_start_ns=T0)
    assert r.joined and (r.first_seq, r.last_seq) == (JOIN_AT, FRAMES - 1)
    assert r.audio_delivered == 1.0 and r.frames_expected == 250
    assert r.frames_lost == r.frames_late == 0
    assert r.freeze.share == 0.0 and r.freeze.intervals == ()
    assert r.t0_s == pytest.approx(1.0)
    assert r.silence.longest_s == 0.0 and r.silence.intervals == ()
    assert r.echo.measured and not r.echo.detected
    assert r.echo_db is not None and r.echo_db < -25.0
    assert abs(r.audio_offset_ms) < 0.5          # audio sits where its headers say
    assert r.mouth_to_ear_p50_s == pytest.approx(0.02) and r.mouth_to_ear_p95_s == pytest.approx(0.02)
    assert r.mos > 4.3
    assert r.undecodable == 0 and r.other_frames == 0


def test_dropped_frames_lower_delivery_and_are_located(clean):
    drop = set(range(150, 165)) | set(range(200, 208))  # 300 ms (a freeze) and 160 ms (not)
    r = analyse(history(clean, drop=drop), PRODUCED, seed=0, run_start_ns=T0)
    assert r.frames_lost == 23 and r.audio_delivered == pytest.approx(227 / 250)
    (gap,) = r.freeze.intervals
    assert (gap.start_s, gap.duration_s) == (3.0, 0.3)
    assert r.freeze.share == pytest.approx(15 / 250)
    # What the listener heard: dead air at both holes, located within a frame.
    starts = [i.start_s for i in r.silence.intervals]
    assert len(starts) == 2
    assert abs(starts[0] - 3.0) <= 0.02 and abs(r.silence.intervals[0].end_s - 3.3) <= 0.02
    assert abs(starts[1] - 4.0) <= 0.02
    assert r.silence.longest_s == pytest.approx(0.3, abs=0.02)
    assert not r.echo.detected                 # holes are not echo
    clean_mos = analyse(history(clean), PRODUCED, seed=0).mos
    assert r.mos < clean_mos - 0.3             # 8 % loss costs MOS


def test_late_frames_beyond_the_deadline_are_not_delivered(clean):
    late = {s: 1.0 for s in range(100, 121)}   # a stall: 21 frames 1 s late
    rec = history(clean, late=late)
    r = analyse(rec, PRODUCED, seed=0, run_start_ns=T0, playout_deadline_s=0.4)
    assert (r.frames_late, r.frames_lost) == (21, 0)
    assert r.audio_delivered == pytest.approx(229 / 250)
    assert [(i.start_s, i.duration_s) for i in r.freeze.intervals] == [(2.0, 0.42)]
    assert r.silence.longest_s == pytest.approx(0.42, abs=0.02)   # a late frame is not played
    assert r.mouth_to_ear_p95_s == pytest.approx(1.0)              # but its delay is measured
    # A player with a deeper buffer plays them.
    r2 = analyse(rec, PRODUCED, seed=0, run_start_ns=T0, playout_deadline_s=1.5)
    assert r2.audio_delivered == 1.0 and r2.freeze.intervals == () and r2.silence.longest_s == 0.0


def test_reordered_frames_in_time_are_played_in_seq_order(clean):
    order = list(range(JOIN_AT, FRAMES))
    for i in range(10, len(order) - 3, 7):
        order[i], order[i + 2] = order[i + 2], order[i]
    r = analyse(history(clean, order=order), PRODUCED, seed=0)
    assert r.audio_delivered == 1.0 and r.silence.longest_s == 0.0 and not r.echo.detected


@pytest.mark.parametrize("db, lag_ms", [(-12.0, 250), (-20.0, 700), (-6.0, 60)])
def test_an_echo_in_the_speakers_signal_is_found_at_its_lag_and_strength(db, lag_ms):
    packets = encode(with_echo(reference(0, FRAMES), db, lag_ms))
    r = analyse(history(packets), PRODUCED, seed=0)
    assert r.echo.measured and r.echo.detected
    assert abs(r.echo.lag_ms - lag_ms) <= 20.0
    assert abs(r.echo.strength_db - db) <= 2.0
    assert r.echo_db == r.echo.strength_db
    assert r.audio_delivered == 1.0 and r.silence.longest_s == 0.0


def test_a_short_echo_is_found_in_its_window_not_diluted():
    frames = 800  # 16 s: windows at seqs 50-249, 250-499, 500-799; the echo in the last only
    x = reference(0, frames).astype(np.float64)
    echoed = with_echo(x, -12.0, 250)
    x[500 * 960:] = echoed[500 * 960:]
    produced = [(s, capture_ns(s)) for s in range(frames)]
    r = analyse(history(encode(x), frames=frames), produced, seed=0, run_start_ns=T0)
    assert len(r.echo_windows) == 3
    clean_w, _, echo_w = r.echo_windows
    assert not clean_w.result.detected and echo_w.result.detected
    assert (echo_w.start_s, echo_w.duration_s) == (10.0, 6.0)
    assert r.echo is echo_w.result and abs(r.echo.strength_db + 12) <= 2


def test_a_window_with_too_little_audio_is_inconclusive_not_an_echo():
    frames = 800  # three windows; the middle one (seqs 250-499) hears 1 frame in 10
    x = reference(0, frames)
    produced = [(s, capture_ns(s)) for s in range(frames)]
    drop = {s for s in range(250, 500) if s % 10}
    r = analyse(history(encode(x), frames=frames, drop=drop), produced, seed=0)
    floors = [w.result.floor_db for w in r.echo_windows]
    assert floors[1] > -25.0 > max(floors[0], floors[2])   # the sparse window cannot tell
    assert not any(w.result.detected for w in r.echo_windows)
    assert r.echo_conclusive and r.echo_db == max(floors[0], floors[2]) < -25.0
    # Only that window: the run says nothing about echo.
    short = analyse(history(encode(x[:400 * 960]), frames=400, join_at=300,
                            drop={s for s in range(300, 400) if s % 10}),
                    produced[:400], seed=0)
    assert short.echo.measured and not short.echo_conclusive and short.echo_db is None


def test_a_listener_that_left_early_is_judged_until_it_left(clean):
    rec = history(clean, frames=200, left_after_s=0.2)   # left 0.2 s after frame 199's capture
    r = analyse(rec, PRODUCED, seed=0)
    # Due (capture + 0.4 s) before it left: frames up to 189; but it got up to 199 on time.
    assert r.last_seq == 199 and r.audio_delivered == 1.0


def test_a_listener_cut_off_mid_run_loses_the_rest(clean):
    rec = history(clean, drop=set(range(200, FRAMES)))
    r = analyse(rec, PRODUCED, seed=0, run_start_ns=T0)
    assert r.last_seq == FRAMES - 1 and r.frames_lost == 100
    assert r.freeze.intervals[-1].end_s == pytest.approx(6.0)
    assert r.silence.intervals[-1].start_s == pytest.approx(4.0, abs=0.02)


def test_a_listener_that_never_heard_the_speaker_is_inconclusive():
    rec = ThickRecord(3, "dc-b", speaker=SPEAKER, join_error="no audio within 5 s")
    r = analyse(rec, PRODUCED, seed=0)
    assert not r.joined and r.audio_delivered is None and r.mos is None and r.echo is None
    assert set(r.slo_values().values()) == {None}


def test_unrelated_audio_makes_echo_inconclusive(clean):
    other = encode(reference(0, FRAMES, seed=7))  # headers say spk-1, audio is someone else
    r = analyse(history(other), PRODUCED, seed=0)
    assert not r.echo.measured and not r.echo_conclusive and r.echo_db is None
    assert r.slo_values()["echo"] is None
    assert r.silence.longest_s == 0.0          # loud audio: not dead air, just not ours


def test_a_run_cache_shares_the_signal_and_identical_audio_is_analysed_once(clean):
    cache = RunCache(0)
    a = analyse(history(clean), PRODUCED, seed=0, cache=cache)
    b = analyse(history(clean), PRODUCED, seed=0, cache=cache)          # heard the same
    assert (cache.misses, cache.hits) == (1, 1) and b == a
    c = analyse(history(clean, join_at=80), PRODUCED, seed=0, cache=cache)
    assert c.audio_delivered == 1.0 and cache.misses == 2
    assert np.array_equal(cache.signal(20, 3), reference(20, 3))       # extended backwards
    assert np.array_equal(cache.signal(290, 20), reference(290, 20))   # and forwards
    fresh = analyse(history(clean, join_at=80), PRODUCED, seed=0)
    assert fresh == c                                                   # a memo changes nothing
    with pytest.raises(ValueError):
        analyse(history(clean), PRODUCED, seed=1, cache=cache)


def test_report_is_json(clean):
    a = analyse(history(clean), PRODUCED, seed=0)
    d = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    assert d["slis"]["audio_delivered"] == 1.0 and d["freeze"]["intervals"] == []
    assert math.isclose(d["slis"]["echo"], a.echo_db)
    assert d["echo"]["measured"] is True and len(d["echo_windows"]) == 1


# -- the lean socket, against a websockets server on loopback -----------------------------

async def _serve(handler, process_request=None):
    server = await serve(handler, "127.0.0.1", 0, process_request=process_request,
                         compression=None, max_size=2**16)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/listen?space=s&token=t"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_lean_socket_receives_what_the_server_sends():
    big = bytes(range(256)) * 200                       # 51 200 B: a 64-bit length header
    sent = [b"x" * 10, b"y" * 125, b"z" * 126, b"w" * 300, big]

    async def handler(ws):
        for m in sent:
            await ws.send(m)
        await ws.send([b"frag", b"ments"])              # one message in three frames
        pong = await ws.ping(b"hello")
        await asyncio.wait_for(pong, 2)                 # the lean socket answers pings
        await ws.send(b"after-ping")
        await ws.close()

    async def main():
        server, url = await _serve(handler)
        async with server:
            sock = await open_lean(url, 3)
            return [m async for m in sock]

    assert run(main()) == sent + [b"fragments", b"after-ping"]


def test_lean_socket_refusal_is_websockets_invalid_status_with_its_retry_hint():

    def full(connection, request):
        r = connection.respond(503, '{"error": "edge_full"}')
        r.headers["Retry-After"] = "2"
        return r

    async def main():
        server, url = await _serve(lambda ws: ws.wait_closed(), full)
        async with server:
            with pytest.raises(InvalidStatus) as exc:
                await open_lean(url, 3)
        return exc.value

    e = run(main())
    assert e.response.status_code == 503 and b"edge_full" in e.response.body
    assert _hint(e) == 2.0


def test_lean_socket_close_and_sink():
    codes = []

    async def handler(ws):
        await ws.send(b"one")
        await asyncio.sleep(0.2)
        await ws.send(b"SP\x01two")
        await ws.send(b"bad")
        try:
            await ws.wait_closed()
        finally:
            codes.append(ws.close_code)

    async def main():
        server, url = await _serve(handler)
        async with server:
            sock = await open_lean(url, 3)
            first = await sock.__anext__()
            got = []
            sock.sink = lambda m, ns: got.append((m, ns > 0)) or m.startswith(b"SP")
            rest = [m async for m in sock]              # the sink took them; ends on its close
            await sock.close()                          # idempotent
            await asyncio.sleep(0.1)
            return first, got, rest

    first, got, rest = run(main())
    assert first == b"one" and rest == []
    assert got == [(b"SP\x01two", True), (b"bad", True)]
    assert codes == [1007]                              # a message the sink refused


def test_lean_socket_timeout_and_refused_connection():

    async def silent():
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # never answers
        port = srv.sockets[0].getsockname()[1]
        async with srv:
            with pytest.raises(TimeoutError):
                await open_lean(f"ws://127.0.0.1:{port}/listen", 0.3)

    run(silent())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                        # bound, not listening: refused
        with pytest.raises(OSError):
            run(open_lean(f"ws://127.0.0.1:{port}/listen", 1))
    with pytest.raises(InvalidURI):                      # a WebSocketException: retried, not a crash
        run(open_lean("wss://127.0.0.1:1/listen", 1))


# -- the thick listener against a fake gateway and edge on loopback ----------------------

def test_thick_listener_joins_records_reconnects_and_settles():
    packets = encode(reference(0, 40))
    conns = []

    async def edge(ws):
        conns.append(ws)
        first = len(conns) == 1
        base = 0 if first else 20
        for seq in range(base, base + 20):           # 20 frames, then the first connection drops
            await ws.send(wire.single(SPACE, SPEAKER, seq, time.time_ns(), packets[seq]))
            if seq == 5 and first:
                await ws.send(wire.single(SPACE, "someone-else", 99, time.time_ns(), packets[0]))
            await asyncio.sleep(0.002)
        if first:
            await ws.close()
        else:
            await ws.wait_closed()

    async def main():
        server, url = await _serve(edge)
        app = web.Application()

        async def join(request):
            return web.json_response({"url": url, "edge": "edge-x", "dc": "dc-a"})

        app.router.add_post("/spaces/{space}/join", join)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        gw = f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        stop = asyncio.Event()
        try:
            async with server, aiohttp.ClientSession() as s:
                args = (s, 0, "dc-a", [gw], SPACE, SPEAKER, RetryPolicy("fixed", 0.05), 3.0)
                thick = ThickListener(*args)
                got.append(thick)
                task = asyncio.create_task(thick.run(stop))
                for _ in range(100):                  # bounded: until both connections ran
                    if thick.rec.messages >= 41:
                        break
                    await asyncio.sleep(0.05)
                stop.set()
                await asyncio.wait_for(task, 5)
        finally:
            await runner.cleanup()
        return thick.rec

    got = []
    rec = run(main())
    assert rec.join_s is not None and rec.edge == "edge-x" and rec.dc == "dc-a"
    assert rec.reconnects >= 1 and rec.edges_seen[:2] == ["edge-x", "edge-x"]
    assert rec.messages == 41 and rec.bad_frames == 0
    assert (rec.first_seq, rec.last_seq, rec.frames_heard, rec.out_of_order) == (0, 39, 40, 0)
    lat = got[0].latency                                   # every frame of its speaker, timed
    assert lat.count == 40 and 0 <= lat.min_s and lat.max_s < 1.0
    assert rec.left_ns is not None and rec.left_ns >= rec.joined_ns
    assert [f.contributors[0].seq for _, f in rec.frames()][:8] == [0, 1, 2, 3, 4, 5, 99, 6]
    produced = sorted({(f.contributors[0].seq, f.contributors[0].capture_ns)
                       for _, f in rec.frames() if f.contributors[0].speaker == SPEAKER})
    r = analyse(rec, produced, seed=0)
    assert r.frames_expected == 40 and r.audio_delivered == 1.0 and r.other_frames == 1


# -- analysed a segment at a time, as the run goes -----------------------------------------

def test_segments_analysed_as_they_close_merge_to_the_whole_listenings_report(monkeypatch):
    """Memory holds a segment or two of audio, not the run: each closed segment is analysed
    and dropped. Merged, the parts say what one analysis of the whole record says (a freeze
    across a segment's edge is one freeze)."""
    from chaos.adapters.space import thick as thick_mod
    from chaos.audio.reception import Produced, SecondBins
    monkeypatch.setattr(thick_mod, "SEGMENT_FRAMES", 250)     # 5 s segments for the test
    n = 1400
    packets = encode(reference(0, n))
    produced = Produced.of([(s, capture_ns(s)) for s in range(n)])
    drop = set(range(495, 507))                               # 240 ms across the 500 edge
    late = {800: 0.6}                                         # after its playout deadline
    whole = history(packets, join_at=60, drop=drop, late=late, frames=n)

    async def main():
        lst = ThickListener(None, 0, "dc-a", [], SPACE, SPEAKER, RetryPolicy("none"),
                            bins=SecondBins(T0, 0.4),
                            analyst=thick_mod.Analyst(produced, 0, T0))
        lst.rec.join_s, lst.rec.dc, lst.rec.edge = 0.1, "dc-a", "edge-a"
        peak = 0
        for recv, msg in sorted((r, m) for r, m in whole.kept()):
            assert lst._heard(msg, recv)
            peak = max(peak, sum(len(b) for b in lst.rec.segments.values()))
            await asyncio.sleep(0)
        for _ in range(200):                                  # bounded: the closed ones analysed
            if not lst._jobs:
                break
            await asyncio.sleep(0.05)
        closed = len(lst.parts)
        lst.rec.left_ns = whole.left_ns
        report = await lst.finish()
        lst.analyst.close()
        return report, closed, peak

    merged, closed, peak = run(main())
    one = analyse(whole, produced, run_start_ns=T0)
    assert closed >= 3, "segments were analysed while the listener still listened"
    assert peak < 3 * 250 * 400, "at most a few segments' bytes were held at once"
    for f in ("first_seq", "last_seq", "frames_expected", "frames_delivered", "frames_late",
              "frames_lost", "audio_delivered", "t0_s"):
        assert getattr(merged, f) == getattr(one, f), f
    assert merged.freeze.intervals == one.freeze.intervals and len(one.freeze.intervals) == 1
    assert merged.freeze.share == pytest.approx(one.freeze.share)
    assert merged.silence.longest_s == pytest.approx(one.silence.longest_s, abs=0.1)
    assert merged.mos == pytest.approx(one.mos, abs=1e-3)     # p95 read from a histogram
    assert [(w.start_s, w.duration_s) for w in merged.echo_windows] == \
        [(w.start_s, w.duration_s) for w in one.echo_windows] and merged.echo_conclusive
    for a, b in zip(merged.echo_windows, one.echo_windows):   # one decoder carried: same audio
        assert a.result == b.result
    assert merged.mos == pytest.approx(one.mos, abs=0.05)
    assert merged.mouth_to_ear_p95_s == pytest.approx(one.mouth_to_ear_p95_s, rel=0.01)
