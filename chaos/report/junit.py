"""junit.xml for CI: one testsuite per run, one testcase per required SLO entry.

A failed SLO is a <failure> whose message says value, threshold and when; an inconclusive
one is <skipped>; an aborted run adds an <error> testcase. <properties> carry the verdict,
the run, the target and every SLO's verdict and value.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from chaos.core import journal as jm
from chaos.core.journal import Journal
from chaos.core.model import Verdict
from chaos.report import fmt, narrative
from chaos.report.schema import typed

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def to_xml(journal: Journal | dict) -> str:
    """The JUnit XML document as a string (UTF-8 declaration included)."""
    root = tree(journal)
    ET.indent(root)
    # XML 1.0 forbids most control characters even escaped: a journal message must not break CI
    body = _CONTROL.sub("\ufffd", ET.tostring(root, encoding="unicode"))
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'


def tree(journal: Journal | dict) -> ET.Element:
    journal = typed(journal)
    name = str(journal.experiment.name or "experiment")
    verdict = fmt.verdict_of(journal)
    suites = ET.Element("testsuites", name="chaos")
    suite = ET.SubElement(suites, "testsuite", name=name, timestamp=str(journal.started_at or ""),
                          time=f"{float(journal.duration_s or 0):.3f}")
    _properties(ET.SubElement(suite, "properties"), journal)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in journal.slos:
        if not narrative.decides(s):
            continue
        counts["tests"] += 1
        case = ET.SubElement(suite, "testcase", classname=f"chaos.{name}",
                             name=f"{s.name} [{s.phase}]", time="0")
        if s.verdict is Verdict.FAILED:
            counts["failures"] += 1
            el = ET.SubElement(case, "failure", message=failure_message(s), type="SloBreach")
            el.text = _failure_text(journal, s)
        elif s.verdict is not Verdict.PASSED:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=f"{s.verdict}: {s.note or 'nothing was measured'}")
    if verdict is Verdict.ABORTED:
        counts["tests"] += 1
        counts["errors"] += 1
        case = ET.SubElement(suite, "testcase", classname=f"chaos.{name}", name="run [aborted]", time="0")
        el = ET.SubElement(case, "error", message=str(journal.reason or "the run was aborted"),
                           type="RunAborted")
        el.text = "\n".join(narrative.sentences(journal))
    out = ET.SubElement(suite, "system-out")
    out.text = "\n".join(narrative.sentences(journal) + _reproduce(journal))
    for k, v in counts.items():
        suite.set(k, str(v))
        suites.set(k, str(v))
    return suites


def failure_message(s: jm.Slo) -> str:
    """'join_time p95 = 5 s, limit <= 2 s, first broke at t=13 s (during [8 s, 23 s), ...)'."""
    name, unit = str(s.name), str(s.unit or "")
    stat = s.stat or ""
    subject = f"{name} {stat}".strip()
    when = fmt.t(s.first_breach_s) if s.first_breach_s is not None else "an unknown time"
    span = s.window if s.window is not None else (s.phase or "")
    return (f"{subject} = {fmt.entry_value(s)}, objective {s.objective or '?'} "
            f"(threshold {fmt.value(name, unit, s.threshold)}), first broke at {when}"
            f" [{span}]")


def _failure_text(journal: Journal, s: jm.Slo) -> str:
    lines = []
    if s.first_breach_s is not None:
        lines.append(narrative.breach_sentence(journal, s))
    name, unit = str(s.name), str(s.unit or "")
    lines += [f"{dc}: {d.verdict} {fmt.value(name, unit, d.value)}" for dc, d in sorted((s.per_dc or {}).items())]
    return "\n".join(lines + _reproduce(journal))


def _reproduce(journal: Journal) -> list[str]:
    rep = journal.experiment.reproduce
    return [f"reproduce: {rep}"] if rep else []


def _properties(props: ET.Element, journal: Journal) -> None:
    tg = journal.target
    scale = tg.scale_factor
    pairs = [("verdict", fmt.verdict_of(journal)), ("reason", journal.reason),
             ("run_id", journal.run_id), ("runtime", tg.runtime), ("profile", tg.profile),
             ("started_at", journal.started_at)]
    if isinstance(scale, jm.Scale):
        pairs += [("scale_factor", scale.described), ("scale_factor.audience", scale.audience),
                  ("scale_factor.join_rate", scale.join_rate)]
    else:
        pairs.append(("scale_factor", scale))
    for s in journal.slos:
        key = f"slo.{s.name}.{s.phase}"
        pairs += [(f"{key}.verdict", s.verdict), (f"{key}.value", s.value)]
    for k, v in pairs:
        if v is not None and v != "":
            ET.SubElement(props, "property", name=str(k), value=str(v))
