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
receive-only WebSocket client (``chaos.probes.leanws``) that, once joined, hands each
message straight to ``_heard``: the thin counters (``chaos.probes.reception``) and the
segment's log, so a ``ThickRecord`` is also a ``ListenerRecord`` and feeds ``chaos.sli``
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
import hashlib
import math
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

import av
import numpy as np

from space import wire
from space.opus import Decoder

from ...analysis import emodel
from ...analysis.echo import EchoResult, measure_echo
from ...analysis.gaps import FreezeReport, Interval, SilenceReport, freezes, heard_slots, silences
from ...analysis.reference import reference
from ...load.histogram import Histogram
from ...probes.record import ListenerRecord
from ...sli import ECHO_RESOLVE_DB, PLAYOUT_DEADLINE_S
from ...slo import percentile
from .listener import Listener

FRAME_SAMPLES = wire.FRAME_SAMPLES
FRAME_S = wire.FRAME_MS / 1000
CODEC_DELAY_SAMPLES = 312          # libopus decodes 6.5 ms late (see analysis.sequence)
CODEC_DELAY_MS = CODEC_DELAY_SAMPLES * 1000 / wire.SAMPLE_RATE
ECHO_LEAD_FRAMES = 50              # the echo reference starts 1 s before the heard audio

_LOG = struct.Struct("<qI")        # receive time (ns, wall clock), message length
SEGMENT_FRAMES = 500               # 10 s: analysed as each closes (a multiple of the echo window)
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
KEEP_SIGNAL_FRAMES = SEGMENT_FRAMES + ECHO_LEAD_FRAMES  # test signal kept before the last asked for
MAX_ECHO_MEMO = 256                       # echo results memoised (windows of every listener)


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

class RunCache:
    """What the analyses of one run's listeners share: the speaker's test signal (generated
    once: it costs about as much as decoding) and echo results for identical audio.

    Listeners that heard the same frames decode to the same samples (libopus is
    deterministic, and a decoder that joined later converges bit-exactly within about
    1.5 s), and echo windows sit on the same seq boundaries, so a healthy run's echo
    analysis, about 85 % of the cost, is done once per distinct window rather than once
    per listener. ``measure_echo`` is pure: a memo cannot change an answer.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.hits = self.misses = 0
        self._first = 0
        self._pcm = np.zeros(0, dtype=np.int16)
        self._echo: dict[tuple[bytes, int, int], EchoResult] = {}

    def signal(self, first_seq: int, count: int) -> np.ndarray:
        """int16 test signal of seqs first_seq .. first_seq + count - 1."""
        if count <= 0:
            return np.zeros(0, dtype=np.int16)
        if not len(self._pcm):
            self._first, self._pcm = first_seq, reference(first_seq, count, self.seed)
        if first_seq < self._first:
            self._pcm = np.concatenate((reference(first_seq, self._first - first_seq, self.seed),
                                        self._pcm))
            self._first = first_seq
        have_end = self._first + len(self._pcm) // FRAME_SAMPLES
        if first_seq + count > have_end:
            self._pcm = np.concatenate((self._pcm, reference(have_end, first_seq + count - have_end,
                                                             self.seed)))
        at = (first_seq - self._first) * FRAME_SAMPLES
        out = self._pcm[at:at + count * FRAME_SAMPLES]
        # keep what later segments may ask for again (they go forward): memory stays flat
        drop = first_seq - KEEP_SIGNAL_FRAMES - self._first
        if drop > 0:
            out = out.copy()
            self._pcm, self._first = self._pcm[drop * FRAME_SAMPLES:].copy(), self._first + drop
        return out

    def echo(self, received: np.ndarray, ref_first: int, ref_count: int) -> EchoResult:
        """``measure_echo(received, signal(ref_first, ref_count))``, memoised."""
        key = (hashlib.blake2b(received.tobytes(), digest_size=16).digest(), ref_first, ref_count)
        hit = self._echo.get(key)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        res = self._echo[key] = measure_echo(received, self.signal(ref_first, ref_count))
        if len(self._echo) > MAX_ECHO_MEMO:
            del self._echo[next(iter(self._echo))]  # the oldest window: later ones go forward
        return res


@dataclass(frozen=True)
class EchoWindow:
    start_s: float          # seconds since the run start (speaker capture time of its first slot)
    duration_s: float
    result: EchoResult


@dataclass(frozen=True)
class ThickReport:
    """What one thick listener heard. Times are seconds since the run start, on the
    speaker's capture clock (when the audio was spoken). ``None``: not measured."""

    index: int
    home_dc: str
    dc: str
    edge: str
    joined: bool                         # it heard the speaker at least once
    playout_deadline_s: float
    first_seq: int | None                # the slots judged: first frame heard ..
    last_seq: int | None                 # .. last frame due before it left
    t0_s: float | None                   # time of slot 0
    frames_expected: int
    frames_delivered: int                # arrived before the playout deadline
    frames_late: int                     # arrived, but after it
    frames_lost: int                     # never arrived
    audio_delivered: float | None
    freeze: FreezeReport | None
    silence: SilenceReport | None
    echo: EchoResult | None              # the deciding window (see _decisive)
    echo_conclusive: bool                # False: no window could tell (echo SLI inconclusive)
    echo_windows: tuple[EchoWindow, ...]
    mouth_to_ear_p50_s: float | None     # receive - capture, every frame of the speaker received
    mouth_to_ear_p95_s: float | None
    audio_offset_ms: float | None        # decoded audio vs where its headers place it, codec
                                         # delay removed: ~0 unless audio and headers disagree
    loss: float | None                   # 1 - audio_delivered, for the E-model
    loss_burst_ratio: float
    mos: float | None                    # G.107 from min(p95 delay, deadline) and loss
    undecodable: int = 0                 # frames the decoder refused (played as silence)
    other_frames: int = 0                # frames without the followed speaker (not on its timeline)

    @property
    def freeze_share(self) -> float | None:
        return None if self.freeze is None else self.freeze.share

    @property
    def silence_longest_s(self) -> float | None:
        return None if self.silence is None else self.silence.longest_s

    @property
    def echo_db(self) -> float | None:
        """The echo SLI: strength if detected, else the floor (an upper bound); None when
        inconclusive (no direct path, or too little audio to resolve the threshold)."""
        if self.echo is None or not self.echo_conclusive:
            return None
        return self.echo.at_most_db

    def slo_values(self) -> dict[str, float | None]:
        """Whole-listening values by SLI name (chaos.slo.SLIS); None means inconclusive."""
        return {"audio_delivered": self.audio_delivered, "freeze": self.freeze_share,
                "mouth_to_ear": self.mouth_to_ear_p95_s, "echo": self.echo_db,
                "silence": self.silence_longest_s, "mos": self.mos}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["slis"] = self.slo_values()
        return _jsonable(d)


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
    if not playout_deadline_s > 0:
        raise ValueError(f"playout_deadline_s must be > 0, got {playout_deadline_s}")
    if cache is not None and cache.seed != seed:
        raise ValueError(f"the cache holds the signal of seed {cache.seed}, not {seed}")
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
    deadline_ns = int(round(playout_deadline_s * 1e9))
    first = int(seqs_a[0]) if from_seq is None else from_seq
    on_time = lat_a <= playout_deadline_s
    last = int(pseqs[-1])
    if record.left_ns is not None:
        due = pseqs[pcap + deadline_ns <= record.left_ns]
        last = max(int(due.max()) if len(due) else first - 1,
                   int(seqs_a[on_time].max()) if on_time.any() else first - 1)
        last = min(last, int(pseqs[-1]))
    if last < first:
        return _unheard(ident), None
    n = last - first + 1

    # First arrival of each seq wins; later duplicates are not played again.
    _, firsts = np.unique(seqs_a, return_index=True)
    firsts.sort()
    in_range = (seqs_a[firsts] >= first) & (seqs_a[firsts] <= last)
    idx = firsts[in_range]
    heard = heard_slots(seqs_a[idx], latency_s=lat_a[idx], deadline_s=playout_deadline_s,
                        first_seq=first, last_seq=last)
    delivered = int(heard.sum())
    late = int((~on_time[idx]).sum())
    k0 = int(np.searchsorted(pseqs, first))
    slot0_ns = (int(pcap[k0]) if k0 < len(pseqs) and pseqs[k0] == first
                else int(capture[0]) if capture else int(pcap[min(k0, len(pcap) - 1)]))
    t0_s = round((slot0_ns - run_start_ns) / 1e9, 9)
    freeze = freezes(heard, t0_s=t0_s)

    # Play: frames on time, in seq order, one decoder; every other slot is silence.
    pcm = np.zeros(n * FRAME_SAMPLES, dtype=np.int16)
    played = idx[on_time[idx]]
    played = played[np.argsort(seqs_a[played], kind="stable")]
    decoder, undecodable = decoder or Decoder(), 0
    for i in played:
        try:
            out = decoder.decode(payloads[i])
        except (av.FFmpegError, ValueError):
            undecodable += 1
            continue
        at = (int(seqs_a[i]) - first) * FRAME_SAMPLES
        out = out[:FRAME_SAMPLES]
        pcm[at:at + len(out)] = out

    # Echo, per window of ~echo_window_s on fixed seq boundaries, against the reference
    # from 1 s earlier.
    ref_first = max(int(pseqs[0]), first - ECHO_LEAD_FRAMES)
    ref_all = cache.signal(ref_first, last - ref_first + 1)
    windows = []
    for w0, w1 in _windows(first, last, max(1, round(echo_window_s / FRAME_S))):
        r0 = max(ref_first, first + w0 - ECHO_LEAD_FRAMES)
        res = cache.echo(pcm[w0 * FRAME_SAMPLES:w1 * FRAME_SAMPLES], r0, first + w1 - r0)
        windows.append((EchoWindow(round(t0_s + w0 * FRAME_S, 9), round((w1 - w0) * FRAME_S, 9), res),
                        first + w0 - r0))
    measured = [(w, lead) for w, lead in windows if w.result.measured]
    echo, conclusive = _decisive(windows, echo_resolve_db)
    if measured:
        offset_ms = float(np.median([w.result.direct_lag_ms + lead * FRAME_S * 1000
                                     for w, lead in measured]))
        audio_offset = round(offset_ms - CODEC_DELAY_MS, 3)
        delay_samples = int(round(offset_ms * wire.SAMPLE_RATE / 1000))
    else:
        audio_offset, delay_samples = None, CODEC_DELAY_SAMPLES

    silence = silences(pcm, ref_all[(first - ref_first) * FRAME_SAMPLES:],
                       delay_samples=delay_samples, t0_s=t0_s)

    loss = 1.0 - delivered / n
    burst = emodel.burst_ratio(~heard)
    mos = (None if m2e_p95 is None
           else emodel.mos(1000 * min(m2e_p95, playout_deadline_s), loss, burst_ratio=burst))
    return ThickReport(
        **ident, joined=True, first_seq=first, last_seq=last, t0_s=t0_s,
        frames_expected=n, frames_delivered=delivered, frames_late=late,
        frames_lost=n - delivered - late, audio_delivered=delivered / n,
        freeze=freeze, silence=silence, echo=echo, echo_conclusive=conclusive,
        echo_windows=tuple(w for w, _ in windows),
        mouth_to_ear_p50_s=m2e_p50, mouth_to_ear_p95_s=m2e_p95, audio_offset_ms=audio_offset,
        loss=loss, loss_burst_ratio=burst, mos=mos, undecodable=undecodable), heard


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


def _windows(first: int, last: int, size: int) -> list[tuple[int, int]]:
    """Slot ranges [w0, w1) covering first..last, cut at seqs that are multiples of size
    (so that listeners share boundaries); an end piece under half a window joins its
    neighbour."""
    cuts = [q - first for q in range(-(-(first + 1) // size) * size, last + 1, size)]
    edges = [0, *cuts, last - first + 1]
    if len(edges) > 2 and edges[1] - edges[0] < size / 2:
        del edges[1]
    if len(edges) > 2 and edges[-1] - edges[-2] < size / 2:
        del edges[-2]
    return list(zip(edges[:-1], edges[1:]))


def _decisive(windows: list[tuple[EchoWindow, int]], resolve_db: float) -> tuple[EchoResult, bool]:
    """The window that decides the echo SLI, and whether it can.

    The strongest detected echo, if any; else the highest floor among windows that resolve
    ``resolve_db`` (an upper bound on the echo there). A window that detected nothing with
    a floor above it (mostly silence: too little audio to tell) or that found no direct
    path is inconclusive and does not count; when no window counts, neither does the run.
    """
    results = [w.result for w, _ in windows]
    detected = [r for r in results if r.measured and r.detected]
    if detected:
        return max(detected, key=lambda r: r.strength_db), True
    resolved = [r for r in results if r.measured and r.floor_db <= resolve_db]
    if resolved:
        return max(resolved, key=lambda r: r.floor_db), True
    measured = [r for r in results if r.measured]
    if measured:
        return min(measured, key=lambda r: r.floor_db), False
    return (results[0] if len(results) == 1 else _unmeasured_echo()), False


def _unmeasured_echo() -> EchoResult:
    nan = math.nan
    return EchoResult(False, False, nan, nan, nan, nan, nan, nan)


def _unheard(ident: dict) -> ThickReport:
    """Never heard the speaker: nothing to judge (join_time says why)."""
    return ThickReport(**ident, joined=False, first_seq=None, last_seq=None, t0_s=None,
                       frames_expected=0, frames_delivered=0, frames_late=0, frames_lost=0,
                       audio_delivered=None, freeze=None, silence=None, echo=None,
                       echo_conclusive=False,
                       echo_windows=(), mouth_to_ear_p50_s=None, mouth_to_ear_p95_s=None,
                       audio_offset_ms=None, loss=None, loss_burst_ratio=1.0, mos=None)


def _jsonable(v):
    """NaN -> None, tuples -> lists: json.dumps-able with allow_nan=False."""
    if hasattr(v, "_asdict"):  # gaps.Interval
        return {k: _jsonable(x) for k, x in v._asdict().items()}
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v
