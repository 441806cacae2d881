"""What a thick listener heard, whatever the protocol it heard it through: the report
(``ThickReport``), its echo windows, and what one run's analyses share (``RunCache``).

Every audio adapter's thick listener analyses its decoded audio into these, so that the
session's SLI series read the same shape whatever the target speaks.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np

from chaos.audio.analysis.echo import EchoResult, measure_echo
from chaos.audio.analysis.gaps import FreezeReport, SilenceReport
from chaos.audio.analysis.reference import reference
from chaos.audio.testsignal import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

FRAME_S = FRAME_MS / 1000
CODEC_DELAY_SAMPLES = 312          # libopus decodes 6.5 ms late (see analysis.sequence)
CODEC_DELAY_MS = CODEC_DELAY_SAMPLES * 1000 / SAMPLE_RATE
ECHO_LEAD_FRAMES = 50              # the echo reference starts 1 s before the heard audio
SEGMENT_FRAMES = 500               # 10 s: thick listeners analyse their audio in segments
KEEP_SIGNAL_FRAMES = SEGMENT_FRAMES + ECHO_LEAD_FRAMES  # test signal kept before the last asked for
MAX_ECHO_MEMO = 256                # echo results memoised (windows of every listener)


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
        """Whole-listening values by SLI name (chaos.core.slo.SLIS); None means inconclusive."""
        return {"audio_delivered": self.audio_delivered, "freeze": self.freeze_share,
                "mouth_to_ear": self.mouth_to_ear_p95_s, "echo": self.echo_db,
                "silence": self.silence_longest_s, "mos": self.mos}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["slis"] = self.slo_values()
        return _jsonable(d)


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
