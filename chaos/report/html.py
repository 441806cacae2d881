"""report.html: one self-contained file that opens offline (inline CSS and SVG, no links out).

Everything taken from the journal is escaped.
"""

from __future__ import annotations

import json
from html import escape

from chaos.report import charts, fmt, narrative

CSS = """
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;margin:24px auto;max-width:1180px;color:#222;
background:#fff;line-height:1.4}
h1{font-size:1.5em;margin:0 0 4px}h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #ddd}
.badge{display:inline-block;padding:3px 12px;border-radius:4px;color:#fff;font-weight:bold;
text-transform:uppercase;letter-spacing:.05em}
.passed{background:#2e7d32}.failed{background:#c62828}.aborted{background:#6a1b9a}
.inconclusive{background:#b26a00}
td.v-passed{color:#2e7d32;font-weight:bold}td.v-failed{color:#c62828;font-weight:bold}
td.v-inconclusive,td.v-aborted{color:#b26a00;font-weight:bold}
.where{background:#fff6f6;border-left:5px solid #c62828;padding:8px 16px}
.where.ok{background:#f4fbf4;border-left-color:#2e7d32}
.where li{margin:4px 0}
table{border-collapse:collapse;margin:6px 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
td.first-broken{background:#ffd5d5;font-weight:bold}tr.first-broken-step th{background:#ffd5d5}
.muted{color:#777}code,pre{font-family:"DejaVu Sans Mono",monospace;font-size:.9em}
pre{background:#f6f6f6;padding:8px;overflow-x:auto}
svg.sli-chart{display:block;margin:10px 0;font-size:11px}
svg .chart-title{font-size:13px;font-weight:bold}svg .tick{fill:#444}svg .axis{fill:#444}
svg .fault-label{fill:#4a1a75;font-size:10px}svg .halt-label{font-size:10px;font-weight:bold}
svg .breach-label{fill:#d62728;font-size:10px}svg .chart-note{fill:#777;font-size:10px}
"""


def page(journal: dict) -> str:
    """The whole report as one HTML string."""
    exp = journal.get("experiment") or {}
    name = str(exp.get("name") or "experiment")
    verdict = fmt.verdict_of(journal)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(name)}: {escape(verdict)}</title><style>{CSS}</style></head><body>",
        f'<h1>{escape(name)} <span class="badge {verdict}">{escape(verdict)}</span></h1>',
    ]
    if exp.get("title"):
        parts.append(f"<p><b>{escape(str(exp['title']))}</b></p>")
    if exp.get("expects"):
        parts.append(f"<p>Expects: {escape(str(exp['expects']))}</p>")
    parts.append(_target(journal))
    parts.append(_where(journal))
    parts.append(_slo_table(journal))
    parts.append("<h2>SLIs over time</h2>")
    svgs = charts.charts(journal)
    parts += svgs or ['<p class="muted">no time series in the journal</p>']
    parts.append(_faults(journal))
    parts.append(_breaking_point(journal))
    parts.append(_halt(journal))
    parts.append(_gameday(journal))
    parts.append(_events(journal))
    if exp.get("reproduce"):
        parts.append(f"<h2>Reproduce</h2><pre><code>{escape(str(exp['reproduce']))}</code></pre>")
    parts.append(f'<p class="muted">run {escape(str(journal.get("run_id", "")))}, '
                 f'journal schema {escape(str(journal.get("schema", "?")))}</p></body></html>')
    return "\n".join(p for p in parts if p)


def _target(journal: dict) -> str:
    tg = journal.get("target") or {}
    scale = tg.get("scale_factor") or {}
    described = scale.get("described") if isinstance(scale, dict) else str(scale)
    rows = [("runtime", tg.get("runtime")), ("stack profile", tg.get("profile")), ("stack", tg.get("stack_id")),
            ("scale against the incident", described),
            ("started", journal.get("started_at")), ("ended", journal.get("ended_at")),
            ("duration", fmt.dur(journal["duration_s"]) if journal.get("duration_s") is not None else None),
            ("verdict reason", journal.get("reason"))]
    aud = journal.get("audience") or {}
    if aud:
        rows.append(("audience", f"{aud.get('joined', '?')} of {aud.get('listeners', '?')} listeners joined, "
                                 f"{aud.get('thick', 0)} thick"))
    rows += [(p.get("name"), f"{fmt.t(p.get('start_s'))} to {fmt.t(p.get('end_s'))}")
             for p in journal.get("phases") or []]
    return _pairs("target", [(k, v) for k, v in rows if v not in (None, "")])


def _where(journal: dict) -> str:
    items = "".join(f"<li>{escape(s)}</li>" for s in narrative.sentences(journal))
    ok = " ok" if fmt.verdict_of(journal) == "passed" else ""
    return f'<h2>Where it broke</h2><div class="where{ok}"><ul>{items}</ul></div>'


def _slo_table(journal: dict) -> str:
    head = ("SLO", "phase", "objective", "value", "threshold", "verdict", "first breach", "per DC", "recovery",
            "window")
    rows = []
    for s in journal.get("slos") or []:
        name, unit = str(s.get("name")), str(s.get("unit") or "")
        per_dc = "; ".join(f"{dc}: {d.get('verdict')} {fmt.value(name, unit, d.get('value'))}"
                           for dc, d in sorted((s.get("per_dc") or {}).items()) if isinstance(d, dict))
        rec = fmt.dur(s["recovered_s"]) if s.get("recovered_s") is not None else ""
        verdict = str(s.get("verdict"))
        req = "" if s.get("required", True) else ' <span class="muted">(observed only)</span>'
        breach = fmt.t(s["first_breach_s"]) if s.get("first_breach_s") is not None else ""
        cells = [escape(name) + req] + [escape(str(c)) for c in (
            s.get("phase", ""), s.get("objective", ""), fmt.entry_value(s),
            fmt.value(name, unit, s.get("threshold")), verdict, breach, per_dc, rec, s.get("window", ""))]
        classes = ["", "", "", "num", "num", f"v-{escape(verdict)}", "", "", "", "muted"]
        rows.append("<tr>" + "".join(f'<td class="{c}">{x}</td>' if c else f"<td>{x}</td>"
                                     for c, x in zip(classes, cells)) + "</tr>")
    return _table("Verdicts", head, rows, "slos", "no SLO was judged")


def _faults(journal: dict) -> str:
    head = ("fault", "kind", "parameters", "target services (DC)", "links", "start", "end", "reverted")
    rows = []
    for f in journal.get("faults") or []:
        tgt = f.get("target") or {}
        services = ", ".join(f"{s.get('name')} ({s.get('dc') or '-'})" for s in tgt.get("services") or [])
        links = ", ".join(str(lk.get("name")) for lk in tgt.get("links") or [])
        params = ", ".join(f"{k}={v}" for k, v in (f.get("params") or {}).items())
        end = fmt.t(f["ended_s"]) if f.get("ended_s") is not None else "still active at the end"
        start = fmt.t(f["started_s"]) if f.get("started_s") is not None else "not injected"
        if f.get("started_s") is None:
            end = f.get("inject_error") or ""
        rev = "yes" if f.get("reverted") else f"NO: {f.get('revert_error') or 'no error recorded'}"
        if f.get("step") is not None:
            params += f" (step {f['step']})"
        cells = [f.get("label") or f.get("name"), f.get("name"), params, services, links,
                 start, end, rev]
        rows.append("<tr>" + "".join(f"<td>{escape(str(c or ''))}</td>" for c in cells) + "</tr>")
    return _table("Faults", head, rows, "faults", "no fault was injected")


def _breaking_point(journal: dict) -> str:
    bp = journal.get("breaking_point")
    if not isinstance(bp, dict):
        return ""
    first = bp.get("first_broken") or {}
    steps = bp.get("steps") or []
    names = list(first) or sorted({n for st in steps for n in (st.get("slos") or {})})
    broken_steps = {v.get("step") for v in first.values() if isinstance(v, dict)}
    earliest = min((s for s in broken_steps if s is not None), default=None)
    head = ("step", f"{bp.get('param', 'value')}", "window") + tuple(names)
    rows = []
    for st in steps:
        cells = []
        for n in names:
            got = (st.get("slos") or {}).get(n) or {}
            unit = str(narrative.first_entry(journal, n).get("unit") or "")
            text = f"{got.get('verdict', '')} {fmt.value(n, unit, got.get('value'))}" if got else ""
            mark = isinstance(first.get(n), dict) and first[n].get("step") == st.get("index")
            cls = ("first-broken " if mark else "") + f"v-{got.get('verdict', '')}"
            cells.append(f'<td class="{escape(cls)}">{escape(text)}</td>')
        cls = ' class="first-broken-step"' if st.get("index") == earliest else ""
        window = f"{fmt.t(st.get('start_s'))} to {fmt.t(st.get('end_s'))}"
        rows.append(f"<tr{cls}><th>{escape(str(st.get('index')))}</th>"
                    f"<td>{escape(fmt.param(st.get('value'), str(bp.get('unit', ''))))}</td>"
                    f"<td>{escape(window)}</td>{''.join(cells)}</tr>")
    title = f"Breaking point: {bp.get('label') or bp.get('fault') or ''}"
    return _table(title, head, rows, "breaking-point", "no steps recorded")


def _halt(journal: dict) -> str:
    h = journal.get("halt")
    if not isinstance(h, dict):
        return ""
    sli = str(h.get("sli", ""))
    unit = str(narrative.first_entry(journal, sli).get("unit") or "")
    rows = [("SLI", sli), ("halt limit", h.get("objective")), ("value", fmt.value(sli, unit, h.get("value"))),
            ("halted at", fmt.t(h.get("at_s"))), ("fault onset", fmt.t(h.get("onset_s"))),
            ("detected after onset", fmt.dur(h.get("detected_after_s"))),
            ("stopped after detection", fmt.dur(h.get("halted_after_s")))]
    known = {"sli", "objective", "value", "at_s", "onset_s", "detected_after_s", "halted_after_s"}
    rows += [(k, v) for k, v in h.items() if k not in known]
    return "<h2>Halt</h2>" + _pairs("halt", rows)


def _events(journal: dict) -> str:
    rows = []
    for e in sorted(journal.get("events") or [], key=lambda e: e.get("t_s") or 0):
        extra = {k: v for k, v in e.items() if k not in ("t_s", "kind", "message")}
        more = f' <span class="muted">{escape(json.dumps(extra, default=str))}</span>' if extra else ""
        rows.append(f'<tr><td class="num">{escape(fmt.t(e.get("t_s")))}</td>'
                    f"<td>{escape(str(e.get('kind', '')))}</td>"
                    f"<td>{escape(str(e.get('message', '')))}{more}</td></tr>")
    return _table("Timeline", ("t", "event", "what happened"), rows, "events", "no events recorded")


def _gameday(journal: dict) -> str:
    """A game day's people: who was asked what, who answered what and when, the notes."""
    gd = journal.get("gameday")
    if not isinstance(gd, dict):
        return ""
    rows = [("runbook", gd.get("runbook")), ("mode", "--auto" if gd.get("auto") else "board"),
            ("at the keyboard", gd.get("operator")),
            ("roles", "; ".join(f"{k}: {v}" for k, v in (gd.get("roles") or {}).items()))]
    if gd.get("skipped"):
        rows.append(("skipped steps", ", ".join(map(str, gd["skipped"]))))
    out = ["<h2>Game day</h2>", _pairs("gameday", [(k, v) for k, v in rows if v not in (None, "")])]
    prompts = [f"<tr><td>{escape(str(p.get('step')))}</td><td>{escape(str(p.get('role') or ''))}</td>"
               f"<td>{escape(str(p.get('question')))}</td><td class=\"num\">{escape(fmt.t(p.get('asked_s')))}</td>"
               f"<td>{escape(str(p.get('who') or ''))}</td><td>{escape(str(p.get('choice') or p.get('outcome')))}</td>"
               f"<td class=\"num\">{escape(fmt.dur(p['waited_s']) if p.get('waited_s') is not None else '')}</td></tr>"
               for p in gd.get("prompts") or []]
    out.append(_table("Prompts and answers", ("step", "role", "question", "asked", "answered by",
                                               "answer", "after"), prompts, "prompts", "no prompt"))
    steps = [f"<tr><td>{escape(str(s.get('index')))}</td><td>{escape(str(s.get('id')))}</td>"
             f"<td>{escape(str(s.get('summary')))}</td><td>{escape(str(s.get('status')))}</td></tr>"
             for s in gd.get("steps") or []]
    out.append(_table("Runbook steps", ("#", "id", "step", "status"), steps, "steps", "no step"))
    return "".join(out)


def _pairs(cls: str, rows) -> str:
    body = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def _table(title: str, head, rows: list[str], cls: str, empty: str) -> str:
    if not rows:
        return f'<h2>{escape(title)}</h2><p class="muted">{escape(empty)}</p>'
    th = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    return f'<h2>{escape(title)}</h2><table class="{cls}"><tr>{th}</tr>{"".join(rows)}</table>'
