"""Inline SVG line charts of the SLI series, every fault's window shaded (as Jepsen's plots do).

Plain SVG text built in Python: no JavaScript, no external assets. Null values break the
line. Hooks for tests and styling: `svg.sli-chart[data-sli]`, `rect.fault-window[data-fault]`,
`.threshold`, `.breach`.
"""

from __future__ import annotations

import math
from html import escape

from chaos.core import journal as jm
from chaos.core.journal import Journal
from chaos.report import fmt
from chaos.report.schema import typed

W, H = 920, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 180, 34, 40
OVERALL = "#222222"
DC_COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#8c564b", "#17becf", "#bcbd22")
THRESHOLD = "#d62728"
FAULT_FILL = "#7b2cbf"      # purple; at FAULT_OPACITY over white it is (229, 213, 242)
FAULT_OPACITY = 0.2
OVERALL_OPACITY = 0.45


def charts(journal: Journal | dict) -> list[str]:
    """One SVG per SLI in the journal's series that has at least one point."""
    journal = typed(journal)
    out = []
    for sli, s in (journal.series or {}).items():
        if _points(s.t_s, s.value):
            out.append(chart(journal, str(sli), s))
    return out


def chart(journal: Journal, sli: str, s: jm.SeriesDoc) -> str:
    end = max([fmt.duration_of(journal)] + [t for t, _ in _all_points(s)])
    raw = [v for _, v in _all_points(s)]
    if s.threshold is not None:
        raw.append(float(s.threshold))
    factor, unit = fmt.scale(sli, str(s.unit or ""), raw)
    lo, hi = min(raw) * factor, max(raw) * factor
    if hi - lo < 1e-9:
        lo, hi = lo - (abs(lo) * 0.1 or 1), hi + (abs(hi) * 0.1 or 1)
    pad = (hi - lo) * 0.08
    y_ticks = ticks(lo - pad, hi + pad)
    y0, y1 = min(y_ticks[0], lo - pad), max(y_ticks[-1], hi + pad)
    x_ticks = ticks(0.0, end)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def X(t: float) -> float:
        return LEFT + pw * (t / end if end > 0 else 0)

    def Y(v: float) -> float:
        return TOP + ph * (1 - (v * factor - y0) / (y1 - y0))

    stat = s.stat or ""
    title = f"{sli} {stat}".strip() + (f" ({unit})" if unit else "")
    parts = [f'<svg class="sli-chart" data-sli="{escape(sli)}" viewBox="0 0 {W} {H}" width="{W}" '
             f'height="{H}" role="img" aria-label="{escape(title)}">',
             tag("text", title, x=LEFT, y=18, class_="chart-title"),
             tag("rect", x=LEFT, y=TOP, width=pw, height=ph, fill="#ffffff", stroke="#bbbbbb")]
    labels = Labels(LEFT, LEFT + pw)
    labels.obstacle(title, LEFT, 18, size=13 * 1.06)   # bold
    if s.note:  # e.g. how failed joins are drawn
        parts.append(tag("text", str(s.note), x=LEFT + pw, y=18, text_anchor="end", class_="chart-note"))
        labels.obstacle(str(s.note), LEFT + pw, 18, anchor="end")
    rows = [TOP + 12 + 12 * k for k in range(max(1, int(ph // 12) - 1))]
    parts += _faults(journal, X, TOP, ph, end, labels, rows)
    for v in y_ticks:
        y = Y(v / factor)
        parts += [tag("line", x1=LEFT, y1=y, x2=LEFT + pw, y2=y, stroke="#eeeeee"),
                  tag("text", fmt.number(v, 4), x=LEFT - 6, y=y + 4, text_anchor="end", class_="tick")]
    for t in x_ticks:
        x = X(t)
        parts += [tag("line", x1=x, y1=TOP + ph, x2=x, y2=TOP + ph + 5, stroke="#555555"),
                  tag("text", fmt.number(t, 4), x=x, y=TOP + ph + 18, text_anchor="middle", class_="tick")]
    parts += [tag("text", "t (s since the run started)", x=LEFT + pw / 2, y=H - 6, text_anchor="middle",
                  class_="axis"),
              tag("text", unit or sli, x=14, y=TOP + ph / 2, text_anchor="middle", class_="axis",
                  transform=f"rotate(-90 14 {TOP + ph / 2})")]
    if s.threshold is not None:
        y = Y(float(s.threshold))
        parts.append(tag("line", class_="threshold", x1=LEFT, y1=y, x2=LEFT + pw, y2=y, stroke=THRESHOLD,
                         stroke_width=1.5, stroke_dasharray="6 4"))
    legend = [("all listeners", OVERALL, "")]
    # the overall line goes under the DCs' (wide and light), so that a DC that agrees with it
    # still shows, and one that does not stands out
    parts += _line(_points(s.t_s, s.value), X, Y, OVERALL, 3.2, "overall-line", OVERALL_OPACITY)
    for i, (dc, d) in enumerate(sorted((s.per_dc or {}).items())):
        colour = DC_COLOURS[i % len(DC_COLOURS)]
        parts += _line(_points(d.t_s, d.value), X, Y, colour, 1.5, f"dc-line {dc}")
        legend.append((dc, colour, ""))
    parts += _breaches(journal, sli, X, TOP, ph, labels, [TOP - 2] + rows)
    parts += _halt(journal, X, TOP, ph, labels, [TOP + ph - 6 - 12 * k for k in range(len(rows))])
    parts += _people(journal, X, TOP, ph, end)
    if s.threshold is not None:
        limit = fmt.value(sli, str(s.unit or ""), s.threshold)
        legend.append((f"threshold {s.op or ''} {limit}", THRESHOLD, "6 4"))
    parts += _legend(legend, LEFT + pw + 12, TOP)
    parts.append("</svg>")
    return "\n".join(parts)


class Labels:
    """Where a chart's text labels go: each takes the first of its candidate rows where it
    overlaps no label placed before it (widths estimated from the font size: DejaVu Sans
    averages under 0.62 em a character), so that no two labels are drawn over each other."""

    EM = 0.62

    def __init__(self, left: float, right: float):
        self.left, self.right = left, right
        self.boxes: list[tuple[float, float, float, float]] = []

    def box(self, text: str, x: float, y: float, size: float, anchor: str) -> tuple[float, float, float, float]:
        w = len(text) * size * self.EM
        x0 = x - w if anchor == "end" else x - w / 2 if anchor == "middle" else x
        return (x0, y - 0.93 * size, x0 + w, y + 0.24 * size)   # ascent and descent

    def taken(self, b) -> bool:
        return any(b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3] for o in self.boxes)

    def obstacle(self, text: str, x: float, y: float, size: float = 10, anchor: str = "start") -> None:
        self.boxes.append(self.box(text, x, y, size, anchor))

    def place(self, text: str, x: float, rows, size: float = 10, anchor: str = "start",
              flip_by: float = 0.0) -> tuple[float, float, str]:
        """(x, y, anchor) for ``text`` near x on the first free row; a label that would cross
        the plot's right edge is drawn to the left of x instead (``flip_by`` from it)."""
        rows = list(rows)
        if anchor == "start" and self.box(text, x, 0, size, anchor)[2] > self.right:
            x, anchor = x - flip_by, "end"
        for y in rows:
            b = self.box(text, x, y, size, anchor)
            if not self.taken(b):
                self.boxes.append(b)
                return x, y, anchor
        y = rows[-1]
        self.boxes.append(self.box(text, x, y, size, anchor))
        return x, y, anchor


def tag(name: str, text: str | None = None, inner: str = "", **attrs) -> str:
    """One SVG element: attribute names in Python spelling (class_, stroke_width), text and values
    escaped; `inner` is markup already built (child elements)."""
    def val(v) -> str:
        return f"{v:.1f}".rstrip("0").rstrip(".") if isinstance(v, float) else escape(str(v))
    at = " ".join(f'{k.rstrip("_").replace("_", "-")}="{val(v)}"' for k, v in attrs.items())
    if text is None and not inner:
        return f"<{name} {at}/>"
    return f"<{name} {at}>{escape(text or '')}{inner}</{name}>"


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values covering [lo, hi]."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, v = [], first
    while v <= hi + step * 1e-6:
        out.append(round(v, 10))
        v += step
    return out


def _points(ts, vs) -> list[tuple[float, float | None]]:
    if not isinstance(ts, list) or not isinstance(vs, list):
        return []
    pts = [(float(t), None if v is None else float(v)) for t, v in zip(ts, vs) if t is not None]
    return pts if any(v is not None for _, v in pts) else []


def _all_points(s: jm.SeriesDoc) -> list[tuple[float, float]]:
    pts = _points(s.t_s, s.value)
    for d in (s.per_dc or {}).values():
        pts += _points(d.t_s, d.value)
    return [(t, v) for t, v in pts if v is not None and math.isfinite(v)]


def _line(pts, X, Y, colour: str, width: float, cls: str, opacity: float = 1.0) -> list[str]:
    """A path broken at every null; lone points (a null each side) drawn as dots."""
    d, run, dots = [], [], []
    for t, v in pts + [(None, None)]:
        if v is None or not math.isfinite(v):
            if len(run) == 1:
                dots.append(run[0])
            elif run:
                d.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in run))
            run = []
        else:
            run.append((X(t), Y(v)))
    out = []
    faded = {"opacity": opacity} if opacity < 1.0 else {}
    if d:
        out.append(tag("path", class_=cls, d=" ".join(d), fill="none", stroke=colour, stroke_width=width,
                       stroke_linejoin="round", **faded))
    out += [tag("circle", class_=cls, cx=x, cy=y, r=2.5, fill=colour, **faded) for x, y in dots]
    return out


def _faults(journal: Journal, X, top: float, ph: float, end: float, labels: Labels, rows) -> list[str]:
    out = []
    for f in journal.faults:
        if f.started_s is None:
            continue
        label = str(f.label or f.name or "fault")
        a = min(float(f.started_s), end)
        b = end if f.ended_s is None else min(float(f.ended_s), end)
        x, w = X(a), max(X(b) - X(a), 1.0)
        until = fmt.t(f.ended_s) if f.ended_s is not None else "the end (still active)"
        lx, ly, anchor = labels.place(label, x + 3, rows, flip_by=6)
        out += [tag("rect", class_="fault-window", data_fault=label, x=x, y=top, width=w, height=ph,
                    fill=FAULT_FILL, fill_opacity=FAULT_OPACITY,
                    inner=tag("title", f"{label}: {fmt.t(a)} to {until}")),
                tag("text", label, x=lx, y=ly, text_anchor=anchor, class_="fault-label")]
    return out


def _breaches(journal: Journal, sli: str, X, top: float, ph: float, labels: Labels, rows) -> list[str]:
    out, seen = [], set()
    for s in journal.slos:
        t = s.first_breach_s
        if s.name != sli or t is None or t in seen:
            continue
        seen.add(t)
        x = X(float(t))
        text = f"breach {fmt.t(t)}"
        lx, ly, anchor = labels.place(text, x + 8, rows, flip_by=16)
        marks = (tag("line", x1=x, y1=top, x2=x, y2=top + ph, stroke=THRESHOLD, stroke_width=1.5)
                 + tag("path", d=f"M{x - 6:.1f},{top - 10} L{x + 6:.1f},{top - 10} L{x:.1f},{top} Z",
                       fill=THRESHOLD)
                 + tag("text", text, x=lx, y=ly, text_anchor=anchor, class_="breach-label"))
        out.append(tag("g", class_="breach", data_phase="" if s.phase is None else str(s.phase), inner=marks))
    return out


def _halt(journal: Journal, X, top: float, ph: float, labels: Labels, rows) -> list[str]:
    h = journal.halt
    if h is None or h.at_s is None:
        return []
    x = X(float(h.at_s))
    text = f"halted {fmt.t(h.at_s)}"
    lx, ly, anchor = labels.place(text, x - 4, rows, anchor="end")
    marks = (tag("line", x1=x, y1=top, x2=x, y2=top + ph, stroke="#000000", stroke_width=2,
                 stroke_dasharray="2 3")
             + tag("text", text, x=lx, y=ly, text_anchor=anchor, class_="halt-label"))
    return [tag("g", class_="halt", inner=marks)]


PEOPLE = {"note": "#1565c0", "prompt": "#ad1457", "answer": "#ad1457", "pause": "#616161",
          "resume": "#616161", "abort": "#000000"}


def _people(journal: Journal, X, top: float, ph: float, end: float) -> list[str]:
    """A game day's human side on the same time axis: pauses shaded grey, and a marker for
    every note, prompt, answer, pause, resume and abort (its words in the tooltip)."""
    out = []
    for p in (journal.gameday.pauses if journal.gameday else None) or []:
        if p.at_s is None:
            continue
        a = min(float(p.at_s), end)
        b = end if p.ended_s is None else min(float(p.ended_s), end)
        out.append(tag("rect", class_="pause-window", x=X(a), y=top, width=max(X(b) - X(a), 1.0),
                       height=ph, fill="#9e9e9e", fill_opacity=0.25,
                       inner=tag("title", f"paused by {p.by or '?'}: {fmt.t(a)} to {fmt.t(b)}")))
    for e in journal.events:
        kind = e.kind
        if kind not in PEOPLE or e.t_s is None:
            continue
        x, colour, y = X(min(float(e.t_s), end)), PEOPLE[kind], top + ph
        who = f"{e.who}: " if e.who else ""
        marks = (tag("line", x1=x, y1=y - 16, x2=x, y2=y, stroke=colour, stroke_width=1.5)
                 + tag("path", d=f"M{x - 4:.1f},{y:.1f} L{x + 4:.1f},{y:.1f} L{x:.1f},{y - 8:.1f} Z",
                       fill=colour)
                 + tag("title", f"{fmt.t(e.t_s)} {kind}: {who}{e.message or ''}"))
        out.append(tag("g", class_="person-event", data_kind=kind, inner=marks))
    return out


def _legend(items: list[tuple[str, str, str]], x: float, y: float) -> list[str]:
    out = []
    for i, (name, colour, dash) in enumerate(items):
        yy = y + 14 + 18 * i
        dashed = {"stroke_dasharray": dash} if dash else {}
        out += [tag("line", x1=x, y1=yy - 4, x2=x + 22, y2=yy - 4, stroke=colour, stroke_width=2.5, **dashed),
                tag("text", name, x=x + 28, y=yy, class_="legend-text")]
    yy = y + 14 + 18 * len(items)
    out += [tag("rect", x=x, y=yy - 11, width=22, height=12, fill=FAULT_FILL, fill_opacity=FAULT_OPACITY),
            tag("text", "fault window", x=x + 28, y=yy, class_="legend-text")]
    return [tag("g", class_="legend", inner="".join(out))]
