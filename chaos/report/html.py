"""report.html: one self-contained file that opens offline (inline CSS and SVG, no links out).

Everything taken from the journal is escaped, and characters HTML does not allow (NUL and
the other control characters, lone surrogates) are shown as visible stand-ins (NUL as ␀).
"""

from __future__ import annotations

import json
import re
from html import escape

from chaos.core import journal as jm
from chaos.core.journal import Journal
from chaos.core.model import Verdict
from chaos.report import charts, fmt, narrative
from chaos.report.schema import typed

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


def page(journal: Journal | dict) -> str:
    """The whole report as one HTML string."""
    journal = typed(journal)
    exp = journal.experiment
    name = str(exp.name or "experiment")
    verdict = fmt.verdict_of(journal)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(name)}: {escape(verdict)}</title><style>{CSS}</style></head><body>",
        f'<h1>{escape(name)} <span class="badge {verdict}">{escape(verdict)}</span></h1>',
    ]
    if exp.title:
        parts.append(f"<p><b>{escape(str(exp.title))}</b></p>")
    if exp.expects:
        parts.append(f"<p>Expects: {escape(str(exp.expects))}</p>")
    # what a reader needs first: where it broke, then the picture, then the verdicts, then the rest
    parts.append(_where(journal))
    parts.append("<h2>SLIs over time</h2>")
    svgs = charts.charts(journal)
    parts += svgs or ['<p class="muted">no time series in the journal</p>']
    parts.append(_slo_table(journal))
    parts.append("<h2>Run</h2>" + _target(journal))
    parts.append(_faults(journal))
    parts.append(_breaking_point(journal))
    parts.append(_halt(journal))
    parts.append(_gameday(journal))
    parts.append(_events(journal))
    if exp.reproduce:
        parts.append(f"<h2>Reproduce</h2><pre><code>{escape(str(exp.reproduce))}</code></pre>")
    schema = "?" if journal.schema_ is None else journal.schema_
    parts.append(f'<p class="muted">run {escape(str(journal.run_id or ""))}, '
                 f'journal schema {escape(str(schema))}</p></body></html>')
    return printable("\n".join(p for p in parts if p))


# C0 controls but tab, newline and carriage return; DEL; C1 controls; lone surrogates
_NOT_IN_HTML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _stand_in(m: re.Match) -> str:
    c = ord(m.group())
    if c < 0x20:
        return chr(0x2400 + c)     # Unicode's control pictures: NUL reads as ␀
    return "\u2421" if c == 0x7f else "\ufffd"


def printable(text: str) -> str:
    """``text`` with every character HTML forbids replaced by a visible stand-in."""
    return _NOT_IN_HTML.sub(_stand_in, text)


def _target(journal: Journal) -> str:
    tg = journal.target
    scale = tg.scale_factor
    described = scale.described if isinstance(scale, jm.Scale) else (None if scale is None else str(scale))
    rows = [("runtime", tg.runtime), ("stack profile", tg.profile), ("stack", tg.stack_id),
            ("scale against the incident", described),
            ("started", journal.started_at), ("ended", journal.ended_at),
            ("duration", fmt.dur(journal.duration_s) if journal.duration_s is not None else None),
            ("verdict reason", journal.reason)]
    aud = journal.audience
    if aud is not None and aud.model_fields_set:
        joined = "?" if aud.joined is None else aud.joined
        listeners = "?" if aud.listeners is None else aud.listeners
        rows.append(("audience", f"{joined} of {listeners} listeners joined, {aud.thick or 0} thick"))
    rows += [(p.name, f"{fmt.t(p.start_s)} to {fmt.t(p.end_s)}") for p in journal.phases or []]
    return _pairs("target", [(k, v) for k, v in rows if v not in (None, "")])


def _where(journal: Journal) -> str:
    items = "".join(f"<li>{escape(s)}</li>" for s in narrative.sentences(journal))
    ok = " ok" if fmt.verdict_of(journal) is Verdict.PASSED else ""
    return f'<h2>Where it broke</h2><div class="where{ok}"><ul>{items}</ul></div>'


def _slo_table(journal: Journal) -> str:
    """The verdicts: required entries first (failed, then inconclusive, then passed), entries
    that measured nothing in one line each reason, observed-only entries folded away."""
    head = ("SLO", "phase", "objective", "value", "threshold", "verdict", "first breach", "per DC", "recovery",
            "window")
    rank = {Verdict.FAILED: 0, Verdict.ABORTED: 1, Verdict.INCONCLUSIVE: 2, Verdict.PASSED: 3}
    required, observed, unmeasured = [], [], {}
    for s in journal.slos:
        if s.value is None and not s.value_text and s.verdict is Verdict.INCONCLUSIVE:
            why = str(s.note or "nothing was measured")
            unmeasured.setdefault(why, []).append(f"{s.name} [{_or(s.phase, '?')}]")
            continue
        (required if narrative.decides(s) else observed).append(s)
    required.sort(key=lambda s: (rank.get(s.verdict, 2), s.first_breach_s is None,
                                 s.first_breach_s or 0.0))
    out = _table("Verdicts", head, [_slo_row(s) for s in required], "slos",
                 "no required SLO was judged on a measurement")
    if unmeasured:
        lines = "".join(f"<li>{escape(', '.join(names))}: {escape(why)}</li>"
                        for why, names in unmeasured.items())
        n = sum(len(v) for v in unmeasured.values())
        out += (f'<p class="unmeasured muted">Not measured ({n} inconclusive, not passed):</p>'
                f'<ul class="unmeasured muted">{lines}</ul>')
    if observed:
        th = "".join(f"<th>{escape(h)}</th>" for h in head)
        rows = "".join(_slo_row(s, required=False) for s in observed)
        out += (f'<details class="observed"><summary>{len(observed)} observed-only SLO entries '
                f'(they do not decide the verdict)</summary><table class="slos observed">'
                f"<tr>{th}</tr>{rows}</table></details>")
    return out


def _slo_row(s, required: bool = True) -> str:
    name, unit = str(s.name), str(s.unit or "")
    per_dc = "; ".join(f"{dc}: {d.verdict} {fmt.value(name, unit, d.value)}"
                       for dc, d in sorted((s.per_dc or {}).items()))
    rec = fmt.dur(s.recovered_s) if s.recovered_s is not None else ""
    verdict = str(s.verdict)
    req = "" if required else ' <span class="muted">(observed only)</span>'
    breach = fmt.t(s.first_breach_s) if s.first_breach_s is not None else ""
    cells = [escape(name) + req] + [escape(str(c)) for c in (
        _or(s.phase), _or(s.objective), fmt.entry_value(s),
        fmt.value(name, unit, s.threshold), verdict, breach, per_dc, rec, _or(s.window))]
    classes = ["", "", "", "num", "num", f"v-{escape(verdict)}", "", "", "", "muted"]
    return "<tr>" + "".join(f'<td class="{c}">{x}</td>' if c else f"<td>{x}</td>"
                            for c, x in zip(classes, cells)) + "</tr>"


def _or(v, empty: str = "") -> object:
    return empty if v is None else v


def _faults(journal: Journal) -> str:
    head = ("fault", "kind", "parameters", "target services (DC)", "links", "start", "end", "reverted")
    rows = []
    for f in journal.faults:
        tgt = f.target or jm.FaultTarget()
        services = ", ".join(f"{s.name} ({s.dc or '-'})" for s in tgt.services or [])
        links = ", ".join(str(lk.name) for lk in tgt.links or [])
        params = ", ".join(f"{k}={v}" for k, v in (f.params or {}).items())
        end = fmt.t(f.ended_s) if f.ended_s is not None else "still active at the end"
        start = fmt.t(f.started_s) if f.started_s is not None else "not injected"
        if f.started_s is None:
            end = f.inject_error or ""
        rev = "yes" if f.reverted else f"NO: {f.revert_error or 'no error recorded'}"
        if f.step is not None:
            params += f" (step {f.step})"
        cells = [f.label or f.name, f.name, params, services, links, start, end, rev]
        rows.append("<tr>" + "".join(f"<td>{escape(str(c or ''))}</td>" for c in cells) + "</tr>")
    return _table("Faults", head, rows, "faults", "no fault was injected")


def _breaking_point(journal: Journal) -> str:
    bp = journal.breaking_point
    if bp is None:
        return ""
    first = bp.first_broken or {}
    steps = bp.steps or []
    names = list(first) or sorted({n for st in steps for n in (st.slos or {})})
    broken_steps = {v.step for v in first.values() if v is not None}
    earliest = min((s for s in broken_steps if s is not None), default=None)
    head = ("step", f"{bp.param or 'value'}", "window") + tuple(names)
    rows = []
    for st in steps:
        cells = []
        for n in names:
            got = (st.slos or {}).get(n)
            unit = str(narrative.first_entry(journal, n).unit or "")
            text = f"{_or(got.verdict)} {fmt.value(n, unit, got.value)}" if got is not None else ""
            mark = first.get(n) is not None and first[n].step == st.index
            cls = ("first-broken " if mark else "") + f"v-{_or(got.verdict) if got is not None else ''}"
            cells.append(f'<td class="{escape(cls)}">{escape(text)}</td>')
        cls = ' class="first-broken-step"' if st.index == earliest else ""
        window = f"{fmt.t(st.start_s)} to {fmt.t(st.end_s)}"
        rows.append(f"<tr{cls}><th>{escape(str(st.index))}</th>"
                    f"<td>{escape(fmt.param(st.value, str(bp.unit or '')))}</td>"
                    f"<td>{escape(window)}</td>{''.join(cells)}</tr>")
    title = f"Breaking point: {bp.label or bp.fault or ''}"
    return _table(title, head, rows, "breaking-point", "no steps recorded")


def _halt(journal: Journal) -> str:
    h = journal.halt
    if h is None:
        return ""
    sli = str(h.sli or "")
    unit = str(narrative.first_entry(journal, sli).unit or "")
    rows = [("SLI", sli), ("halt limit", h.objective), ("value", fmt.value(sli, unit, h.value)),
            ("halted at", fmt.t(h.at_s)), ("fault onset", fmt.t(h.onset_s)),
            ("detected after onset", fmt.dur(h.detected_after_s)),
            ("stopped after detection", fmt.dur(h.halted_after_s))]
    known = {"sli", "objective", "value", "at_s", "onset_s", "detected_after_s", "halted_after_s"}
    rows += [(k, v) for k, v in h.dump().items() if k not in known]
    return "<h2>Halt</h2>" + _pairs("halt", rows)


def _events(journal: Journal) -> str:
    rows = []
    for e in sorted(journal.events, key=lambda e: e.t_s or 0):
        extra = {k: v for k, v in e.dump().items() if k not in ("t_s", "kind", "message")}
        more = f' <span class="muted">{escape(json.dumps(extra, default=str))}</span>' if extra else ""
        rows.append(f'<tr><td class="num">{escape(fmt.t(e.t_s))}</td>'
                    f"<td>{escape(str(_or(e.kind)))}</td>"
                    f"<td>{escape(str(_or(e.message)))}{more}</td></tr>")
    return _table("Timeline", ("t", "event", "what happened"), rows, "events", "no events recorded")


def _gameday(journal: Journal) -> str:
    """A game day's people: who was asked what, who answered what and when, the notes."""
    gd = journal.gameday
    if gd is None:
        return ""
    rows = [("runbook", gd.runbook), ("mode", "--auto" if gd.auto else "board"),
            ("at the keyboard", gd.operator),
            ("roles", "; ".join(f"{k}: {v}" for k, v in (gd.roles or {}).items()))]
    if gd.skipped:
        rows.append(("skipped steps", ", ".join(map(str, gd.skipped))))
    out = ["<h2>Game day</h2>", _pairs("gameday", [(k, v) for k, v in rows if v not in (None, "")])]
    prompts = [f"<tr><td>{escape(str(p.step))}</td><td>{escape(str(p.role or ''))}</td>"
               f"<td>{escape(str(p.question))}</td><td class=\"num\">{escape(fmt.t(p.asked_s))}</td>"
               f"<td>{escape(str(p.who or ''))}</td><td>{escape(str(p.choice or p.outcome))}</td>"
               f"<td class=\"num\">{escape(fmt.dur(p.waited_s) if p.waited_s is not None else '')}</td></tr>"
               for p in gd.prompts or []]
    out.append(_table("Prompts and answers", ("step", "role", "question", "asked", "answered by",
                                               "answer", "after"), prompts, "prompts", "no prompt"))
    steps = [f"<tr><td>{escape(str(s.index))}</td><td>{escape(str(s.id))}</td>"
             f"<td>{escape(str(s.summary))}</td><td>{escape(str(s.status))}</td></tr>"
             for s in gd.steps or []]
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
