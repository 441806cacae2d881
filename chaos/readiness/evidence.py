"""readiness.json and readiness.html: the assessment's evidence, beside the runs it rests on.

The HTML opens offline (inline CSS and SVG): the verdict in one sentence, headroom bars per
tier (whole fleet and N-1), each tier's capacity against fleet size (measured points with
their uncertainty, the USL curve, the demand line, the fleet and N-1 marked), each sweep's
steps with the knee, the dc_loss run, the scale and the runs it rests on.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from chaos.report import fmt
from chaos.report.charts import tag, ticks
from chaos.report.html import CSS
from chaos.core.model import Verdict, finite
from chaos.core.slo import DEFAULTS
from chaos.core import atomic
from chaos.readiness.usl import coefficient, usl

W, H = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 30, 40
COLOURS = {"GO": "#2e7d32", "GO-AT-RISK": "#b26a00", "NO-GO": "#c62828", "INCONCLUSIVE": "#6d6d6d"}


def write(doc: dict, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    doc = finite(doc)
    js, html = out / "readiness.json", out / "readiness.html"
    atomic.write(js, json.dumps(doc, indent=1, allow_nan=False), atomic.ARTIFACT)   # for others to read
    atomic.write(html, page(doc), atomic.ARTIFACT)
    return {"readiness.json": js, "readiness.html": html}


def page(doc: dict) -> str:
    v = str(doc.get("verdict", "INCONCLUSIVE"))
    d = doc.get("demand") or {}
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>readiness: {escape(v)}</title><style>{CSS}"
             ".verdict{font-size:1.25em;padding:10px 16px;border-left:6px solid;margin:10px 0}"
             "svg.rd{display:block;margin:10px 0;font-size:11px}</style></head><body>",
             f'<h1>Readiness <span class="badge" style="background:{COLOURS.get(v, "#555")}">'
             f"{escape(v)}</span></h1>",
             f'<p class="verdict" style="border-color:{COLOURS.get(v, "#555")}">'
             f"{escape(str(doc.get('sentence', '')))}</p>",
             f"<p>Event: {d.get('audience', 0):,} listeners, {d.get('join_rate_per_min', 0):,} joins/min; "
             f"headroom wanted {fmt.share(doc.get('headroom_wanted', 0), signed=False)}; survive: "
             f"{escape(str(doc.get('survive')))}.</p>",
             f"<p>Scale: {escape(str((doc.get('scale') or {}).get('described', '')))}.</p>",
             _reasons(doc), _tier_table(doc), "<h2>Headroom</h2>", _headroom_bars(doc)]
    parts.append("<h2>Capacity against fleet size (USL)</h2>")
    parts += [_usl_chart(t) for t in doc.get("tiers") or [] if t.get("usl")]
    parts.append("<h2>Sweeps to the knee</h2>")
    parts += [_sweep_chart(m) for m in doc.get("measurements") or []]
    parts.append(_loss(doc))
    parts.append(_runs(doc))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _reasons(doc: dict) -> str:
    items = "".join(f"<li>{escape(str(r))}</li>" for r in doc.get("reasons") or [])
    b = doc.get("binding_constraint")
    bind = (f"<p>Binding constraint: the {escape(b['tier'])} tier ({escape(b['slo'])}), "
            f"{escape(b['dc'])}. First to break: {escape(str(doc.get('first_break', '')))}.</p>") if b else ""
    return f"<h2>Why</h2><ul>{items}</ul>{bind}"


def _pct(v) -> str:
    return fmt.share(v)


def _num(v, digits: int = 3) -> str:
    return "-" if v is None else fmt.sig(v, digits)


def _capacity(t: dict, n1: bool = False) -> str:
    """The capacity as readiness.json wrote it ('944 ± 900 joins/s'), or from its numbers."""
    text = t.get("capacity_n1_text" if n1 else "capacity_text")
    if text:
        return str(text)
    c, sd = (t.get("capacity_n1"), t.get("capacity_n1_sd")) if n1 else (t.get("capacity"), t.get("capacity_sd"))
    return "-" if c is None else fmt.band(c, sd, t.get("unit", ""))


def _coef(v, sd) -> str:
    """sigma or kappa and its uncertainty; a fit's 4.26e-14 reads 0."""
    if v is None:
        return "-"
    return fmt.band(coefficient(v), None if sd is None else coefficient(sd))


def _tier_table(doc: dict) -> str:
    rows = []
    for t in doc.get("tiers") or []:
        u = t.get("usl") or {}
        rows.append(
            "<tr>" + "".join(f"<td>{escape(str(x))}</td>" for x in (
                t["tier"], t["slo"], fmt.quantity(t["demand"], t["unit"]), t["units"],
                _capacity(t), _pct(t["headroom"]),
                "-" if t["units_n1"] is None else f"{_capacity(t, n1=True)} ({t['units_n1']} units)",
                _pct(t["headroom_n1"]),
                f"σ {_coef(u.get('sigma'), u.get('sigma_sd'))}, κ {_coef(u.get('kappa'), u.get('kappa_sd'))}"
                if u else "-",
                f"{t['needed_units']} ({t['needed_per_dc']} per DC)" if t.get("needed_units") else "-",
                t["verdict"])) + "</tr>")
        if t.get("beyond_data"):
            rows.append(f'<tr><td colspan="11" class="muted">{escape(t["beyond_data"])}</td></tr>')
        if t.get("next_step"):
            rows.append(f'<tr><td colspan="11" class="next-step">next: {escape(t["next_step"])}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("tier", "SLO", "demand", "fleet units", "capacity",
                                             "headroom", "capacity N-1", "headroom N-1", "USL",
                                             "fleet for GO", "verdict"))
    return f"<h2>Tiers</h2><table><tr>{head}</tr>{''.join(rows)}</table>"


def _headroom_bars(doc: dict) -> str:
    bars = []
    for t in doc.get("tiers") or []:
        bars += [(f"{t['tier']} (all DCs)", t.get("headroom")), (f"{t['tier']} (N-1)", t.get("headroom_n1"))]
    bars = [(n, v) for n, v in bars if v is not None]
    if not bars:
        return '<p class="muted">no headroom measured</p>'
    want = float(doc.get("headroom_wanted") or 0)
    lo = min([v for _, v in bars] + [-0.5, 0.0])
    hi = max([v for _, v in bars] + [want * 1.5, 0.5])
    lo, hi = max(lo, -1.0), min(hi, 20.0)
    h = 30 + 26 * len(bars)
    pw = W - 220 - 40

    def X(v):
        return 220 + (min(max(v, lo), hi) - lo) / (hi - lo) * pw
    out = [tag("line", x1=X(0), x2=X(0), y1=10, y2=h - 10, stroke="#222")]
    out.append(tag("line", x1=X(want), x2=X(want), y1=10, y2=h - 10, stroke="#b26a00",
                   stroke_dasharray="4 3", class_="wanted"))
    out.append(tag("text", f"wanted {fmt.share(want, signed=False)}", x=X(want) + 3, y=h - 4, fill="#b26a00"))
    for i, (name, v) in enumerate(bars):
        y = 20 + 26 * i
        colour = "#c62828" if v < 0 else ("#b26a00" if v < want else "#2e7d32")
        x0, x1 = sorted((X(0), X(v)))
        out.append(tag("text", name, x=10, y=y + 14))
        out.append(tag("rect", x=x0, y=y, width=max(x1 - x0, 1.0), height=18, fill=colour,
                       class_="headroom-bar", data_tier=name))
        out.append(tag("text", fmt.share(v), x=x1 + 4, y=y + 14))
    return tag("svg", inner="".join(out), class_="rd headroom", width=W, height=h,
               viewBox=f"0 0 {W} {h}", xmlns="http://www.w3.org/2000/svg")


def _frame(title: str, xlo, xhi, ylo, yhi, xlabel: str, ylabel: str):
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def X(v):
        return LEFT + (v - xlo) / (xhi - xlo or 1) * pw

    def Y(v):
        return TOP + ph - (min(max(v, ylo), yhi) - ylo) / (yhi - ylo or 1) * ph
    out = [tag("text", title, x=LEFT, y=18, class_="chart-title"),
           tag("rect", x=LEFT, y=TOP, width=pw, height=ph, fill="none", stroke="#bbb")]
    for v in ticks(ylo, yhi):
        out.append(tag("text", fmt.sig(v, 4), x=LEFT - 6, y=Y(v) + 4, text_anchor="end", class_="tick"))
    for v in ticks(xlo, xhi):
        out.append(tag("text", fmt.sig(v, 4), x=X(v), y=TOP + ph + 14, text_anchor="middle", class_="tick"))
    out.append(tag("text", xlabel, x=LEFT + pw / 2, y=H - 6, text_anchor="middle", class_="axis"))
    out.append(tag("text", ylabel, x=12, y=TOP - 8, class_="axis"))
    return out, X, Y


def _usl_chart(t: dict) -> str:
    u = t["usl"]
    pts = u["points"]
    n_hi = max([p["units"] for p in pts] + [t["units"] or 1])
    xs = [1 + (n_hi - 1) * i / 80 for i in range(81)]
    curve = [float(usl(x, u["lambda"], u["sigma"], u["kappa"])) for x in xs]
    ys = curve + [p["capacity"] + p["capacity_sd"] for p in pts] + [t["demand"] * 1.1]
    ylo, yhi = 0.0, max(ys)
    out, X, Y = _frame(f"{t['tier']}: capacity ({t['unit']}) against units", 1, max(n_hi, 2), ylo, yhi,
                       "units", t["unit"])
    out.append(tag("polyline", points=" ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in zip(xs, curve)),
                   fill="none", stroke="#1f77b4", stroke_width=2, class_="usl-curve"))
    for p in pts:
        out.append(tag("line", x1=X(p["units"]), x2=X(p["units"]), y1=Y(p["capacity"] - p["capacity_sd"]),
                       y2=Y(p["capacity"] + p["capacity_sd"]), stroke="#222"))
        out.append(tag("circle", cx=X(p["units"]), cy=Y(p["capacity"]), r=4, fill="#222",
                       class_="measured", data_units=p["units"]))
    out.append(tag("line", x1=LEFT, x2=W - RIGHT, y1=Y(t["demand"]), y2=Y(t["demand"]),
                   stroke="#d62728", stroke_dasharray="6 3", class_="demand"))
    out.append(tag("text", f"demand {fmt.sig(t['demand'])}", x=W - RIGHT + 4, y=Y(t["demand"]) + 4, fill="#d62728"))
    for n, name, band in ((t["units"], "fleet", t.get("capacity_band")),
                          (t.get("units_n1"), "N-1", t.get("capacity_n1_band"))):
        if n:
            out.append(tag("line", x1=X(n), x2=X(n), y1=TOP, y2=H - BOTTOM, stroke="#7b2cbf",
                           stroke_dasharray="3 3", class_=f"fleet-{name}"))
            out.append(tag("text", f"{name} {n}", x=X(n) + 3, y=TOP + 12, fill="#7b2cbf"))
        if n and band:
            # the band the verdict judged at this fleet size (its top open: "at least")
            lo, hi = band[0], band[1] if band[1] is not None else yhi
            out.append(tag("rect", x=X(n) - 5, y=Y(hi), width=10, height=max(Y(lo) - Y(hi), 1.0),
                           fill="#7b2cbf", fill_opacity=0.25, stroke="#7b2cbf", class_="band",
                           data_fleet=name))
    return tag("svg", inner="".join(out), class_="rd usl", width=W, height=H, viewBox=f"0 0 {W} {H}",
               xmlns="http://www.w3.org/2000/svg", data_tier=t["tier"])


def _sweep_chart(m: dict) -> str:
    """The tier's first SLO against the step's load: the capacity curve, its threshold and
    the knee; each point coloured by the step's verdict (inconclusive: the generator)."""
    steps = [s for s in m.get("steps") or [] if s.get("load") is not None]
    if not steps:
        return f'<p class="muted">{escape(m.get("words", ""))}</p>'
    sli = next(iter(steps[0].get("slos") or {"join_time": None}))
    vals = [((s.get("slos") or {}).get(sli) or {}).get("value") for s in steps]
    limit = DEFAULTS[sli].threshold if sli in DEFAULTS else 0.0   # what the sweep judged by
    finite_vals = [v for v in vals if isinstance(v, (int, float))]
    ylo = min(finite_vals + [limit]) * (0.98 if sli == "audio_delivered" else 0.0)
    yhi = 1.001 if sli == "audio_delivered" else (max(finite_vals + [limit]) * 1.1 or 1.0)
    xhi = max(s["load"] for s in steps) * 1.1 or 1.0
    out, X, Y = _frame(f"{m['tier']} with {m['units']} unit(s): {sli} against load (run {m['run_id']})",
                       0, xhi, ylo, yhi,
                       "load (joins/s)" if m["tier"] == "join" else "load (listeners held)", sli)
    colour = {Verdict.PASSED: "#2e7d32", Verdict.FAILED: "#c62828", Verdict.INCONCLUSIVE: "#b26a00"}
    pts = [(X(s["load"]), Y(v)) for s, v in zip(steps, vals) if isinstance(v, (int, float))]
    if len(pts) > 1:
        out.append(tag("polyline", points=" ".join(f"{x:.1f},{y:.1f}" for x, y in pts), fill="none",
                       stroke="#1f77b4", stroke_width=1.5, class_="capacity-curve"))
    out.append(tag("line", x1=LEFT, x2=W - RIGHT, y1=Y(limit), y2=Y(limit), stroke="#d62728",
                   stroke_dasharray="6 3", class_="threshold"))
    out.append(tag("text", f"SLO {fmt.sig(limit)}", x=W - RIGHT + 4, y=Y(limit) + 4, fill="#d62728"))
    for s, v in zip(steps, vals):
        y = Y(v) if isinstance(v, (int, float)) else Y(ylo)
        out.append(tag("circle", cx=X(s["load"]), cy=y, r=5, fill=colour.get(s["verdict"], "#555"),
                       class_=f"step step-{s['verdict']}"))
    if m.get("knee") is not None:
        out.append(tag("line", x1=X(m["knee"]), x2=X(m["knee"]), y1=TOP, y2=H - BOTTOM, stroke="#d62728",
                       stroke_width=2, class_="knee"))
        out.append(tag("text", f"knee {fmt.sig(m['knee'])}", x=X(m["knee"]) + 4, y=TOP + 12, fill="#d62728"))
    for i, note in enumerate(("green: held", "red: broke", "amber: generator", "not on schedule")):
        out.append(tag("text", note, x=W - RIGHT + 4, y=TOP + 30 + 12 * i, class_="chart-note"))
    svg = tag("svg", inner="".join(out), class_="rd sweep", width=W, height=H, viewBox=f"0 0 {W} {H}",
              xmlns="http://www.w3.org/2000/svg", data_tier=m["tier"], data_units=m["units"])
    return svg + f"<p>{escape(m.get('words', ''))}</p>"


def _loss(doc: dict) -> str:
    loss = doc.get("n_minus_1")
    spofs = doc.get("single_points_of_failure") or []
    if not loss and not spofs:
        return ""
    out = ["<h2>Losing a DC</h2>"]
    if spofs:
        out.append("<p>Single points of failure in the target: " + escape("; ".join(
            f"{s['service']} ({s['kind']}) in {s['dc']}, needed by {', '.join(s['needed_by'])}" for s in spofs))
                   + ".</p>")
    if loss:
        broke = "; ".join(f"{k} in {', '.join(v)}" for k, v in (loss.get("broke_elsewhere") or {}).items())
        need = loss.get("required_per_s")
        out.append(f"<p>dc_loss of {escape(loss['dc'])} at {fmt.quantity(loss['rate_per_s'], 'joins/s')}"
                   + (f" (the survivors must carry {fmt.quantity(need, 'joins/s')})" if need else "")
                   + ": run "
                   f"{escape(loss['run_id'])}, {escape(loss['verdict'])} ({escape(loss['reason'])})"
                   + (f"; broke in the surviving DCs: {escape(broke)}" if broke else "") + ".</p>")
    return "".join(out)


def _runs(doc: dict) -> str:
    t = doc.get("target") or {}
    runs = "".join(f"<li><code>{escape(r)}</code></li>" for r in doc.get("run_ids") or [])
    skipped = "".join(f"<li>{escape(s)}</li>" for s in doc.get("skipped") or [])
    load = doc.get("machine_load")
    return (f"<h2>Evidence</h2><p>Target {escape(str(t.get('name')))} ({escape(str(t.get('runtime')))}), "
            f"fingerprint <code>{escape(str(t.get('fingerprint')))}</code>, {escape(str(doc.get('date')))}, "
            f"{doc.get('elapsed_s', 0):g} s; machine load {escape(str(load))}.</p><ul>{runs}</ul>"
            + (f"<p>Skipped:</p><ul>{skipped}</ul>" if skipped else ""))
