"""junit.xml for CI: one testsuite per run, one testcase per required SLO entry.

A failed SLO is a <failure> whose message says value, threshold and when; an inconclusive
one is <skipped>; an aborted run adds an <error> testcase. <properties> carry the verdict,
the run, the target and every SLO's verdict and value.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from chaos.report import fmt, narrative

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def to_xml(journal: dict) -> str:
    """The JUnit XML document as a string (UTF-8 declaration included)."""
    root = tree(journal)
    ET.indent(root)
    # XML 1.0 forbids most control characters even escaped: a journal message must not break CI
    body = _CONTROL.sub("\ufffd", ET.tostring(root, encoding="unicode"))
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'


def tree(journal: dict) -> ET.Element:
    exp = journal.get("experiment") or {}
    name = str(exp.get("name") or "experiment")
    verdict = fmt.verdict_of(journal)
    suites = ET.Element("testsuites", name="chaos")
    suite = ET.SubElement(suites, "testsuite", name=name, timestamp=str(journal.get("started_at", "")),
                          time=f"{float(journal.get('duration_s') or 0):.3f}")
    _properties(ET.SubElement(suite, "properties"), journal)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in journal.get("slos") or []:
        if not s.get("required", True):
            continue
        counts["tests"] += 1
        case = ET.SubElement(suite, "testcase", classname=f"chaos.{name}",
                             name=f"{s.get('name')} [{s.get('phase')}]", time="0")
        v = s.get("verdict")
        if v == "failed":
            counts["failures"] += 1
            el = ET.SubElement(case, "failure", message=failure_message(s), type="SloBreach")
            el.text = _failure_text(journal, s)
        elif v != "passed":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=f"{v}: {s.get('note') or 'nothing was measured'}")
    if verdict == "aborted":
        counts["tests"] += 1
        counts["errors"] += 1
        case = ET.SubElement(suite, "testcase", classname=f"chaos.{name}", name="run [aborted]", time="0")
        el = ET.SubElement(case, "error", message=str(journal.get("reason") or "the run was aborted"),
                           type="RunAborted")
        el.text = "\n".join(narrative.sentences(journal))
    out = ET.SubElement(suite, "system-out")
    out.text = "\n".join(narrative.sentences(journal) + _reproduce(journal))
    for k, v in counts.items():
        suite.set(k, str(v))
        suites.set(k, str(v))
    return suites


def failure_message(s: dict) -> str:
    """'join_time p95 = 5 s, limit <= 2 s, first broke at t=13 s (during [8 s, 23 s), ...)'."""
    name, unit = str(s.get("name")), str(s.get("unit") or "")
    stat = s.get("stat") or ""
    subject = f"{name} {stat}".strip()
    when = fmt.t(s["first_breach_s"]) if s.get("first_breach_s") is not None else "an unknown time"
    return (f"{subject} = {fmt.entry_value(s)}, objective {s.get('objective', '?')} "
            f"(threshold {fmt.value(name, unit, s.get('threshold'))}), first broke at {when}"
            f" [{s.get('window', s.get('phase', ''))}]")


def _failure_text(journal: dict, s: dict) -> str:
    lines = []
    if s.get("first_breach_s") is not None:
        lines.append(narrative.breach_sentence(journal, s))
    name, unit = str(s.get("name")), str(s.get("unit") or "")
    lines += [f"{dc}: {d.get('verdict')} {fmt.value(name, unit, d.get('value'))}"
              for dc, d in sorted((s.get("per_dc") or {}).items()) if isinstance(d, dict)]
    return "\n".join(lines + _reproduce(journal))


def _reproduce(journal: dict) -> list[str]:
    rep = (journal.get("experiment") or {}).get("reproduce")
    return [f"reproduce: {rep}"] if rep else []


def _properties(props: ET.Element, journal: dict) -> None:
    tg = journal.get("target") or {}
    scale = tg.get("scale_factor") or {}
    pairs = [("verdict", fmt.verdict_of(journal)), ("reason", journal.get("reason")),
             ("run_id", journal.get("run_id")), ("runtime", tg.get("runtime")), ("profile", tg.get("profile")),
             ("started_at", journal.get("started_at"))]
    if isinstance(scale, dict):
        pairs += [("scale_factor", scale.get("described")), ("scale_factor.audience", scale.get("audience")),
                  ("scale_factor.join_rate", scale.get("join_rate"))]
    else:
        pairs.append(("scale_factor", scale))
    for s in journal.get("slos") or []:
        key = f"slo.{s.get('name')}.{s.get('phase')}"
        pairs += [(f"{key}.verdict", s.get("verdict")), (f"{key}.value", s.get("value"))]
    for k, v in pairs:
        if v is not None and v != "":
            ET.SubElement(props, "property", name=str(k), value=str(v))
