"""Listeners of an HTTP audio stream: a GET of the mount, held open, read incrementally.

Thin (``StreamListener``): on the real-time path it only splits Ogg pages (no CRC, no
decoding) and maps each Opus packet to the speaker's sequence number through the Ogg
granule position: the packet that ends at granule ``g`` carries frame ``g // 960 - 1``
(see ``speaker``: the framework's speaker starts granule 0 at seq 0 and counts the
pre-skip in, as RFC 7845 says). Receive time minus the speaker's capture time of that
seq is the frame's mouth-to-ear latency. Each frame goes straight into the listener's
``ListenerRecord`` reception and its group's per-second bins, as the reference stack's
listeners do, so ``chaos.audio.sli`` judges it the same way and memory does not grow.

The join is timed from the first GET to the first audio packet (header pages do not
count); a join that fails or outlives its timeout is a failed join, never dropped. A
stream that stops (the relay went, the link broke, nothing for ``stall_s``) is rejoined
with the retry policy, and counted in ``reconnects``.

Where the mount is fed by something else (no speaker of ours), nothing maps packets to
seqs: nothing is heard in the bins, and the SLIs that need the known signal are inconclusive; the
join is still timed and ``packets`` counted.

Thick (``ThickStreamListener``): the same, and it keeps every byte received with its
receive time in a bounded log (rolling windows: the oldest are dropped past
``max_windows``) for ``analyse`` to decode after the run.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import aiohttp

from chaos.adapters.httpstream import ogg
from chaos.adapters.httpstream._shared import PLAYOUT_DEADLINE_S, ListenerRecord, SecondBins, stay_joined
from chaos.adapters.httpstream.codec import FRAME_SAMPLES
from chaos.adapters.httpstream.endpoints import StreamEndpoints

STALL_S = 5.0                 # no bytes for this long: the stream is gone
CHUNK_LOG = struct.Struct("<qII")   # receive ns, connection number, length
HEADER_PACKETS = {"opus": 2, "vorbis": 3, "flac": 1}

CaptureLookup = Callable[[int], "int | None"]


def seq_of(end_granule: int | None) -> int | None:
    """The speaker's seq of the packet ending at ``end_granule`` (None if it has none or
    is not on the 20 ms grid)."""
    if end_granule is None or end_granule <= 0 or end_granule % FRAME_SAMPLES:
        return None
    return end_granule // FRAME_SAMPLES - 1


@dataclass
class StreamRecord(ListenerRecord):
    codec: str = ""               # of the last logical stream seen: opus, vorbis, mp3 ...
    content_type: str = ""
    packets: int = 0              # audio packets received (mapped or not)
    unmapped: int = 0             # audio packets with no seq (no granule, or not our speaker's)
    streams: int = 0              # logical streams begun (a source reconnect starts one)


@dataclass
class _Logical:
    codec: str = "unknown"
    headers_left: int = 0


class _Follow:
    """The per-connection parsing state of one listener (pages, logical streams)."""

    def __init__(self) -> None:
        self.reader = ogg.PageReader()
        self.streams: dict[int, _Logical] = {}

    def audio(self, chunk: bytes) -> Iterator[tuple[int | None, bytes, str]]:
        """(end granule, packet, codec) of every audio packet completed by this chunk."""
        for page in self.reader.feed(chunk):
            st = self.streams.get(page.serial)
            if page.bos or st is None:
                codec = ogg.codec_of(page.packets[0]) if page.packets else "unknown"
                st = self.streams[page.serial] = _Logical(codec, HEADER_PACKETS.get(codec, 0))
                if not page.bos:
                    st.headers_left = 0   # joined mid-stream without its headers
            packets = page.packets
            if st.headers_left:
                skip = min(st.headers_left, len(packets))
                st.headers_left -= skip
                packets = packets[skip:]
            if not packets:
                continue
            durations = [ogg.packet_samples(p) if st.codec == "opus" else 0 for p in packets]
            grans = ogg.end_granules(page, durations) if st.codec == "opus" else \
                [None] * (len(packets) - 1) + [page.granule if page.granule >= 0 else None]
            for g, p in zip(grans, packets):
                yield g, p, st.codec


class StreamListener:
    def __init__(self, session: aiohttp.ClientSession, index: int, home_dc: str,
                 endpoints: StreamEndpoints, capture: CaptureLookup | None, retry=None,
                 join_timeout_s: float = 5.0, stall_s: float = STALL_S,
                 bins: SecondBins | None = None) -> None:
        self.session, self.endpoints, self.capture = session, endpoints, capture
        self.bins = bins if bins is not None else SecondBins(time.time_ns(), PLAYOUT_DEADLINE_S)
        self.retry, self.join_timeout_s, self.stall_s = retry, join_timeout_s, stall_s
        self.url = endpoints.listen_url(home_dc)
        self.rec = self._record(index, home_dc)
        self.rec.edge, self.rec.dc = self.url, home_dc
        self._conn = 0
        self._last_seq = -1

    def _record(self, index: int, home_dc: str) -> StreamRecord:
        return StreamRecord(index, home_dc)

    async def _open(self, deadline: float) -> aiohttp.ClientResponse:
        """GET the mount until it answers 200 or the deadline passes (retry policy between)."""
        delays = self.retry.delays() if self.retry is not None else iter(())
        last = "no attempt"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                resp = await self.session.get(
                    self.url, headers={"Icy-MetaData": "0"},
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(left, 3.0),
                                                  sock_read=self.stall_s))
                if resp.status == 200:
                    self.rec.content_type = resp.headers.get("Content-Type", "")
                    self.rec.edges_seen.append(self.url)
                    return resp
                last = f"HTTP {resp.status} {resp.reason}"
                resp.release()
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                last = f"{type(e).__name__}: {e}"[:200]
            delay = next(delays, None)
            if delay is None:
                break
            await asyncio.sleep(max(0.0, min(delay, deadline - time.monotonic())))
        raise TimeoutError(last)

    async def run(self, stop: asyncio.Event) -> None:
        await stay_joined(self.rec, stop, self.join_timeout_s, self._open, self._read, _close,
                          (aiohttp.ClientError, TimeoutError, OSError))

    async def _read(self, resp: aiohttp.ClientResponse, t0: float, deadline: float) -> None:
        rec = self.rec
        self._conn += 1
        follow = _Follow()
        ogg_stream = "ogg" in rec.content_type or rec.content_type == ""
        async for chunk in resp.content.iter_any():
            recv_ns = time.time_ns()
            self._keep(recv_ns, chunk)
            if ogg_stream:
                self._last_seq = self._received(follow, chunk, recv_ns, t0, self._last_seq)
            else:
                self._bytes(recv_ns, t0)
            if rec.join_s is None and time.monotonic() > deadline:
                break

    def _joined(self, recv_ns: int, t0: float) -> None:
        if self.rec.join_s is None:
            self.rec.join_s = time.monotonic() - t0
            self.rec.joined_ns = recv_ns

    def _bytes(self, recv_ns: int, t0: float) -> None:
        """A stream that is not Ogg (MP3): the first body bytes are its first audio."""
        self._joined(recv_ns, t0)
        self.rec.codec = "mp3" if "mpeg" in self.rec.content_type else self.rec.content_type

    def _received(self, follow: _Follow, chunk: bytes, recv_ns: int, t0: float,
                  last_seq: int) -> int:
        """The real-time path: pages out of a chunk, seqs and latencies of its packets."""
        rec = self.rec
        before = len(follow.streams)
        for granule, _, codec in follow.audio(chunk):
            rec.codec = codec
            rec.packets += 1
            self._joined(recv_ns, t0)
            seq = seq_of(granule) if self.capture is not None and codec == "opus" else None
            capture_ns = self.capture(seq) if seq is not None else None
            if capture_ns is None:
                rec.unmapped += 1
                continue
            if rec.rx.heard(seq, capture_ns, recv_ns, self.bins):   # False: out of order
                last_seq = seq
        rec.streams += len(follow.streams) - before
        return last_seq

    def _keep(self, recv_ns: int, chunk: bytes) -> None:
        """A hook: the thick listener keeps the bytes."""


@dataclass
class ThickStreamRecord(StreamRecord):
    """A thin record plus the bytes received, with their receive times, in rolling windows
    of ``window_s``; at most ``max_windows`` are kept (the oldest are dropped, and
    counted), so memory stays bounded however long the run."""

    left_ns: int | None = None
    window_s: float = 10.0
    max_windows: int = 180
    dropped_windows: int = 0
    dropped_bytes: int = 0
    windows: list[tuple[int, bytearray]] = field(default_factory=list, repr=False)

    def keep(self, recv_ns: int, conn: int, chunk: bytes) -> None:
        if not self.windows or recv_ns - self.windows[-1][0] >= self.window_s * 1e9:
            self.windows.append((recv_ns, bytearray()))
            if len(self.windows) > self.max_windows:
                _, old = self.windows.pop(0)
                self.dropped_windows += 1
                self.dropped_bytes += len(old)
        log = self.windows[-1][1]
        log += CHUNK_LOG.pack(recv_ns, conn, len(chunk))
        log += chunk

    def kept(self) -> Iterator[tuple[int, int, bytes]]:
        """(receive ns, connection number, bytes) of every chunk kept, in arrival order."""
        for _, log in self.windows:
            at = 0
            while at < len(log):
                recv_ns, conn, size = CHUNK_LOG.unpack_from(log, at)
                at += CHUNK_LOG.size
                yield recv_ns, conn, bytes(log[at:at + size])
                at += size


class ThickStreamListener(StreamListener):
    def __init__(self, *args, analyst=None, **kw) -> None:
        super().__init__(*args, **kw)
        self.analyst = analyst

    async def finish(self, analyst=None):
        """Its report: the kept stream decoded and judged by the run's analyst."""
        return await (analyst or self.analyst).judge(self.rec)

    def _record(self, index: int, home_dc: str) -> ThickStreamRecord:
        return ThickStreamRecord(index, home_dc)

    def _keep(self, recv_ns: int, chunk: bytes) -> None:
        self.rec.keep(recv_ns, self._conn, chunk)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await super().run(stop)
        finally:
            self.rec.left_ns = time.time_ns()


async def _close(resp: aiohttp.ClientResponse) -> None:
    resp.close()
