"""The http-stream adapter without a server: Ogg pages, the granule -> seq mapping, real
Opus through PyAV end to end (speaker's pages -> listener's parser -> analysis)."""

from __future__ import annotations

import asyncio
import io
import random
import time

import av
import numpy as np

from chaos.audio.reception import Produced, SecondBins
import pytest

from chaos.adapters import httpstream
from chaos.adapters.httpstream import ogg
from chaos.adapters.httpstream.report import NOT_OURS, analyse, audio_packets, inconclusive_why
from chaos.adapters.httpstream.codec import FRAME_SAMPLES, Encoder
from chaos.adapters.httpstream.endpoints import StreamEndpoints
from chaos.adapters.httpstream.listener import (
    StreamListener, ThickStreamListener, ThickStreamRecord, _Follow, seq_of,
)
from chaos.adapters.httpstream.speaker import StreamSpeaker
from chaos.core.errors import ConfigError
from chaos.audio import testsignal
from chaos.audio import sli

EP = StreamEndpoints("/live.opus", {"dc-a": "127.0.0.1:1", "dc-b": "127.0.0.1:2"},
                     source="127.0.0.1:3", source_password="pw")


# --- Ogg pages ----------------------------------------------------------------------------

def test_crc_matches_libogg_on_a_page_ffmpeg_wrote():
    """Our CRC is Ogg's (not zlib's): a page written by PyAV's (libavformat's) ogg muxer
    checks out, and a page of ours is read back by PyAV's demuxer."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as out:
        st = out.add_stream("libopus", rate=48_000)
        st.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), dtype=np.int16), format="s16",
                                           layout="mono")
        frame.sample_rate, frame.pts = 48_000, 0
        for p in st.encode(frame):
            out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    data = buf.getvalue()
    assert data[:4] == b"OggS"
    size = 27 + data[26] + sum(data[27:27 + data[26]])
    page = bytearray(data[:size])
    stored = int.from_bytes(page[22:26], "little")
    page[22:26] = b"\0\0\0\0"
    assert ogg.crc32(bytes(page)) == stored


def test_pages_split_back_into_packets_across_any_chunking():
    rng = random.Random(1)
    packets = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (1, 254, 255, 256, 600, 3)]
    stream = b"".join(ogg.page([p], serial=7, page_no=i, granule=960 * (i + 1),
                               flags=ogg.BOS if i == 0 else 0) for i, p in enumerate(packets))
    for cut in (1, 7, 100, len(stream)):
        reader = ogg.PageReader()
        got = []
        for at in range(0, len(stream), cut):
            got += [(pg.granule, pk) for pg in reader.feed(stream[at:at + cut]) for pk in pg.packets]
        assert [pk for _, pk in got] == packets
        assert [g for g, _ in got] == [960 * (i + 1) for i in range(len(packets))]


def test_a_join_mid_page_skips_to_the_next_capture_pattern():
    pages = [ogg.page([bytes([i]) * 50], serial=1, page_no=i, granule=960 * (i + 1))
             for i in range(3)]
    reader = ogg.PageReader()
    got = list(reader.feed(b"".join(pages)[20:]))
    assert [p.page_no for p in got] == [1, 2]
    assert reader.skipped == len(pages[0]) - 20


def test_a_packet_continued_over_two_pages_is_joined_and_an_orphan_dropped():
    big = bytes(range(256)) * 2                      # 512 bytes: 255 + 255 + 2
    lacing_first = b"\xff\xff"                       # ends with 255: continues
    body1, body2 = big[:510], big[510:]
    head = ogg._HEADER
    def raw(flags, granule, page_no, lacing, body):
        h = bytearray(head.pack(b"OggS", 0, flags, granule, 5, page_no, 0, len(lacing)) + lacing + body)
        return bytes(h)
    p1 = raw(0, ogg.NO_GRANULE, 0, lacing_first, body1)
    p2 = raw(ogg.CONTINUED, 960, 1, bytes([2]), body2)
    r = ogg.PageReader()
    pages = list(r.feed(p1 + p2))
    assert pages[0].packets == () and pages[1].packets == (big,)
    orphan = ogg.PageReader()
    assert [p.packets for p in orphan.feed(p2)] == [()]
    assert orphan.partial_dropped == 1


@pytest.mark.parametrize(("toc", "extra", "samples"), [
    (0xFC, b"", 960),        # CELT 20 ms, one frame (what libopus makes at 32 kbit/s mono)
    (0xF8 | 1, b"", 1920),   # CELT 20 ms, two frames
    (0x08, b"", 960),        # SILK 20 ms
    (0x78 | 3, bytes([3]), 2880),  # hybrid 20 ms, code 3, three frames
    (0xE0, b"", 120),        # CELT 2.5 ms
])
def test_opus_packet_durations_from_the_toc(toc, extra, samples):
    assert ogg.packet_samples(bytes([toc]) + extra + b"\0") == samples


def test_end_granules_of_several_packets_on_a_page():
    p = ogg.Page(0, 960 * 10, 1, 3, (b"a", b"b", b"c"), 0)
    assert ogg.end_granules(p, [960, 960, 960]) == [960 * 8, 960 * 9, 960 * 10]
    assert ogg.end_granules(ogg.Page(0, -1, 1, 3, (b"a",), 0), [960]) == [None]


def test_granule_to_seq_mapping():
    assert seq_of(960) == 0 and seq_of(960 * 51) == 50
    assert seq_of(None) is None and seq_of(0) is None and seq_of(1000) is None


def test_opus_head_round_trip_and_pre_skip():
    assert ogg.parse_opus_head(ogg.opus_head(pre_skip=312)) == 312
    assert ogg.parse_opus_head(Encoder().head) == 312      # libopus' own header
    with pytest.raises(ValueError):
        ogg.parse_opus_head(b"OpusTags........")


# --- the speaker's stream, parsed and analysed ------------------------------------------------

def _speaker_stream(first_seq: int, count: int, seed: int = 0) -> tuple[bytes, list[bytes]]:
    """The bytes our speaker writes for frames first_seq.. (headers first), as in run()."""
    spk = StreamSpeaker(EP, seed=seed)

    class W:
        data = bytearray()
        def write(self, b): self.data += b
        def is_closing(self): return False
        class transport:
            @staticmethod
            def get_write_buffer_size(): return 0
    w = W()
    spk._start_stream(w, first_seq)
    spk._writer = w
    enc = Encoder()
    payloads = []
    for seq in range(first_seq, first_seq + count):
        payload = enc.encode(testsignal.frame(seq, seed))
        payloads.append(payload)
        spk._send(seq, payload)
    return bytes(w.data), payloads


def test_speaker_pages_map_back_to_their_seqs_through_the_granule():
    data, payloads = _speaker_stream(100, 20)
    follow = _Follow()
    got = list(follow.audio(data))
    assert [seq_of(g) for g, _, _ in got] == list(range(100, 120))
    assert [p for _, p, _ in got] == payloads
    assert {c for _, _, c in got} == {"opus"}


def test_pyav_plays_the_speakers_stream():
    """A standard player (libavformat's Ogg demuxer + libopus) reads what we publish."""
    data, _ = _speaker_stream(0, 50)
    with av.open(io.BytesIO(data)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert len(pcm) >= 49 * FRAME_SAMPLES


def _listener_for(capture, bins=None):
    return StreamListener(None, 0, "dc-a", EP, capture, bins=bins)


def test_thin_bookkeeping_gives_seqs_and_latencies_sli_can_judge():
    data, _ = _speaker_stream(0, 100)
    t0 = 1_000_000_000_000
    produced = [(s, t0 + s * 20_000_000) for s in range(100)]
    bins = SecondBins(t0, 0.4)
    lst = _listener_for(lambda s: produced[s][1] if 0 <= s < len(produced) else None, bins)
    follow = _Follow()
    last = -1
    # deliver each page 30 ms after its capture
    for page_bytes, seq in _split_pages(data):
        recv = produced[seq][1] + 30_000_000 if seq is not None else t0
        last = lst._received(follow, page_bytes, recv, 0.0, last)
    rec = lst.rec
    assert (rec.first_seq, rec.last_seq, rec.frames_heard, rec.out_of_order) == (0, 99, 100, 0)
    assert rec.join_s is not None and rec.streams == 1 and rec.unmapped == 0
    m2e = sli.mouth_to_ear([bins])     # aggregated as heard: per-second latency buckets
    assert np.allclose(m2e.values, 0.030, rtol=0.05) and sum(bins.received) == 100
    delivered = sli.audio_delivered([bins], Produced.of(produced))
    assert delivered.values.mean() == 1.0


def _split_pages(data: bytes):
    at = 0
    out = []
    while at < len(data):
        nseg = data[at + 26]
        size = 27 + nseg + sum(data[at + 27:at + 27 + nseg])
        g = int.from_bytes(data[at + 6:at + 14], "little", signed=True)
        is_audio = not data[at + 27 + nseg:].startswith((b"OpusHead", b"OpusTags"))
        out.append((data[at:at + size], seq_of(g) if is_audio else None))
        at += size
    return out


def test_thick_analysis_of_a_clean_stream_is_clean():
    data, _ = _speaker_stream(0, 400)        # 8 s
    t0 = 2_000_000_000_000
    produced = [(s, t0 + s * 20_000_000) for s in range(400)]
    # receive each page 25 ms after capture (chunks aligned to pages)
    rec = ThickStreamRecord(0, "dc-a")
    rec.codec = "opus"
    for page_bytes, seq in _split_pages(data):
        rec.keep((produced[seq][1] if seq is not None else t0) + 25_000_000, 1, page_bytes)
    rec.left_ns = produced[-1][1] + 1_000_000_000
    rep = analyse(rec, produced, run_start_ns=t0)
    assert rep.joined and rep.frames_expected == 400 and rep.frames_delivered == 400
    assert rep.audio_delivered == 1.0
    assert rep.freeze.share == 0.0 and rep.silence.longest_s == 0.0
    assert rep.mouth_to_ear_p95_s == pytest.approx(0.025, abs=1e-6)
    assert rep.echo_conclusive and not rep.echo.detected
    assert abs(rep.audio_offset_ms) < 1.0      # decoded audio sits where the granules say
    assert rep.mos > 4.0


def test_thick_analysis_sees_a_cut_as_a_freeze_and_dead_air():
    data, _ = _speaker_stream(0, 400)
    t0 = 3_000_000_000_000
    produced = [(s, t0 + s * 20_000_000) for s in range(400)]
    rec = ThickStreamRecord(0, "dc-a")
    rec.codec = "opus"
    for page_bytes, seq in _split_pages(data):
        if seq is not None and 150 <= seq < 200:     # 1 s never arrives
            continue
        rec.keep((produced[seq][1] if seq is not None else t0) + 25_000_000, 1, page_bytes)
    rec.left_ns = produced[-1][1] + 1_000_000_000
    rep = analyse(rec, produced, run_start_ns=t0)
    assert rep.frames_lost == 50 and rep.audio_delivered == pytest.approx(350 / 400)
    assert len(rep.freeze.intervals) == 1
    assert rep.freeze.intervals[0].start_s == pytest.approx(3.0)
    assert rep.freeze.intervals[0].duration_s == pytest.approx(1.0)
    assert rep.silence.longest_s == pytest.approx(1.0, abs=0.06)


def test_a_stream_not_ours_judges_what_is_heard_and_nothing_that_needs_the_signal():
    """ffmpeg-like: a tone, granules on the stream's own clock; one 1 s stall."""
    enc = Encoder()
    serial = 9
    out = bytearray(ogg.page([enc.head], serial=serial, page_no=0, granule=0, flags=ogg.BOS))
    out += ogg.page([ogg.opus_tags()], serial=serial, page_no=1, granule=0)
    tone = (np.sin(2 * np.pi * 440 * np.arange(960 * 300) / 48_000) * 8000).astype(np.int16)
    rec = ThickStreamRecord(0, "dc-b")
    rec.codec = "opus"
    t0 = 4_000_000_000_000
    rec.keep(t0, 1, bytes(out))
    for k in range(300):
        page = ogg.page([enc.encode(tone[k * 960:(k + 1) * 960])], serial=serial,
                        page_no=2 + k, granule=960 * (k + 1))
        stall = 1_000_000_000 if k >= 100 else 0       # from packet 100 on, 1 s late
        rec.keep(t0 + k * 20_000_000 + stall, 1, page)
    rep = analyse(rec, [], run_start_ns=t0)
    assert rep.joined and rep.audio_delivered is None and rep.mouth_to_ear_p95_s is None
    assert rep.echo_db is None and rep.mos is None
    values = rep.slo_values()
    assert values["audio_delivered"] is None and values["mouth_to_ear"] is None
    # a player with a 0.4 s buffer: everything from packet 100 on is late -> one freeze
    assert rep.freeze.share == pytest.approx(200 / 300, abs=0.01)
    assert rep.silence.longest_s > 1.0
    assert set(inconclusive_why(False)) >= {"mouth_to_ear", "echo", "audio_delivered"}
    assert inconclusive_why(False)["mouth_to_ear"] == NOT_OURS and inconclusive_why(True) == {}


def test_thick_record_is_bounded_by_its_rolling_windows():
    rec = ThickStreamRecord(0, "dc-a", window_s=1.0, max_windows=3)
    for k in range(100):                                   # 10 s at 10 chunks/s
        rec.keep(k * 100_000_000, 1, b"x" * 100)
    assert len(rec.windows) == 3 and rec.dropped_windows == 7
    assert sum(1 for _ in rec.kept()) == 30


def test_audio_packets_restart_parsing_on_a_new_connection():
    data, _ = _speaker_stream(0, 10)
    rec = ThickStreamRecord(0, "dc-a")
    rec.keep(1, 1, data[: len(data) // 2 + 7])          # cut mid-page
    data2, _ = _speaker_stream(50, 10)
    rec.keep(2, 2, data2)
    seqs = [seq_of(g) for _, _, g, _, _ in audio_packets(rec)]
    assert seqs[-10:] == list(range(50, 60))
    assert all(s < 10 for s in seqs[:-10])


# --- the adapter's surface ----------------------------------------------------------------

def test_endpoints_refuse_bad_input_with_what_to_write():
    with pytest.raises(ConfigError, match="must start with '/'"):
        StreamEndpoints("live.opus", {"dc-a": "127.0.0.1:1"})
    with pytest.raises(ConfigError, match="host:port"):
        StreamEndpoints("/live.opus", {"dc-a": "localhost"})
    with pytest.raises(ConfigError, match="format"):
        StreamEndpoints("/live", {"dc-a": "127.0.0.1:1"}, format="flac")
    with pytest.raises(ConfigError, match="no listen address"):
        EP.listen_url("dc-z")


def test_adapter_surface():
    adapter = httpstream.HttpStreamAdapter()
    assert adapter.name == "http-stream" and adapter.storms is True
    assert asyncio.run(adapter.open_room(None, EP, "room")) == "/live.opus"
    spk = adapter.new_speaker(None, EP, None, None, seed=3)
    assert isinstance(spk, StreamSpeaker) and spk.seed == 3
    ext = StreamEndpoints("/live.opus", {"dc-a": "127.0.0.1:1"})
    feed = adapter.new_speaker(None, ext, None, None)
    assert isinstance(feed, httpstream.ExternalFeed) and feed.produced == [] and feed.id is None
    assert feed.connected.is_set() and adapter.new_listener(None, 0, "dc-a", ext, None, feed.id,
                                                            None).capture is None
    thick = adapter.new_listener(None, 1, "dc-b", EP, None, spk, None, 2.0, thick=True)
    assert isinstance(thick, ThickStreamListener) and thick.capture == spk.capture_ns
    assert thick.url == "http://127.0.0.1:2/live.opus"
    by_id = adapter.new_listener(None, 2, "dc-a", EP, None, spk.id, None)
    assert by_id.capture == spk.capture_ns and not isinstance(by_id, ThickStreamListener)
    with pytest.raises(ConfigError, match="no live speaker"):
        adapter.new_listener(None, 3, "dc-a", EP, None, "spk-gone", None)
    assert adapter.new_listener(None, 4, "dc-a", EP, None, None, None).capture is None


# --- streams that are not Opus: decoded with PyAV -------------------------------------------

def _encode(fmt: str, codec: str, pcm: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        st = out.add_stream(codec, rate=44_100 if codec == "libmp3lame" else 48_000)
        st.layout = "stereo" if codec == "vorbis" else "mono"   # FFmpeg's vorbis: stereo only
        if codec == "vorbis":
            st.codec_context.options = {"strict": "-2"}          # it is "experimental"
        rs = av.AudioResampler(format=st.codec_context.format.name, layout=st.layout.name,
                               rate=st.codec_context.sample_rate)
        for k in range(0, len(pcm), 960):
            f = av.AudioFrame.from_ndarray(pcm[k:k + 960].reshape(1, -1), format="s16",
                                           layout="mono")
            f.sample_rate, f.pts = 48_000, k
            for g in rs.resample(f):
                for p in st.encode(g):
                    out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "codec", "name"), [("ogg", "vorbis", "vorbis"),
                                                     ("mp3", "libmp3lame", "mp3")])
def test_vorbis_and_mp3_streams_are_judged_on_what_is_heard(fmt, codec, name):
    t = np.arange(48_000 * 4) / 48_000
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    pcm[48_000 * 2:48_000 * 3] = 0                       # 1 s of dead air at 2 s
    data = _encode(fmt, codec, pcm)
    rec = ThickStreamRecord(0, "dc-a")
    rec.codec = name
    n, t0 = 40, 10**12
    for i in range(n):                                   # arriving at real rate, in 40 chunks
        rec.keep(t0 + int(i * 4e9 / n), 1, data[i * len(data) // n:(i + 1) * len(data) // n])
    rep = analyse(rec, [], run_start_ns=t0)
    assert rep.frames_expected >= 195 and rep.freeze.share == 0.0
    assert len(rep.silence.intervals) == 1 and rep.silence.longest_s == pytest.approx(1.0, abs=0.04)
    assert rep.silence.intervals[0].start_s - rep.t0_s == pytest.approx(2.0, abs=0.04)
    assert rep.slo_values()["mouth_to_ear"] is None and rep.audio_delivered is None


def test_endpoints_from_a_target_description():
    from types import SimpleNamespace as NS
    services = {"relay-a": NS(dc="dc-a"), "relay-b": NS(dc="dc-b"), "origin": NS(dc="dc-a")}
    links = [NS(src="listener", dst="relay-a", connect="127.0.0.1:21101"),
             NS(src="listener", dst="relay-b", connect="127.0.0.1:21102"),
             NS(src="speaker", dst="origin", connect="127.0.0.1:21100"),
             NS(src="relay-a", dst="origin", connect="")]
    def target(**options):
        return NS(services=services, adapter_options=options,
                  links_from=lambda src: [lk for lk in links if lk.src == src])
    ep = httpstream.endpoints(target(mount="/live.opus", source_password="pw"))
    assert ep.listen == {"dc-a": "127.0.0.1:21101", "dc-b": "127.0.0.1:21102"}
    assert ep.source == "127.0.0.1:21100" and ep.ours and ep.source_password == "pw"
    ext = httpstream.endpoints(target(mount="/live.opus", feed="external"))
    adapter = httpstream.HttpStreamAdapter()
    assert not ext.ours and isinstance(adapter.new_speaker(None, ext, None, None),
                                       httpstream.ExternalFeed)
    assert set(adapter.slo_notes(target(mount="/m", feed="external"))) >= {"mouth_to_ear", "echo"}
    with pytest.raises(ConfigError, match="feed"):
        httpstream.endpoints(target(mount="/x", feed="ffmpeg"))
    with pytest.raises(ConfigError, match="mount"):
        httpstream.endpoints(target())


# --- the speaker over a socket: the source protocol, and the echo fault ------------------------

class _Source:
    """A stand-in for an Icecast origin's source side (the seam under test is our client's
    protocol): answers a PUT with 200 and keeps the body with its receive times."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.chunks: list[tuple[int, bytes]] = []

    async def handle(self, reader, writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head.decode())
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n")
        while data := await reader.read(65536):
            self.chunks.append((time.time_ns(), data))
        writer.close()


async def _publish(seconds: float, play=None):
    src = _Source()
    server = await asyncio.start_server(src.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ep = StreamEndpoints("/live.opus", {"dc-a": "127.0.0.1:1"}, source=f"127.0.0.1:{port}",
                         source_password="s3cret")
    spk = StreamSpeaker(ep, seed=2)
    stop = asyncio.Event()
    task = asyncio.create_task(spk.run(stop))
    await asyncio.wait_for(spk.connected.wait(), 5)
    if play is not None:
        await play(spk)
    await asyncio.sleep(seconds)
    stop.set()
    await task
    await spk.close()
    await asyncio.sleep(0.1)
    server.close()
    await server.wait_closed()
    return spk, src


def test_speaker_speaks_the_icecast_source_protocol():
    spk, src = asyncio.run(_publish(1.0))
    [head] = src.requests
    assert head.startswith("PUT /live.opus HTTP/1.1\r\n")
    assert "Authorization: Basic c291cmNlOnMzY3JldA==" in head      # source:s3cret
    assert "Content-Type: application/ogg" in head and "Ice-Name:" in head
    assert "Expect" not in head and "Transfer-Encoding" not in head
    data = b"".join(c for _, c in src.chunks)
    got = [seq_of(g) for g, _, _ in _Follow().audio(data)]
    # frames produced before the connection was up count as produced, not sent
    assert got == [s for s, _ in spk.produced][got[0]:] and got[0] <= 5
    assert spk.sent == len(got) > 40


def test_hot_mic_echo_is_published_and_found_by_the_analysis():
    async def play(spk):
        await asyncio.sleep(0.5)
        state = await asyncio.wait_for(spk.set_echo(0.2, 0.5), 1.0)
        assert state.seq > 0 and spk.echo_log[-1][2] is state
    spk, src = asyncio.run(_publish(3.0, play))
    with pytest.raises(ConfigError, match="hot_mic"):
        spk.set_echo(0.2, 0.5, mode="double")
    rec = ThickStreamRecord(0, "dc-a")
    rec.codec = "opus"
    for t, c in src.chunks:
        rec.keep(t, 1, c)
    rec.left_ns = time.time_ns()
    rep = analyse(rec, spk.produced, seed=2, run_start_ns=spk.produced[0][1])
    assert rep.echo_conclusive and rep.echo.detected
    assert rep.echo.lag_ms == pytest.approx(200, abs=1)
    assert rep.echo.strength_db == pytest.approx(-6.0, abs=1.5)      # gain 0.5


def test_after_a_cut_the_speaker_starts_a_new_stream_with_the_same_granule_mapping():
    """The origin drops the source after ~0.5 s; the speaker publishes again (retry), as a
    new logical stream (BOS, OpusHead) whose granules still say each packet's seq."""
    class Cutting(_Source):
        async def handle(self, reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.decode())
            writer.write(b"HTTP/1.0 200 OK\r\n\r\n")
            conn = len(self.requests)
            t_end = time.monotonic() + 0.5
            while data := await reader.read(65536):
                self.chunks.append((conn, data))
                if conn == 1 and time.monotonic() > t_end:
                    break                          # the origin drops the first source
            writer.close()

    class Retry:
        def delays(self):
            while True:
                yield 0.05

    async def run():
        src = Cutting()
        server = await asyncio.start_server(src.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ep = StreamEndpoints("/live.opus", {"dc-a": "127.0.0.1:1"}, source=f"127.0.0.1:{port}")
        spk = StreamSpeaker(ep, Retry())
        stop = asyncio.Event()
        task = asyncio.create_task(spk.run(stop))
        await asyncio.sleep(1.5)
        stop.set()
        await task
        await spk.close()
        await asyncio.sleep(0.1)
        server.close()
        await server.wait_closed()
        return spk, src

    spk, src = asyncio.run(run())
    assert spk.connections == 2 and len(src.requests) == 2
    assert "the server closed the source connection" in spk.errors
    streams = []
    for conn in (1, 2):
        data = b"".join(c for k, c in src.chunks if k == conn)
        reader = ogg.PageReader()
        pages = list(reader.feed(data))
        assert pages[0].bos and pages[0].packets[0].startswith(b"OpusHead")
        assert pages[0].granule == 0 and pages[1].granule == 0          # header pages
        streams.append([seq_of(g) for g, _, _ in _Follow().audio(data)])
        assert streams[-1] == list(range(streams[-1][0], streams[-1][-1] + 1))
    assert streams[1][0] > streams[0][-1]       # the second stream goes on, not from 0
    assert all(spk.capture_ns(s) is not None for s in streams[0] + streams[1])
