"""A thick listener: hears what a person would hear, judged a segment at a time.

Jepsen-style: while listening it only records, at real rate and cheaply, the messages it
receives (receive time + the wire frame as it came: speaker seq, capture time, contributors
and the Opus payload) in compact byte logs, one per segment of SEGMENT_FRAMES of the
followed speaker's seqs. Decoding and the audio analysis run off the real-time path, in
``analyse``: a pure function of a record, what the speaker produced and its seed. With an
``Analyst``, each segment is analysed on its thread as soon as it closes and its bytes are
dropped, so a listener holds a segment or two of audio whatever the run's length; ``merge``
makes the parts one report of the whole listening.

Joining, timing the join and reconnecting are the thin listener's (``ThickListener``
subclasses ``Listener`` through its ``_heard`` hook). Its socket is the project's lean
receive-only WebSocket client (``chaos.audio.leanws``) that, once joined, hands each
message straight to ``_heard``: the thin counters (``chaos.audio.reception``) and the
segment's log, so a ``ThickRecord`` is also a ``ListenerRecord`` and feeds ``chaos.audio.sli``
and ``session.delivered_ratio`` alike.

What ``analyse`` plays, per followed speaker: the frames that carry it, decoded with one
Opus decoder in its seq order, each laid on its 20 ms slot (slot i = seq first_seq + i).
A frame that never came, or came after its playout deadline (capture + deadline), is not
played: its slot is silence (a player without concealment; libopus' concealment would fade
to silence within a few frames). The reference is the speaker's test signal over the same
seqs, so ``gaps.silences`` and ``echo.measure_echo`` see aligned input.
"""

from __future__ import annotations

import asyncio
import ctypes
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from space import wire
from space.opus import Decoder

from chaos.audio.analysis import emodel
from chaos.audio.analysis.gaps import Interval, SilenceReport, freezes
from chaos.audio.histogram import Histogram
from chaos.audio.record import ListenerRecord
from chaos.audio.sli import ECHO_RESOLVE_DB, PLAYOUT_DEADLINE_S
from chaos.core.slo import percentile
from chaos.audio.hearing import (
    ECHO_LEAD_FRAMES, FRAME_S, SEGMENT_FRAMES, RunCache, ThickReport, _decisive, _unheard,
)
from chaos.audio.playout import Heard, against_signal, check, last_slot, play
from chaos.adapters.space.listener import Listener


_LOG = struct.Struct("<qI")        # receive time (ns, wall clock), message length
CLOSE_AFTER_FRAMES = 70            # a segment closes once a frame 1.4 s past its end came:
                                   # its own frames would now be past the playout deadline


def _log_frames(buf: bytes | bytearray) -> Iterator[tuple[int, bytes]]:
    at = 0
    while at < len(buf):
        recv_ns, size = _LOG.unpack_from(buf, at)
        at += _LOG.size
        yield recv_ns, bytes(buf[at:at + size])
        at += size


@dataclass
class ThickRecord(ListenerRecord):
    """A thin listener's record plus the messages of the segments not analysed yet.

    Messages are kept per segment of SEGMENT_FRAMES of the followed speaker's seqs (a
    message that carries it goes to its seq's segment; one that does not, to the segment
    being filled); a segment's bytes are dropped once it is analysed, so memory holds at
    most a segment or two of audio whatever the run's length.
    """

    speaker: str = ""                       # the speaker it follows
    left_ns: int | None = None              # wall clock when it stopped listening
    messages: int = 0
    bad_frames: int = 0                     # messages that did not parse (not analysed)
    stragglers: int = 0                     # frames of an analysed segment (late: not played)
    segments: dict[int, bytearray] = field(default_factory=dict, repr=False)
    log: bytearray = field(default_factory=bytearray, repr=False)  # unsegmented (no followed speaker seen)

    def keep(self, recv_ns: int, msg: bytes, segment: int | None = None) -> None:
        """The real-time path: two appends to one bytearray, no per-frame objects."""
        buf = self.log if segment is None else self.segments.setdefault(segment, bytearray())
        buf += _LOG.pack(recv_ns, len(msg))
        buf += msg
        self.messages += 1

    def kept(self) -> Iterator[tuple[int, bytes]]:
        """(receive ns, message) of every message still kept, segment by segment."""
        yield from _log_frames(self.log)
        for k in sorted(self.segments):
            yield from _log_frames(self.segments[k])

    def frames(self) -> Iterator[tuple[int, wire.Frame]]:
        """(receive ns, frame) for every kept message that parses."""
        for recv_ns, msg in self.kept():
            try:
                yield recv_ns, wire.decode(msg)
            except wire.WireError:
                continue


_MAGIC = wire.MAGIC + bytes((wire.VERSION,))


class Analyst:
    """Analyses thick listeners' closed segments as the run goes, one at a time on a thread
    of its own (off the event loop's real-time path), and keeps only the results.

    ``produced`` is the speaker's record (``Speaker.produced``: seq, capture_ns);
    ``run_start_ns`` the run's t0."""

    def __init__(self, produced, seed: int, run_start_ns: int) -> None:
        from concurrent.futures import ThreadPoolExecutor
        self.produced, self.seed, self.run_start_ns = produced, seed, run_start_ns
        self.cache = RunCache(seed)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="thick-analysis")
        self.analysed = 0

    async def segment(self, rec: ThickRecord, k: int, log: bytes, from_seq: int | None,
                      final: bool, decoder: Decoder | None = None) -> tuple[ThickReport, np.ndarray | None]:
        """Analyse segment k of ``rec`` (its messages ``log``); ``decoder``: the listener's,
        carried from its previous segment (the audio decodes as in one analysis)."""
        lo = max(0, (k * SEGMENT_FRAMES if from_seq is None else min(from_seq, k * SEGMENT_FRAMES))
                 - ECHO_LEAD_FRAMES)
        hi = (k + 1) * SEGMENT_FRAMES
        part = ThickRecord(rec.index, rec.home_dc, edge=rec.edge, dc=rec.dc, speaker=rec.speaker,
                           left_ns=rec.left_ns if final else None)
        part.log = bytearray(log)
        produced = self.produced.between(lo, hi)
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(self.pool, lambda: _trimmed(_analyse(
            part, produced, seed=self.seed, run_start_ns=self.run_start_ns, cache=self.cache,
            from_seq=from_seq, decoder=decoder)))
        self.analysed += 1
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class ThickListener(Listener):
    """Same constructor, join and reconnect behaviour as ``Listener``; keeps the messages
    of the segments not analysed yet.

    The real-time path is kept to the minimum: each message is parsed for the followed
    speaker's seq (for the thin counters and its segment) and appended to its segment's
    log. With an ``analyst``, a segment is analysed once closed (a frame 1.4 s past its end
    came) and its bytes dropped; the rest are analysed when the listener stops, and
    ``report()`` merges the parts into one ``ThickReport`` of the whole listening.
    """

    def __init__(self, session, index: int, home_dc: str, gateways: list[str], space: str,
                 speaker_id: str, retry, join_timeout_s: float = 5.0, bins=None,
                 analyst: Analyst | None = None) -> None:
        super().__init__(session, index, home_dc, gateways, space, speaker_id, retry,
                         join_timeout_s, bins)
        self.rec: ThickRecord = ThickRecord(index, home_dc, speaker=speaker_id)
        self.analyst = analyst
        self.latency = Histogram()           # receive - capture of the followed speaker, s
        self.parts: list[tuple[int, ThickReport, np.ndarray | None]] = []  # (segment, report, heard)
        self._next = None                    # the first segment not analysed yet
        self._filling = 0                    # the segment being filled
        self._jobs: set[asyncio.Task] = set()
        self._decoder: Decoder | None = None  # carried from segment to segment

    def _heard(self, msg: bytes, recv_ns: int) -> bool:
        if msg[:3] != _MAGIC:
            return False
        rec = self.rec
        try:
            frame = wire.decode(msg)
        except wire.WireError:
            rec.bad_frames += 1
            rec.keep(recv_ns, msg, self._filling)
            return True
        k = None
        for c in frame.contributors:
            if c.speaker == self.speaker:
                rec.rx.heard(c.seq, c.capture_ns, recv_ns, self.bins)
                self.latency.record(max(0.0, (recv_ns - c.capture_ns) / 1e9))
                k = c.seq // SEGMENT_FRAMES
        if k is None:
            rec.keep(recv_ns, msg, self._filling)
            return True
        if self._next is not None and k < self._next:
            rec.stragglers += 1              # its segment is analysed: late, not played
            rec.messages += 1
            return True
        if self._next is None:
            self._next = k
        rec.keep(recv_ns, msg, k)
        self._filling = max(self._filling, k)
        if (self.analyst is not None and self._next < k
                and frame_seq(frame, self.speaker) >= (self._next + 1) * SEGMENT_FRAMES + CLOSE_AFTER_FRAMES):
            self._close_next()
        return True

    def _close_next(self) -> None:
        k = self._next
        log = self.rec.segments.pop(k, bytearray())
        from_seq = (self.rec.rx.first_seq if not self.parts and not self._jobs
                    else k * SEGMENT_FRAMES)
        self._next = k + 1
        job = asyncio.get_running_loop().create_task(self._analyse(k, bytes(log), from_seq, False))
        self._jobs.add(job)

    async def _analyse(self, k: int, log: bytes, from_seq: int | None, final: bool) -> None:
        if self._decoder is None:
            self._decoder = Decoder()
        try:
            self.parts.append((k, *await self.analyst.segment(self.rec, k, log, from_seq, final,
                                                              self._decoder)))
        finally:
            self._jobs.discard(asyncio.current_task())

    async def run(self, stop) -> None:
        try:
            await super().run(stop)
        finally:
            self.rec.left_ns = time.time_ns()

    async def finish(self, analyst: Analyst | None = None) -> ThickReport:
        """Analyse what is left and merge every part: the whole listening's report."""
        analyst = analyst or self.analyst
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        if analyst is None:
            raise ValueError("a thick listener's report needs an Analyst")
        rec = self.rec
        if self._next is not None:
            self.analyst = analyst
            first = not self.parts
            last = max(rec.segments, default=self._next)
            for k in range(self._next, last + 1):
                log = rec.segments.pop(k, bytearray())
                await self._analyse(k, bytes(log), rec.rx.first_seq if first and k == self._next
                                    else k * SEGMENT_FRAMES, k == last)
            self._next = last + 1
        return merge(rec, sorted(self.parts, key=lambda p: p[0]), self.latency)


def _trimmed(out):
    """Hand the analysis' freed buffers back to the system (glibc keeps them otherwise, and a
    probe's memory would show its largest analysis, not what it holds)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to trim
    return out


def frame_seq(frame: wire.Frame, speaker: str) -> int:
    return next((c.seq for c in frame.contributors if c.speaker == speaker), -1)


# --- analysis (pure: no I/O, no clock) ---------------------------------------------------

def analyse(record: ThickRecord, produced: Sequence[tuple[int, int]], *, seed: int = 0,
            playout_deadline_s: float = PLAYOUT_DEADLINE_S, run_start_ns: int | None = None,
            echo_window_s: float = 5.0, echo_resolve_db: float = ECHO_RESOLVE_DB,
            cache: RunCache | None = None) -> ThickReport:
    """Decode and judge what ``record``'s listener heard of its speaker.

    ``produced`` is the speaker's (seq, capture_ns) of every frame (``Speaker.produced``),
    ``seed`` its test-signal seed. The frames judged run from the first one the listener
    received to the last whose playout deadline passed before it left (or the last it got
    on time); all of them count, a loss or reconnect included. Echo is measured per window
    of about ``echo_window_s``: the worst window decides, so a short echo fault is not
    diluted by a long clean run; a window that cannot resolve ``echo_resolve_db`` (the
    echo SLO's threshold) is inconclusive, not a breach. ``run_start_ns`` (wall clock) is
    time 0; by default the speaker's first capture. Pass one ``RunCache`` to every
    listener's analysis of a run.
    """
    return _analyse(record, produced, seed=seed, playout_deadline_s=playout_deadline_s,
                    run_start_ns=run_start_ns, echo_window_s=echo_window_s,
                    echo_resolve_db=echo_resolve_db, cache=cache)[0]


def _analyse(record: ThickRecord, produced, *, seed: int = 0,
             playout_deadline_s: float = PLAYOUT_DEADLINE_S, run_start_ns: int | None = None,
             echo_window_s: float = 5.0, echo_resolve_db: float = ECHO_RESOLVE_DB,
             cache: RunCache | None = None, from_seq: int | None = None,
             decoder: Decoder | None = None) -> tuple[ThickReport, np.ndarray | None]:
    """``analyse``, and the heard slots (for merging segments). ``from_seq``: judge the
    slots from this seq on (a segment's start) rather than from the first frame heard."""
    check(playout_deadline_s, cache, seed)
    cache = cache or RunCache(seed)
    prod = np.asarray(produced, dtype=np.int64).reshape(-1, 2)
    prod = prod[np.argsort(prod[:, 0], kind="stable")]
    pseqs, pcap = prod[:, 0], prod[:, 1]
    if run_start_ns is None:
        run_start_ns = int(pcap[0]) if len(pcap) else 0

    # The followed speaker's frames, in arrival order.
    seqs, capture, recv, payloads, other = [], [], [], [], 0
    for recv_ns, frame in record.frames():
        c = next((c for c in frame.contributors if c.speaker == record.speaker), None)
        if c is None:
            other += 1
            continue
        seqs.append(c.seq)
        capture.append(c.capture_ns)
        recv.append(recv_ns)
        payloads.append(frame.payload)
    ident = dict(index=record.index, home_dc=record.home_dc, dc=record.dc, edge=record.edge,
                 playout_deadline_s=playout_deadline_s, other_frames=other)
    if (not seqs and from_seq is None) or not len(pseqs):
        return _unheard(ident), None
    seqs_a = np.asarray(seqs, dtype=np.int64)
    lat_a = (np.asarray(recv, dtype=np.int64) - np.asarray(capture, dtype=np.int64)) / 1e9
    m2e_p50, m2e_p95 = percentile(lat_a, 50), percentile(lat_a, 95)

    # The slots judged: first frame received .. last frame due (or got) before leaving.
    first = int(seqs_a[0]) if from_seq is None else from_seq
    on_time = lat_a <= playout_deadline_s
    last = last_slot(seqs_a, on_time, first, prod, record.left_ns, playout_deadline_s)
    if last < first:
        return _unheard(ident), None
    n = last - first + 1
    heard = Heard.of(seqs_a, lat_a, on_time, first, last, playout_deadline_s)
    k0 = int(np.searchsorted(pseqs, first))
    slot0_ns = (int(pcap[k0]) if k0 < len(pseqs) and pseqs[k0] == first
                else int(capture[0]) if capture else int(pcap[min(k0, len(pcap) - 1)]))
    t0_s = round((slot0_ns - run_start_ns) / 1e9, 9)
    pcm, undecodable = play(heard, seqs_a, on_time, payloads, first, last, decoder or Decoder())
    judged = against_signal(pcm, heard, first, last, int(pseqs[0]), t0_s, m2e_p95,
                            playout_deadline_s, echo_window_s, echo_resolve_db, cache)
    return ThickReport(
        **ident, joined=True, first_seq=first, last_seq=last, t0_s=t0_s,
        frames_expected=n, frames_delivered=heard.delivered, frames_late=heard.late,
        frames_lost=n - heard.delivered - heard.late, freeze=freezes(heard.slots, t0_s=t0_s),
        mouth_to_ear_p50_s=m2e_p50, mouth_to_ear_p95_s=m2e_p95, undecodable=undecodable,
        **judged), heard.slots


def merge(record: ThickRecord, parts: list[tuple[int, ThickReport, np.ndarray | None]],
          latency: Histogram | None = None) -> ThickReport:
    """One report of the whole listening from its segments' reports (in segment order).

    Counts add up; freezes are found again over the joined heard slots (a gap across a
    segment's edge is one gap); dead-air runs that touch across an edge are joined; echo
    windows are the segments' (they sit on the same seq boundaries as in one analysis);
    mouth-to-ear is read from the listener's own histogram of every frame; MOS from them.
    The listener's one decoder is carried from segment to segment, so the audio decodes as
    in one analysis of the whole record."""
    heard_parts = [(r, h) for _, r, h in parts if r.joined and h is not None]
    other = sum(r.other_frames for _, r, _ in parts)
    if not heard_parts:
        first = parts[0][1] if parts else None
        if first is not None:
            return replace(first, other_frames=other)
        return _unheard(dict(index=record.index, home_dc=record.home_dc, dc=record.dc,
                             edge=record.edge, playout_deadline_s=PLAYOUT_DEADLINE_S,
                             other_frames=other))
    reports = [r for r, _ in heard_parts]
    r0 = reports[0]
    heard = np.concatenate([h for _, h in heard_parts])
    expected = sum(r.frames_expected for r in reports)
    delivered = sum(r.frames_delivered for r in reports)
    late = min(sum(r.frames_late for r in reports) + record.stragglers,
               expected - delivered)
    freeze = freezes(heard, t0_s=r0.t0_s)
    sil = [r.silence for r in reports if r.silence is not None]
    silence = None
    if sil:
        runs: list[Interval] = []
        for iv in (iv for x in sil for iv in x.intervals):
            if runs and iv.start_s <= runs[-1].end_s + FRAME_S / 2:
                runs[-1] = Interval(runs[-1].start_s, iv.end_s - runs[-1].start_s)
            else:
                runs.append(iv)
        silence = SilenceReport(tuple(runs), max([x.longest_s for x in sil]
                                                 + [iv.duration_s for iv in runs]),
                                sum(x.talking_s for x in sil), sum(x.dead_s for x in sil))
    windows = tuple(w for r in reports for w in r.echo_windows)
    echo, conclusive = _decisive([(w, 0) for w in windows], ECHO_RESOLVE_DB)
    if latency is not None and latency.count:
        p50, p95 = latency.quantile(0.5), latency.quantile(0.95)
    else:
        p50 = max((r.mouth_to_ear_p50_s for r in reports if r.mouth_to_ear_p50_s is not None), default=None)
        p95 = max((r.mouth_to_ear_p95_s for r in reports if r.mouth_to_ear_p95_s is not None), default=None)
    offsets = [r.audio_offset_ms for r in reports if r.audio_offset_ms is not None]
    loss = 1.0 - delivered / expected if expected else None
    burst = emodel.burst_ratio(~heard)
    mos = (None if p95 is None or loss is None
           else emodel.mos(1000 * min(p95, r0.playout_deadline_s), loss, burst_ratio=burst))
    return replace(
        r0, first_seq=r0.first_seq, last_seq=reports[-1].last_seq, frames_expected=expected,
        frames_delivered=delivered, frames_late=late, frames_lost=expected - delivered - late,
        audio_delivered=delivered / expected if expected else None, freeze=freeze,
        silence=silence, echo=echo, echo_conclusive=conclusive, echo_windows=windows,
        mouth_to_ear_p50_s=p50, mouth_to_ear_p95_s=p95,
        audio_offset_ms=float(np.median(offsets)) if offsets else None, loss=loss,
        loss_burst_ratio=burst, mos=mos, undecodable=sum(r.undecodable for r in reports),
        other_frames=other)
