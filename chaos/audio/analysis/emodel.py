"""ITU-T G.107 E-model: a MOS estimate from mouth-to-ear delay and packet loss.

Why the E-model: it is the ITU-T planning model that turns the two things the network
does to a call, delay and loss, into one rating on the MOS scale, so that the ``mos`` SLI
can be computed by every listener from numbers it already measures.

Everything but delay and loss is left at the G.107 default values (Table 3: handsets,
room noise, talker echo loss TELR = 65 dB, ...), which give R = 93.2 at zero delay.
The delay impairment Id is G.107 section 7.4 in full (talker echo Idte, listener echo
Idle, pure delay Idd), with T = Ta (the echo path is the mouth-to-ear path) and
Tr = 2 Ta, the G.107 default relations. The effective equipment impairment with loss is
G.107 equation (7-29), the MOS conversion Annex B.

Worked values with the defaults (test_analysis_emodel.py): Ta = 150 ms gives R = 89.5,
MOS 4.33; Ta = 400 ms gives R = 62.3, MOS 3.22. The often-quoted "MOS about 3.0 at 400 ms"
comes from the simplified delay term of Cole and Rosenbluth (2001),
Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3), which G.107 does not use; it is offered as
``delay_impairment_simplified`` for comparison with tools that do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from chaos.audio.analysis._signal import runs

# G.107 Table 3 defaults, and what they give.
_RO = 94.77     # basic signal-to-noise ratio Ro = 15 - 1.5 (SLR + No), No = -61.18 dBm0p
_IS = 1.41      # simultaneous impairment Is (loudness, sidetone, quantisation) at defaults
_TELR = 65.0    # talker echo loudness rating, dB
_WEPL = 110.0   # weighted echo path loss, dB (listener echo)
_ROE = 94.77    # Roe = -1.5 (No - RLR), RLR = 2 dB


@dataclass(frozen=True)
class Codec:
    """Codec parameters for the effective equipment impairment (G.113 Appendix I)."""

    name: str
    ie: float    # equipment impairment without loss
    bpl: float   # packet-loss robustness factor: higher tolerates loss better


# G.113 Appendix I, Table I.3: G.711 with packet-loss concealment (Appendix I of G.711).
G711_PLC = Codec("G.711 with PLC", ie=0.0, bpl=25.1)
# Same table, no concealment: a lost packet is silence.
G711 = Codec("G.711 without PLC", ie=0.0, bpl=4.3)
# The default for the Opus streams here. ITU-T has published no Ie/Bpl for Opus. Assumption:
# Opus at >= 24 kbit/s is at least toll quality in the narrowband E-model (Ie = 0), and its
# concealment (CELT/SILK PLC) is at least as robust as G.711 Appendix I PLC (Bpl = 25.1).
# So the estimate is G.711+PLC's, slightly pessimistic for Opus rather than flattering.
OPUS = Codec("Opus (assumed as G.711 with PLC)", ie=0.0, bpl=25.1)


def delay_impairment(ta_ms: float) -> float:
    """Id of G.107 section 7.4 for mouth-to-ear delay Ta, with T = Ta, Tr = 2 Ta and defaults.

    One deviation: Idte is held at >= 0. For T below ~4 ms the G.107 formula gives a
    slightly negative talker-echo impairment (at most 0.11 of R), which would make R rise
    with delay; no real path is that short, and a monotone model is easier to trust.
    """
    if ta_ms < 0 or not math.isfinite(ta_ms):
        raise ValueError(f"delay must be a finite number of ms >= 0, got {ta_ms}")
    t, tr = ta_ms, 2.0 * ta_ms
    # Talker echo.
    terv = _TELR - 40 * math.log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t * t)
    re = 80 + 2.5 * (terv - 14)
    x = _ROE - re
    idte = max(0.0, x / 2 + math.sqrt(x * x / 4 + 100) - 1) * (1 - math.exp(-t))
    # Listener echo.
    rle = 10.5 * (_WEPL + 7) * (tr + 1) ** -0.25
    y = _RO - rle
    idle = y / 2 + math.sqrt(y * y / 4 + 169)
    # Pure delay: no impairment up to 100 ms.
    idd = 0.0
    if ta_ms > 100:
        xd = math.log10(ta_ms / 100) / math.log10(2)
        idd = 25 * ((1 + xd ** 6) ** (1 / 6) - 3 * (1 + (xd / 3) ** 6) ** (1 / 6) + 2)
    return idte + idle + idd


def delay_impairment_simplified(ta_ms: float) -> float:
    """Cole and Rosenbluth's fit to G.107's Id with defaults, R ~ 93.2 - Id - Ie_eff.
    Lower R than G.107 beyond ~250 ms (3.05 vs 3.22 MOS at 400 ms). Includes the 0.15
    listener-echo term G.107 gives at Ta = 0, so both curves start at R = 93.2."""
    if ta_ms < 0 or not math.isfinite(ta_ms):
        raise ValueError(f"delay must be a finite number of ms >= 0, got {ta_ms}")
    return 0.15 + 0.024 * ta_ms + (0.11 * (ta_ms - 177.3) if ta_ms > 177.3 else 0.0)


def effective_ie(loss: float, burst_ratio: float = 1.0, codec: Codec = OPUS) -> float:
    """Ie,eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl), G.107 (7-29); loss as a share 0..1."""
    if not 0.0 <= loss <= 1.0:
        raise ValueError(f"loss is a share between 0 and 1, got {loss}")
    if not burst_ratio > 0:
        raise ValueError(f"burst ratio must be > 0 (1 = random loss), got {burst_ratio}")
    ppl = 100.0 * loss
    return codec.ie + (95.0 - codec.ie) * ppl / (ppl / burst_ratio + codec.bpl)


def r_factor(delay_ms: float, loss: float = 0.0, *, burst_ratio: float = 1.0,
             codec: Codec = OPUS, advantage: float = 0.0,
             id_of: Callable[[float], float] = delay_impairment) -> float:
    """Transmission rating R = Ro - Is - Id - Ie,eff + A (G.107 7.1) for one-way
    mouth-to-ear delay ``delay_ms`` and packet loss share ``loss`` with ``burst_ratio``
    (1 random, > 1 bursty; see ``burst_ratio``). ``advantage`` A is 0 for wired calls."""
    return _RO - _IS - id_of(delay_ms) - effective_ie(loss, burst_ratio, codec) + advantage


def r_to_mos(r: float) -> float:
    """MOS (conversational quality estimate) from R, G.107 Annex B.

    The Annex B cubic dips just under 1.0 for 0 < R < 6.5; it is held at 1.0 there so that
    MOS never falls as R rises.
    """
    if math.isnan(r):
        return math.nan
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


def mos(delay_ms: float, loss: float = 0.0, **kwargs) -> float:
    """``r_to_mos(r_factor(delay_ms, loss, **kwargs))``."""
    return r_to_mos(r_factor(delay_ms, loss, **kwargs))


def burst_ratio(lost: Sequence[bool]) -> float:
    """BurstR of a loss pattern (G.107 7.5): mean observed loss-burst length over the mean
    burst length random loss of the same rate would give, 1 / (1 - p).

    1.0 for random loss (and for no loss, or all lost, where it is undefined).
    """
    flags = [bool(v) for v in lost]
    bursts = runs(np.asarray(flags, dtype=bool))
    if not bursts or len(flags) == sum(flags):
        return 1.0
    p = sum(flags) / len(flags)
    mean_burst = sum(n for _, n in bursts) / len(bursts)
    return mean_burst * (1 - p)
