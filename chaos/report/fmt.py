"""How the report writes numbers, times and DCs: one place, so every output agrees.

Reads plain journal values and the typed journal's parts (the journal's `unit` is the
SLI's unit: "s", "dB", or "" for ratios and MOS).
"""

from __future__ import annotations

import math

from chaos.core.journal import Journal, Slo
from chaos.core.model import Verdict

RATIO_SLIS = frozenset({"audio_delivered", "freeze", "audience_retained"})
MS_SLIS = frozenset({"mouth_to_ear"})


def number(v: float, digits: int = 3) -> str:
    """A short decimal: 4.8, 0.12, 1500, 0.0042; never 4.800000001."""
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    decimals = max(0, digits - 1 - mag)
    return f"{round(v, decimals):.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{round(v):d}"


def scale(sli: str, unit: str, values: list[float] | None = None) -> tuple[float, str]:
    """(factor, shown unit) to display an SLI: ratios as %, sub-second latencies as ms."""
    if sli in RATIO_SLIS or unit in ("ratio", "share"):
        return 100.0, "%"
    if unit == "s":
        finite = [abs(v) for v in (values or []) if v is not None]
        if sli in MS_SLIS or (finite and max(finite) < 1.0):
            return 1000.0, "ms"
    return 1.0, unit


def _unusual(v: float | None) -> str | None:
    """The words for a value that is no finite number (None, NaN, an infinity), else None."""
    if v is None:
        return "n/a"
    v = float(v)
    if math.isnan(v):
        return "not a number"
    if not math.isfinite(v):
        return "∞" if v > 0 else "-∞"
    return None


def value(sli: str, unit: str, v: float | None) -> str:
    """One SLI value in its unit: 0.995 -> '99.5 %', 0.4 (mouth_to_ear) -> '400 ms', 4.8 -> '4.8 s'."""
    special = _unusual(v)
    if special is not None:
        return special
    v = float(v)
    if sli in RATIO_SLIS or unit in ("ratio", "share"):
        return f"{number(v * 100, 4)} %"
    if sli in MS_SLIS and unit == "s" and abs(v) < 1.0:
        return f"{number(v * 1000, 3)} ms"
    return f"{number(v, 3)} {unit}" if unit else number(v, 3)


def entry_value(slo: Slo) -> str:
    """An SLO entry's value; one the journal could not write as a number (an infinite p95
    of failed joins) comes with its own words in ``value_text``."""
    if slo.value is None and slo.value_text:
        return str(slo.value_text)
    return value(str(slo.name), str(slo.unit or ""), slo.value)


def param(v: float | None, unit: str) -> str:
    """A fault parameter as written in a sweep: 3 %, 200 ms, 50000/min."""
    if v is None:
        return "n/a"
    if unit == "share":                       # a share of packets, requests...: 0.3 -> 30 %
        return f"{number(float(v) * 100, 4)} %"
    text = number(float(v), 4)
    if not unit:
        return text
    return f"{text}{'' if unit.startswith('/') else ' '}{unit}"


def t(seconds: float | None) -> str:
    """A time since the run started: 't=13 s'."""
    return "t=?" if seconds is None else f"t={number(float(seconds), 4)} s"


def dur(seconds: float | None) -> str:
    """A duration: '5 s', '0.4 s', '2 min 5 s'."""
    if seconds is None:
        return "?"
    s = float(seconds)
    if s >= 120:
        m, rest = divmod(round(s), 60)
        return f"{m} min {rest} s" if rest else f"{m} min"
    return f"{number(s, 3)} s"


def dcs(failed: list[str], all_dcs: list[str]) -> str:
    """'in every DC' / 'in all three DCs' / 'in dc-b only' / 'in dc-a and dc-c'."""
    failed = sorted(failed)
    if all_dcs and len(all_dcs) > 1 and set(failed) >= set(all_dcs):
        return {2: "in both DCs", 3: "in all three DCs"}.get(len(all_dcs), "in every DC")
    if len(failed) == 1:
        return f"in {failed[0]} only"
    return "in " + join_and(failed)


def join_and(items: list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def verdict_of(journal: Journal) -> Verdict:
    """The run's verdict; a journal that gives none is inconclusive."""
    try:
        return Verdict(journal.verdict)
    except ValueError:
        return Verdict.INCONCLUSIVE


def duration_of(journal: Journal) -> float:
    """How long the run lasted, from the journal's own fields (duration, phases, series, events)."""
    d = journal.duration_s
    if isinstance(d, (int, float)) and d > 0:
        return float(d)
    ends = [p.end_s for p in journal.phases or []]
    ends += [e.t_s for e in journal.events]
    ends += [f.ended_s or f.started_s for f in journal.faults]
    for s in (journal.series or {}).values():
        ends += list(s.t_s or [])[-1:]
    ends = [float(e) for e in ends if isinstance(e, (int, float))]
    return max(ends) if ends else 1.0


def sig(v: float | None, digits: int = 3) -> str:
    """``v`` to ``digits`` significant figures, thousands grouped, never an exponent:
    944, 12,100, 0.0042, 12,000,000 (where ``number`` keeps every integer digit)."""
    special = _unusual(v)
    if special is not None:
        return special
    v = float(v)
    if v == 0:
        return "0"
    decimals = digits - 1 - math.floor(math.log10(abs(v)))
    r = round(v, decimals)
    if decimals <= 0:
        return f"{int(r):,}"
    return f"{r:,.{decimals}f}".rstrip("0").rstrip(".")


def quantity(v: float | None, unit: str = "", digits: int = 3) -> str:
    """A measured amount with its unit: '944 joins/s', '12,000 listeners'."""
    text = sig(v, digits)
    return f"{text} {unit}" if unit and v is not None else text


def band(v: float | None, sd: float | None, unit: str = "", digits: int = 3) -> str:
    """A value and its one-sigma uncertainty: '944 ± 900 joins/s' (the uncertainty to two
    figures, and no finer than the value is written: never '± 4.26e-14')."""
    if v is None:
        return "n/a"
    if sd is None or not math.isfinite(float(sd)) or float(sd) <= 0:
        return quantity(v, unit, digits) + ("" if sd is None or float(sd) <= 0 else " ± ∞")
    v, sd = float(v), float(sd)
    if v != 0 and math.isfinite(v):
        finest = 10.0 ** (math.floor(math.log10(abs(v))) - digits + 1)   # the value's last digit
        sd = 0.0 if sd < finest / 2 else sd
    text = f"{sig(v, digits)} ± {sig(sd, 2)}"
    return f"{text} {unit}" if unit else text


def share(v: float | None, digits: int = 3, signed: bool = True) -> str:
    """A share as a percentage: 0.3 -> '+30 %', 93.4 -> '+9,340 %', -0.004 -> '-0.4 %'
    (never '-0 %' for a share that is not zero)."""
    if v is None:
        return "-"
    v = float(v)
    if not math.isfinite(v):
        return sig(v)
    text = sig(v * 100, digits)
    if signed and v > 0:
        text = "+" + text
    return f"{text} %"
