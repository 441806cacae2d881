"""What a thick stream listener heard, judged after the run (pure: no I/O, no clock).

The kept bytes are split into Ogg pages again (a fresh parser per connection), each Opus
packet placed on the 20 ms slot timeline by its granule position, and decoded with one
libopus decoder in slot order. The report is the reference thick listener's
(``ThickReport``), so the session's SLI series read it unchanged.

Two cases:

- **Our speaker feeds the mount** (``produced`` is not empty): slot = the speaker's seq
  (``end_granule // 960 - 1``); a frame is on time if it arrived within the playout
  deadline of its capture time. Freezes, dead air (against the known test signal), echo
  (cross-correlation with it), mouth-to-ear, delivery and MOS, as the reference thick
  listener computes them.
- **Something else feeds it** (``produced`` empty): no capture times, no known signal.
  A player's view is still judged: per connection, the first packet starts a playout
  clock, and a packet is on time if it arrived within the playout deadline of when the
  stream's own timeline (its granules) says it is due. Freezes come from that; dead air
  is decoded audio more than 30 dB under the test signal's level (about -50 dBFS, a
  constant reference). Delivery, mouth-to-ear, echo and MOS need the known signal and
  capture times: they are ``None`` (inconclusive), and ``inconclusive_why`` says why.

Ogg/Vorbis and MP3 (``decoded_timeline``): decoded with PyAV's demuxer, each decoded frame
placed by its timestamp; only the player's view above (freezes, dead air) is judged.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence

import av
import numpy as np

from chaos.audio.analysis import emodel
from chaos.audio.analysis.gaps import freezes, heard_slots, silences
from chaos.audio.testsignal import AMPLITUDE
from chaos.core.slo import percentile
from chaos.adapters.httpstream._shared import (
    CODEC_DELAY_SAMPLES, ECHO_RESOLVE_DB, PLAYOUT_DEADLINE_S, Heard, RunCache, ThickReport,
    _unheard, against_signal, check, last_slot, play,
)
from chaos.adapters.httpstream.codec import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Decoder
from chaos.adapters.httpstream.listener import ThickStreamRecord, _Follow, seq_of

FRAME_S = FRAME_MS / 1000
NOT_OURS = ("the stream is fed by something else than the framework's speaker: no known "
            "test signal and no capture times to measure it against")
NEEDS_SIGNAL = ("audio_delivered", "mouth_to_ear", "echo", "mos")


def inconclusive_why(ours: bool) -> dict[str, str]:
    """Why the SLIs that need our speaker cannot be judged, by SLI name (empty if ours)."""
    return {} if ours else {name: NOT_OURS for name in (*NEEDS_SIGNAL, "audience_retained")}


def audio_packets(record: ThickStreamRecord) -> Iterator[tuple[int, int, int | None, bytes, str]]:
    """(receive ns, connection, end granule, packet, codec) of every audio packet kept."""
    follow, conn_at = None, None
    for recv_ns, conn, chunk in record.kept():
        if conn != conn_at:
            follow, conn_at = _Follow(), conn
        for granule, packet, codec in follow.audio(chunk):
            yield recv_ns, conn, granule, packet, codec


def analyse(record: ThickStreamRecord, produced: Sequence[tuple[int, int]], *, seed: int = 0,
            playout_deadline_s: float = PLAYOUT_DEADLINE_S, run_start_ns: int | None = None,
            echo_window_s: float = 5.0, echo_resolve_db: float = ECHO_RESOLVE_DB,
            cache: RunCache | None = None) -> ThickReport:
    """Decode and judge what ``record``'s listener heard (see the module's docstring).
    ``produced`` is the speaker's (seq, capture_ns) per frame, empty when the mount is fed
    by something else; ``run_start_ns`` is time 0 (default: the first capture, or the
    first packet received)."""
    check(playout_deadline_s, cache, seed)
    ident = dict(index=record.index, home_dc=record.home_dc, dc=record.dc, edge=record.edge,
                 playout_deadline_s=playout_deadline_s)
    if record.codec not in ("opus", ""):
        return decoded_timeline(record, ident, playout_deadline_s, run_start_ns)
    prod = np.asarray(produced, dtype=np.int64).reshape(-1, 2)
    prod = prod[np.argsort(prod[:, 0], kind="stable")]
    ours = len(prod) > 0
    slots, recv, due, payloads, conns = [], [], [], [], []
    capture_of = dict(zip(prod[:, 0].tolist(), prod[:, 1].tolist())) if ours else {}
    base: dict[int, tuple[int, int]] = {}      # connection -> (first recv ns, its granule)
    other = 0
    for recv_ns, conn, granule, packet, codec in audio_packets(record):
        if codec != "opus" or granule is None:
            other += 1
            continue
        if ours:
            seq = seq_of(granule)
            if seq is None or seq not in capture_of:
                other += 1
                continue
            slots.append(seq)
            due.append(capture_of[seq])
        else:
            # the stream's own timeline: slot by granule; due when the connection's playout
            # clock (started by its first packet) reaches it
            r0, g0 = base.setdefault(conn, (recv_ns, granule))
            slots.append(int(round(granule / FRAME_SAMPLES)) - 1)
            due.append(r0 + int(round((granule - g0) * 1e9 / SAMPLE_RATE)))
        recv.append(recv_ns)
        payloads.append(packet)
        conns.append(conn)
    ident["other_frames"] = other
    if not slots:
        return _unheard(ident)
    if run_start_ns is None:
        run_start_ns = int(prod[0, 1]) if ours else recv[0]
    return _judge(ident, np.asarray(slots, dtype=np.int64), np.asarray(recv, dtype=np.int64),
                  np.asarray(due, dtype=np.int64), payloads, prod if ours else None,
                  record.left_ns, seed, playout_deadline_s, run_start_ns, echo_window_s,
                  echo_resolve_db, cache or RunCache(seed))


def _judge(ident: dict, seqs_a: np.ndarray, recv_a: np.ndarray, due_a: np.ndarray,
           payloads: list[bytes], prod: np.ndarray | None, left_ns: int | None, seed: int,
           playout_deadline_s: float, run_start_ns: int, echo_window_s: float,
           echo_resolve_db: float, cache: RunCache) -> ThickReport:
    """The reference thick listener's judgement over one slot timeline. ``due_a``: the
    capture time (ours) or the playout-clock time (not ours) of each packet."""
    ours = prod is not None
    lat_a = (recv_a - due_a) / 1e9
    first = int(seqs_a[0]) if ours else int(seqs_a.min())
    on_time = lat_a <= playout_deadline_s
    if ours:
        last = last_slot(seqs_a, on_time, first, prod, left_ns, playout_deadline_s)
    else:
        last = int(seqs_a.max())
    if last < first:
        return _unheard(ident)
    n = last - first + 1
    heard = Heard.of(seqs_a, lat_a, on_time, first, last, playout_deadline_s)
    if ours:
        pseqs, pcap = prod[:, 0], prod[:, 1]
        k0 = int(np.searchsorted(pseqs, first))
        slot0_ns = int(pcap[k0]) if k0 < len(pseqs) and pseqs[k0] == first else int(due_a[0])
    else:
        slot0_ns = int(due_a[np.argmin(seqs_a)])
    t0_s = round((slot0_ns - run_start_ns) / 1e9, 9)
    pcm, undecodable = play(heard, seqs_a, on_time, payloads, first, last, Decoder())
    common = dict(joined=True, first_seq=first, last_seq=last, t0_s=t0_s, frames_expected=n,
                  frames_delivered=heard.delivered, frames_late=heard.late,
                  frames_lost=n - heard.delivered - heard.late,
                  freeze=freezes(heard.slots, t0_s=t0_s), undecodable=undecodable)
    if not ours:
        level = np.full(n * FRAME_SAMPLES, AMPLITUDE * 32767, dtype=np.float64)
        silence = silences(pcm, level.astype(np.int16), delay_samples=CODEC_DELAY_SAMPLES,
                           t0_s=t0_s)
        return ThickReport(**ident, **common, audio_delivered=None, silence=silence, echo=None,
                           echo_conclusive=False, echo_windows=(), mouth_to_ear_p50_s=None,
                           mouth_to_ear_p95_s=None, audio_offset_ms=None, loss=None,
                           loss_burst_ratio=float(emodel.burst_ratio(~heard.slots)), mos=None)
    m2e_p50, m2e_p95 = percentile(lat_a, 50), percentile(lat_a, 95)
    judged = against_signal(pcm, heard, first, last, int(pseqs[0]), t0_s, m2e_p95,
                            playout_deadline_s, echo_window_s, echo_resolve_db, cache)
    return ThickReport(**ident, **common, mouth_to_ear_p50_s=m2e_p50,
                       mouth_to_ear_p95_s=m2e_p95, **judged)


def decoded_timeline(record: ThickStreamRecord, ident: dict, playout_deadline_s: float,
                     run_start_ns: int | None) -> ThickReport:
    """Ogg/Vorbis, MP3 (whatever PyAV demuxes and decodes): per connection, decode the
    bytes to one continuous 48 kHz mono track, cut it into 20 ms slots, and judge the
    player's view (freezes, dead air) as for a stream that is not ours. A slot is due
    when the connection's playout clock (started by its first audio) reaches it, and
    arrived with the bytes that completed its last sample; a reconnect's slots start
    where the wall clock says, so the time cut off is a gap."""
    chunks: dict[int, list[tuple[int, bytes]]] = {}
    for recv_ns, conn, chunk in record.kept():
        chunks.setdefault(conn, []).append((recv_ns, chunk))
    slots: list[int] = []
    due: list[int] = []
    recv: list[int] = []
    pcm_of: dict[int, np.ndarray] = {}
    undecodable = 0
    slot_base, clock0 = 0, None
    for conn in sorted(chunks):
        parts = chunks[conn]
        offsets = np.cumsum([len(c) for _, c in parts])
        times = np.asarray([t for t, _ in parts], dtype=np.int64)
        clock0 = int(times[0]) if clock0 is None else clock0
        slot_base = max(slot_base, int(round((int(times[0]) - clock0) / 1e9 / FRAME_S)))
        track, arrived = _decode(b"".join(c for _, c in parts), offsets, times)
        if track is None:
            undecodable += 1
            continue
        n = len(track) // FRAME_SAMPLES
        start = int(arrived[0]) if n else 0
        for k in range(n):
            s = slot_base + k
            pcm_of.setdefault(s, track[k * FRAME_SAMPLES:(k + 1) * FRAME_SAMPLES])
            slots.append(s)
            due.append(start + int(round(k * FRAME_S * 1e9)))
            recv.append(int(arrived[(k + 1) * FRAME_SAMPLES - 1]))
        slot_base += n
    ident = dict(ident, other_frames=0)
    if not slots:
        return _unheard(ident)
    seqs_a = np.asarray(slots, dtype=np.int64)
    lat = (np.asarray(recv, dtype=np.int64) - np.asarray(due, dtype=np.int64)) / 1e9
    first, last = int(seqs_a.min()), int(seqs_a.max())
    n = last - first + 1
    _, firsts = np.unique(seqs_a, return_index=True)
    heard = heard_slots(seqs_a[firsts], latency_s=lat[firsts], deadline_s=playout_deadline_s,
                        first_seq=first, last_seq=last)
    origin = run_start_ns if run_start_ns is not None else int(due[0])
    t0_s = round((int(due[int(np.argmin(seqs_a))]) - origin) / 1e9, 9)
    pcm = np.zeros(n * FRAME_SAMPLES, dtype=np.int16)
    for s, frame in pcm_of.items():
        if heard[s - first]:
            pcm[(s - first) * FRAME_SAMPLES:(s - first + 1) * FRAME_SAMPLES] = frame
    level = np.full(n * FRAME_SAMPLES, AMPLITUDE * 32767).astype(np.int16)
    delivered = int(heard.sum())
    late = int((lat[firsts] > playout_deadline_s).sum())
    return ThickReport(**ident, joined=True, first_seq=first, last_seq=last, t0_s=t0_s,
                       frames_expected=n, frames_delivered=delivered, frames_late=late,
                       frames_lost=n - delivered - late, audio_delivered=None,
                       freeze=freezes(heard, t0_s=t0_s), silence=silences(pcm, level, t0_s=t0_s),
                       echo=None, echo_conclusive=False, echo_windows=(),
                       mouth_to_ear_p50_s=None, mouth_to_ear_p95_s=None, audio_offset_ms=None,
                       loss=None, loss_burst_ratio=float(emodel.burst_ratio(~heard)), mos=None,
                       undecodable=undecodable)


def _decode(data: bytes, offsets: np.ndarray, times: np.ndarray
            ) -> tuple[np.ndarray | None, np.ndarray]:
    """One connection's bytes decoded to a 48 kHz mono int16 track, and for each sample
    the receive time (ns) of the bytes that carried it; (None, []) if PyAV cannot read it."""
    pieces, stamps = [], []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for packet in container.demux(stream):
                pos = packet.pos if packet.pos is not None and packet.pos >= 0 else None
                at = int(times[min(int(np.searchsorted(offsets, pos, side="right")), len(times) - 1)]) \
                    if pos is not None else (stamps[-1][-1] if stamps else int(times[0]))
                try:
                    frames = packet.decode()
                except (av.FFmpegError, ValueError):
                    continue
                for frame in frames:
                    for out in resampler.resample(frame):
                        pcm = out.to_ndarray().reshape(-1)
                        pieces.append(pcm)
                        stamps.append(np.full(len(pcm), at, dtype=np.int64))
    except (av.FFmpegError, ValueError, IndexError):
        if not pieces:
            return None, np.zeros(0, dtype=np.int64)
    if not pieces:
        return None, np.zeros(0, dtype=np.int64)
    return np.concatenate(pieces).astype(np.int16), np.concatenate(stamps)
