"""The report side of a run: journal -> where-it-broke sentences, report.html, junit.xml, terminal.

Journals are built here as a runner would write them (schema 1, /work/notes/journal_schema.md).
"""

from __future__ import annotations

import copy
import io
import json
import re
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import pytest

from chaos.adapters.space.reference import build

from chaos import report
from chaos.cli import main
from chaos.core.errors import ConfigError
from chaos.report import charts, fmt, junit, narrative
from chaos.report import html as report_html

DCS = ("dc-a", "dc-b", "dc-c")
SCALE = {"audience": 4.0e-05, "join_rate": 0.006,
         "described": "24 listeners = 4.00e-05 of the incident's 600,000; 5 joins/s = 0.006 of ~833/s"}


# -- journals ----------------------------------------------------------------------------------
def _series(unit, stat, threshold, op, duration, overall, per_dc=None):
    ts = [float(t) for t in range(int(duration))]
    out = {"unit": unit, "stat": stat, "threshold": threshold, "op": op,
           "t_s": ts, "value": [overall(t) for t in ts], "per_dc": {}}
    for dc, fn in (per_dc or {}).items():
        out["per_dc"][dc] = {"t_s": ts, "value": [fn(t) for t in ts]}
    return out


def _slo(name, phase, verdict, value, threshold, unit, op, stat, objective, first_breach_s=None,
         per_dc=None, recovered_s=None, required=True, note=""):
    return {"name": name, "objective": objective, "phase": phase, "verdict": verdict, "value": value,
            "threshold": threshold, "unit": unit, "op": op, "stat": stat,
            "window": f"{phase}, 5 s windows every 1 s", "first_breach_s": first_breach_s,
            "samples": 60, "note": note, "required": required, "per_dc": per_dc or {},
            "recovered_s": recovered_s}


def _base(name, verdict, reason, duration, profile="resilient"):
    return {
        "schema": 1, "run_id": f"20261122T020304Z-{name}-3f2a",
        "experiment": {"name": name, "title": f"{name} experiment", "expects": "the room keeps talking",
                       "reproduce": f"pytest experiments/test_canaries.py::test_{name} --chaos-runtime local "
                                    f"--chaos-stack-profile {profile}"},
        "target": {"runtime": "local", "profile": profile, "stack_id": "local-3f2a", "scale_factor": SCALE,
                   **build("local", profile).shape()},
        "started_at": "2026-11-22T02:03:04.123+00:00", "ended_at": "2026-11-22T02:03:45.323+00:00",
        "duration_s": duration, "verdict": verdict, "reason": reason,
        "phases": [{"name": "before", "start_s": 0, "end_s": 8}, {"name": "during", "start_s": 8, "end_s": 23},
                   {"name": "after", "start_s": 23, "end_s": duration}],
        "slos": [], "faults": [], "events": [], "halt": None, "breaking_point": None, "series": {},
        "audience": {"listeners": 24, "joined": 24, "thick": 3,
                     "per_dc": {dc: {"listeners": 8, "joined": 8} for dc in DCS}},
        "storms": [],
    }


def _dc_a_services():
    return [{"name": n, "kind": k, "dc": "dc-a"} for n, k in
            (("gateway-a", "gateway"), ("edge-a", "edge"), ("origin-a", "origin"), ("redis-a", "redis"),
             ("toxiproxy-a", "toxiproxy"))]


def canary_journal():
    """Fragile profile, dc_loss(dc-a) at t=8..23: joins fail everywhere (redis lives in dc-a)."""
    j = _base("dc_loss_dc_a_canary", "failed", "join_time [during] failed: p95 5 s > 2 s at t=13 s", 41.2,
              profile="fragile")
    failed3 = {dc: {"verdict": "failed", "value": 5.0, "first_breach_s": 13.0} for dc in DCS}
    audio3 = {dc: {"verdict": "failed", "value": 0.41, "first_breach_s": 10.0} for dc in DCS}
    jt = ("s", "<=", "p95", "p95 <= 2 s")
    ad = ("", ">=", "mean", "mean >= 0.995 per 5 s window")
    j["slos"] = [
        _slo("join_time", "before", "passed", 0.31, 2.0, *jt),
        _slo("join_time", "during", "failed", 5.0, 2.0, *jt, first_breach_s=13.0, per_dc=failed3,
             recovered_s=4.5),
        _slo("join_time", "after", "passed", 1.2, 2.0, *jt, recovered_s=4.5),
        _slo("audio_delivered", "before", "passed", 0.999, 0.995, *ad),
        _slo("audio_delivered", "during", "failed", 0.41, 0.995, *ad, first_breach_s=10.0, per_dc=audio3),
        _slo("audio_delivered", "after", "passed", 0.998, 0.995, *ad),
        _slo("mouth_to_ear", "during", "passed", 0.21, 0.4, "s", "<=", "p95", "p95 <= 0.4 s", required=False),
    ]
    j["faults"] = [{
        "id": "dc_loss-1a2b3c", "name": "dc_loss", "params": {"mode": "kill"},
        "target": {"selector": {"service": None, "dc": "dc-a", "link": None, "count": "all"},
                   "services": _dc_a_services(), "links": []},
        "label": "dc_loss(dc-a)", "started_s": 8.0, "ended_s": 23.0, "reverted": True, "revert_error": "",
        "step": None}]
    j["events"] = [
        {"t_s": 0.0, "kind": "phase", "message": "before: steady state"},
        {"t_s": 8.0, "kind": "inject", "message": "dc_loss(dc-a): killed 5 services", "fault": "dc_loss-1a2b3c"},
        {"t_s": 13.0, "kind": "breach", "message": "join_time p95 5 s > 2 s"},
        {"t_s": 23.0, "kind": "revert", "message": "dc_loss(dc-a) reverted: 5 services restarted"},
    ]
    j["series"] = {
        "join_time": _series("s", "p95", 2.0, "<=", 41,
                             lambda t: 5.0 if 12 <= t < 27 else (None if t == 30 else 0.3),
                             {dc: (lambda t: 5.0 if 12 <= t < 27 else 0.35) for dc in DCS}),
        "audio_delivered": _series("", "mean", 0.995, ">=", 41,
                                   lambda t: None if 9 <= t < 11 else (0.41 if 11 <= t < 25 else 0.999),
                                   {dc: (lambda t: 0.41 if 9 <= t < 25 else 0.999) for dc in DCS}),
        "mouth_to_ear": _series("s", "p95", 0.4, "<=", 41, lambda t: 0.21),
    }
    return j


def passed_journal():
    j = _base("latency_edge_b", "passed", "every required SLO held", 30.0)
    j["slos"] = [_slo("join_time", p, "passed", 0.4, 2.0, "s", "<=", "p95", "p95 <= 2 s") for p in
                 ("before", "during", "after")]
    j["faults"] = [{"id": "latency-9f", "name": "latency", "params": {"latency_ms": 200, "jitter_ms": 20},
                    "target": {"selector": {"service": None, "dc": None, "link": "listener.edge-b",
                                            "count": "all"},
                               "services": [{"name": "edge-b", "kind": "edge", "dc": "dc-b"}],
                               "links": [{"name": "listener.edge-b", "src": "listener", "dst": "edge-b"}]},
                    "label": "latency 200 ms on listener.edge-b", "started_s": 8.0, "ended_s": 23.0,
                    "reverted": True, "revert_error": "", "step": None}]
    j["series"] = {"join_time": _series("s", "p95", 2.0, "<=", 30, lambda t: 0.4)}
    j["series"]["join_time"]["note"] = "failed joins are drawn at the join timeout (5 s)"
    return j


def sweep_journal():
    """packet_drop on edge-b in steps of 1, 2, 3, 5 %: audio breaks at 3 %, in dc-b only."""
    j = _base("packet_drop_edge_b_sweep", "failed", "audio_delivered [during] failed at 3 % packet_drop", 45.0)
    j["phases"] = [{"name": "before", "start_s": 0, "end_s": 5}, {"name": "during", "start_s": 5, "end_s": 45}]
    values, audio = [1.0, 2.0, 3.0, 5.0], [0.999, 0.997, 0.987, 0.962]
    j["faults"] = [{"id": f"packet_drop-{i}", "name": "packet_drop", "params": {"rate": v / 100},
                    "target": {"selector": {"service": "edge-b", "dc": None, "link": None, "count": "all"},
                               "services": [{"name": "edge-b", "kind": "edge", "dc": "dc-b"}], "links": []},
                    "label": f"packet_drop {v:g} % on edge-b", "started_s": 5.0 + 10 * i,
                    "ended_s": 15.0 + 10 * i, "reverted": True, "revert_error": "", "step": i}
                   for i, v in enumerate(values)]
    per_dc = {"dc-a": {"verdict": "passed", "value": 0.999, "first_breach_s": None},
              "dc-b": {"verdict": "failed", "value": 0.962, "first_breach_s": 30.0},
              "dc-c": {"verdict": "passed", "value": 0.999, "first_breach_s": None}}
    j["slos"] = [_slo("audio_delivered", "during", "failed", 0.962, 0.995, "", ">=", "mean",
                      "mean >= 0.995 per 5 s window", first_breach_s=30.0, per_dc=per_dc),
                 _slo("join_time", "during", "passed", 0.5, 2.0, "s", "<=", "p95", "p95 <= 2 s")]
    j["breaking_point"] = {
        "param": "rate", "unit": "%", "fault": "packet_drop", "label": "packet_drop on edge-b",
        "steps": [{"index": i, "value": v, "start_s": 5 + 10 * i, "end_s": 15 + 10 * i,
                   "slos": {"audio_delivered": {"verdict": "passed" if a >= 0.995 else "failed", "value": a},
                            "join_time": {"verdict": "passed", "value": 0.5}}}
                  for i, (v, a) in enumerate(zip(values, audio))],
        "first_broken": {"audio_delivered": {"step": 2, "value": 3.0}, "join_time": None}}
    j["series"] = {"audio_delivered": _series("", "mean", 0.995, ">=", 45,
                                              lambda t: audio[min(3, max(0, int((t - 5) // 10)))])}
    return j


def halted_journal():
    """Aborted by a halt condition; the fault's revert failed (still active at the end)."""
    j = _base("dc_partition_dc_c", "aborted", "halted: join_time p95 5 s > limit 4 s at t=18.5 s", 19.0)
    j["phases"] = [{"name": "before", "start_s": 0, "end_s": 8}, {"name": "during", "start_s": 8, "end_s": 19}]
    j["slos"] = [_slo("join_time", "during", "failed", 5.0, 2.0, "s", "<=", "p95", "p95 <= 2 s",
                      first_breach_s=15.0, per_dc={"dc-a": {"verdict": "passed", "value": 0.4},
                                                   "dc-b": {"verdict": "passed", "value": 0.5},
                                                   "dc-c": {"verdict": "failed", "value": 5.0}}),
                 _slo("audio_delivered", "during", "inconclusive", None, 0.995, "", ">=", "mean",
                      "mean >= 0.995", note="the run stopped before a window closed")]
    j["faults"] = [{"id": "dc_partition-77", "name": "dc_partition", "params": {},
                    "target": {"selector": {"service": None, "dc": "dc-c", "link": None, "count": "all"},
                               "services": [{"name": "gateway-c", "kind": "gateway", "dc": "dc-c"},
                                            {"name": "edge-c", "kind": "edge", "dc": "dc-c"}],
                               "links": [{"name": "gateway-c.redis-a", "src": "gateway-c", "dst": "redis-a"}]},
                    "label": "dc_partition(dc-c)", "started_s": 8.0, "ended_s": None, "reverted": False,
                    "revert_error": "toxiproxy did not answer within 5 s", "step": None}]
    j["halt"] = {"sli": "join_time", "objective": "p95 <= 4 s per 3 s window", "value": 5.0, "at_s": 18.5,
                 "onset_s": 8.0, "detected_after_s": 10.5, "halted_after_s": 0.4}
    j["events"] = [{"t_s": 18.5, "kind": "halt", "message": "join_time p95 5 s > limit 4 s"}]
    j["series"] = {"join_time": _series("s", "p95", 2.0, "<=", 19, lambda t: 5.0 if t >= 12 else 0.4)}
    return j


def gate_journal():
    j = _base("dc_loss_gate", "inconclusive",
              "steady state did not hold before the method: join_time p95 3.1 s > 2 s", 8.0)
    j["phases"] = [{"name": "before", "start_s": 0, "end_s": 8}]
    j["slos"] = [_slo("join_time", "before", "failed", 3.1, 2.0, "s", "<=", "p95", "p95 <= 2 s",
                      first_breach_s=4.0, per_dc={"dc-a": {"verdict": "passed", "value": 0.4},
                                                  "dc-b": {"verdict": "passed", "value": 0.4},
                                                  "dc-c": {"verdict": "failed", "value": 3.1}}),
                 _slo("echo", "before", "inconclusive", None, -25.0, "dB", "<=", "max", "max <= -25 dB")]
    j["events"] = [{"t_s": 8.0, "kind": "gate", "message": "steady state did not hold; no fault injected"}]
    return j


ALL = {"canary": canary_journal, "passed": passed_journal, "sweep": sweep_journal,
       "halted": halted_journal, "gate": gate_journal}


# -- where it broke ------------------------------------------------------------------------
def test_canary_sentence_names_slo_time_fault_dcs_cause_and_recovery():
    said = narrative.sentences(canary_journal())
    join = next(s for s in said if s.startswith("join_time"))
    assert join == ("join_time p95 rose to 5 s (limit 2 s) at t=13 s, 5 s after dc_loss(dc-a) started; "
                    "joins failed in all three DCs because redis lives in dc-a; "
                    "it recovered 4.5 s after the last fault ended")
    audio = next(s for s in said if s.startswith("audio_delivered"))
    assert "41 %" in audio and "99.5 %" in audio and "t=10 s" in audio
    assert audio.startswith("audio_delivered fell to 41 % (minimum 99.5 %) at t=10 s, 2 s after dc_loss(dc-a)")
    assert "because the origin lives in dc-a" in audio and audio.endswith("it held again in the after phase")
    assert said.index(audio) < said.index(join)  # earliest breach first
    assert narrative.headline(canary_journal()).startswith("FAILED: audio_delivered")


def test_breaking_point_says_at_which_step_it_broke():
    said = narrative.sentences(sweep_journal())
    assert said[0] == ("audio_delivered fell below 99.5 % at 3 % packet_drop on edge-b (98.7 %); "
                       "it held at 2 %")
    assert "join_time held at every step, up to 5 % packet_drop on edge-b" in said
    audio = next(s for s in said if s.startswith("audio_delivered fell to"))
    assert "in dc-b only" in audio and "where edge-b lives" in audio
    assert "packet_drop 3 % on edge-b" in audio  # the step active at t=30 s
    assert audio.endswith("it had not recovered by the end of the run")


def test_halt_and_unreverted_fault_are_said():
    said = narrative.sentences(halted_journal())
    assert said[0].startswith("the run was halted at t=18.5 s: join_time reached 5 s")
    assert "10.5 s after the fault began" in said[0] and "0.4 s later" in said[0]
    join = next(s for s in said if s.startswith("join_time"))
    assert "in dc-c only (the DC that was cut off)" in join
    assert "dc_partition(dc-c) was still active when the run ended" in join
    assert any("was NOT reverted" in s and "chaos stack reset" in s for s in said)
    assert "not measured: audio_delivered [during]" in said


def test_a_fault_that_could_not_be_injected_is_said_and_not_shaded():
    j = passed_journal()
    j["faults"][0].update(started_s=None, ended_s=None, inject_error="toxiproxy refused: no such proxy")
    assert "latency 200 ms on listener.edge-b could not be injected: toxiproxy refused: no such proxy" in (
        narrative.sentences(j))
    html = report_html.page(j)
    assert "not injected" in html and 'class="fault-window"' not in html


def test_abort_without_halt_gives_the_reason():
    j = halted_journal()
    j["halt"], j["reason"] = None, "Ctrl-C at t=12.0 s"
    assert "the run was aborted: Ctrl-C at t=12.0 s" in narrative.sentences(j)


def test_gate_is_inconclusive_with_reason_and_unmeasured_slos():
    said = narrative.sentences(gate_journal())
    gate = said[0]
    assert "no fault was injected" in gate and "join_time p95 3.1 s > 2 s" in gate
    assert "not measured: echo [before]" in said
    join = next(s for s in said if s.startswith("join_time"))
    assert "before any fault was injected" in join and "in dc-c only" in join


def test_passed_run_says_nothing_broke():
    assert narrative.sentences(passed_journal()) == ["every SLO held; nothing broke"]
    assert narrative.headline(passed_journal()) == "PASSED: every SLO held; nothing broke"


@pytest.mark.parametrize("sli, unit, v, text", [
    ("audio_delivered", "", 0.995, "99.5 %"), ("mouth_to_ear", "s", 0.4, "400 ms"),
    ("mouth_to_ear", "s", 1.25, "1.25 s"), ("join_time", "s", 4.8, "4.8 s"), ("echo", "dB", -25.0, "-25 dB"),
    ("mos", "", 3.5, "3.5"), ("freeze", "", 0.0123, "1.23 %"), ("join_time", "s", None, "n/a"),
])
def test_values_are_written_in_their_unit(sli, unit, v, text):
    assert fmt.value(sli, unit, v) == text


def test_fault_at_prefers_the_active_fault_then_the_last_started():
    j = sweep_journal()
    assert narrative.fault_at(j, 30.0).id == "packet_drop-2"
    assert narrative.fault_at(j, 60.0).id == "packet_drop-3"
    assert narrative.fault_at(j, 2.0) is None


# -- report.html -------------------------------------------------------------------------------
def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg class=\"sli-chart\".*?</svg>", html, re.S)]


@pytest.mark.parametrize("kind", sorted(ALL))
def test_html_is_self_contained_with_a_chart_per_series_and_every_fault_shaded(kind, tmp_path):
    j = ALL[kind]()
    paths = report.render(j, tmp_path)
    html = paths["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*https?://", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.I)
    svgs = _svgs(html)
    assert [s.get("data-sli") for s in svgs] == list(j["series"])
    for svg in svgs:
        windows = svg.findall(".//rect[@class='fault-window']")
        assert [w.get("data-fault") for w in windows] == [f["label"] for f in j["faults"]]
        assert svg.find(".//line[@class='threshold']").get("stroke-dasharray")
    for s in narrative.sentences(j):
        assert escape(s) in html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "report.html"]  # no temp files left


def test_chart_lines_break_at_nulls_and_open_faults_shade_to_the_end():
    canary = {s.get("data-sli"): s for s in _svgs(report_html.page(canary_journal()))}
    overall = canary["join_time"].find(".//path[@class='overall-line']").get("d")
    assert overall.count("M") == 2  # one null at t=30 s breaks it in two
    assert len(canary["join_time"].findall(".//path")) >= 4  # overall + three DCs (+ breach markers)
    assert canary["join_time"].find(".//g[@class='breach']") is not None
    (svg,) = _svgs(report_html.page(halted_journal()))
    assert "halted t=18.5 s" in "".join(svg.find(".//g[@class='halt']").itertext())
    (rect,) = svg.findall(".//rect[@class='fault-window']")
    right = charts.W - charts.RIGHT
    assert abs(float(rect.get("x")) + float(rect.get("width")) - right) < 0.5


def test_html_shows_tables_target_and_reproduce_line():
    html = report_html.page(sweep_journal())
    assert 'class="breaking-point"' in html and 'class="first-broken-step"' in html
    assert html.count('class="first-broken ') == 1
    assert "600,000" in html and "fragile" not in html and "resilient" in html
    assert "pytest experiments/test_canaries.py::test_packet_drop_edge_b_sweep" in html
    assert "edge-b (dc-b)" in html  # target services with their DC
    assert "failed joins are drawn at the join timeout (5 s)" in report_html.page(passed_journal())
    halted = report_html.page(halted_journal())
    assert 'class="halt"' in halted and "NO: toxiproxy did not answer within 5 s" in halted


def test_html_escapes_everything_from_the_journal():
    j = canary_journal()
    j["experiment"]["name"] = "<script>alert(1)</script>"
    j["experiment"]["title"] = "a & b <b>"
    j["faults"][0]["label"] = '"><img src=x onerror=alert(1)>'
    j["events"][0]["message"] = "<iframe src=javascript:alert(1)>"
    html = report_html.page(j)
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a &amp; b &lt;b&gt;" in html
    for svg in _svgs(html):  # still well-formed, the label intact once unescaped
        assert svg.find(".//rect[@class='fault-window']").get("data-fault") == j["faults"][0]["label"]


def test_a_journal_with_only_the_stable_fields_still_renders(tmp_path):
    j = {k: canary_journal()[k] for k in report.STABLE_FIELDS}
    paths = report.render(j, tmp_path / "new" / "dir")
    assert "join_time" in paths["html"].read_text()
    assert ET.parse(paths["junit"]).getroot().get("failures") == "2"


# -- junit.xml -------------------------------------------------------------------------------
def _suite(j) -> ET.Element:
    root = ET.fromstring(junit.to_xml(j).encode())
    (suite,) = root.findall("testsuite")
    return suite


def _counts(suite: ET.Element) -> tuple[str, ...]:
    return tuple(suite.get(k) for k in ("tests", "failures", "errors", "skipped"))


def test_junit_failures_name_slo_value_threshold_and_time():
    suite = _suite(canary_journal())
    assert suite.get("name") == "dc_loss_dc_a_canary"
    assert _counts(suite) == ("6", "2", "0", "0")
    names = [c.get("name") for c in suite.findall("testcase")]
    assert "join_time [during]" in names and not any(n.startswith("mouth_to_ear") for n in names)  # observed only
    fail = next(c for c in suite.findall("testcase") if c.get("name") == "join_time [during]").find("failure")
    assert "5 s" in fail.get("message") and "2 s" in fail.get("message") and "t=13 s" in fail.get("message")
    assert "because redis lives in dc-a" in fail.text and "reproduce: pytest" in fail.text
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["verdict"] == "failed" and props["runtime"] == "local" and props["profile"] == "fragile"
    assert props["run_id"].endswith("-3f2a") and "600,000" in props["scale_factor"]
    assert props["slo.join_time.during.verdict"] == "failed" and props["slo.join_time.during.value"] == "5.0"
    assert props["slo.mouth_to_ear.during.verdict"] == "passed"


def test_junit_aborted_run_is_an_error_and_inconclusive_is_skipped():
    suite = _suite(halted_journal())
    assert _counts(suite) == ("3", "1", "1", "1")
    err = suite.find("testcase/error")
    assert err.get("message").startswith("halted: join_time")
    assert _suite(gate_journal()).get("skipped") == "1"
    assert _suite(passed_journal()).get("failures") == "0"


def test_junit_survives_control_characters():
    j = gate_journal()
    j["reason"] = "bad byte \x00 \x1b[31m here"
    assert _suite(j).find("properties/property[@name='reason']").get("value").startswith("bad byte")


def test_one_junit_encoding_writes_every_junit_xml():
    """Experiments (pytest), `chaos report`, game days, readiness and explore runs all write
    junit.xml through report.render: no other module encodes JUnit."""
    root = Path(junit.__file__).parents[1]
    encoders = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
                if re.search(r"<testsuite|\"testsuites?\"|'testsuites?'", p.read_text())]
    assert encoders == ["report/junit.py"]
    writers = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
               if '"junit.xml"' in p.read_text()]
    assert writers == ["report/__init__.py"]


# -- terminal ----------------------------------------------------------------------------------
def test_terminal_summary_is_short_and_says_where_it_broke(tmp_path):
    from rich.console import Console
    console = Console(record=True, width=100)
    report.summary(canary_journal(), console, report_path=tmp_path / "report.html")
    text = console.export_text()
    assert text.startswith("FAILED dc_loss_dc_a_canary (local runtime, fragile profile")
    assert "join_time" in text and "during" in text and "p95 <= 2 s" in text and "failed" in text
    assert "dc_loss(dc-a)" in text and "redis lives in dc-a" in text
    assert str(tmp_path / "report.html") in text
    assert len(text.splitlines()) <= 25


def test_terminal_summary_collapses_many_passed_rows():
    from rich.console import Console
    j = passed_journal()
    j["slos"] = j["slos"] * 6
    console = Console(record=True, width=100)
    report.summary(j, console)
    text = console.export_text()
    assert "8 more passed" in text and "every SLO held; nothing broke" in text
    assert len(text.splitlines()) <= 25


# -- load --------------------------------------------------------------------------------------
def test_load_round_trips_and_accepts_the_run_directory(tmp_path):
    (tmp_path / "journal.json").write_text(json.dumps(canary_journal()))
    assert report.load(tmp_path / "journal.json").dump() == canary_journal()
    assert report.load(tmp_path).verdict == "failed"


@pytest.mark.parametrize("content, expect", [
    (None, "does not exist"),
    ("{not json", "is not JSON"),
    ("[1, 2]", "holds a JSON list"),
    (json.dumps({k: v for k, v in canary_journal().items() if k != "verdict"}), "missing field verdict"),
    (json.dumps({**canary_journal(), "slos": {}}), "field slos"),
])
def test_load_refuses_what_is_not_a_journal(tmp_path, content, expect):
    path = tmp_path / "journal.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as e:
        report.load(path)
    assert expect in str(e.value) and "reports/<run-id>/" in str(e.value)


# -- chaos report ------------------------------------------------------------------------------
def test_cli_report_renders_next_to_the_journal_and_into_out(tmp_path, capsys):
    run = tmp_path / "reports" / "run-1"
    run.mkdir(parents=True)
    (run / "journal.json").write_text(json.dumps(canary_journal()))
    assert main(["report", str(run / "journal.json")]) == 0
    assert (run / "report.html").stat().st_size > 0 and (run / "junit.xml").stat().st_size > 0
    out = capsys.readouterr().out
    assert "FAILED" in out and str(run / "report.html") in out and "redis lives in dc-a" in out
    assert main(["report", str(run / "journal.json"), "--out", str(tmp_path / "elsewhere")]) == 0
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == ["junit.xml", "report.html"]


def test_cli_report_bad_journal_exits_non_zero_and_writes_nothing(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "journal.json"
    bad.write_text('{"verdict": "failed"}')
    assert main(["report", str(bad)]) == 2
    assert "not a chaos journal: missing field experiment" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.json"]


def test_render_does_not_touch_the_journal(tmp_path):
    j = canary_journal()
    before = copy.deepcopy(j)
    report.render(j, tmp_path)
    assert j == before


def _field_paths(o, pre=()):
    if isinstance(o, dict):
        for k, v in o.items():
            yield pre + (k,)
            yield from _field_paths(v, pre + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o[:2]):
            if isinstance(v, dict):  # entries, not the points of a series
                yield from _field_paths(v, pre + (i,))


@pytest.mark.parametrize("kind", ["canary", "halted", "sweep"])
def test_any_field_null_or_missing_still_renders_everything(kind):
    """A journal from a run that died half-way is still reported: no field is trusted to be there."""
    from rich.console import Console
    base, tried = ALL[kind](), 0
    for path in _field_paths(base):
        for drop in (False, True):
            j = copy.deepcopy(base)
            parent = j
            for k in path[:-1]:
                parent = parent[k]
            if drop and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = None
            assert report_html.page(j).endswith("</html>")
            ET.fromstring(junit.to_xml(j).encode())
            assert narrative.sentences(j)
            if path[0] in ("experiment", "target", "verdict", "duration_s") or path[:2] == ("slos", 0):
                report.summary(j, Console(file=io.StringIO(), width=100))
            tried += 1
    assert tried > 100


def test_a_breach_after_its_fault_ended_is_timed_from_the_end():
    from chaos.report.narrative import breach_sentence
    from chaos.report.schema import typed
    j = canary_journal()
    j["faults"][0]["ended_s"] = 11.0        # the fault ran 8..11 s; join_time broke at 13 s
    j = typed(j)
    slo = next(s for s in j.slos if s.name == "join_time" and s.phase == "during")
    text = breach_sentence(j, slo)
    assert "2 s after dc_loss(dc-a) ended" in text and "started" not in text, text


def test_the_session_table_has_a_line_per_run_from_its_typed_journal(tmp_path):
    from chaos.report.runs import runs_table
    from chaos.report.schema import typed
    runs = [("t::canary", typed(canary_journal()), {"html": tmp_path / "a" / "report.html"}),
            ("t::passed", typed(passed_journal()), {"journal.json": tmp_path / "b" / "journal.json"})]
    text = runs_table(runs, width=200)
    canary, passed = (next(line for line in text.splitlines() if name in line)
                      for name in ("dc_loss_dc_a_canary", "latency_edge_b"))
    assert "failed" in canary and "join_time [during] failed" in canary and "report.html" in canary
    assert "passed" in passed and "every required SLO held" in passed and "journal.json" in passed


def test_reports_read_the_journal_by_its_attributes_not_by_keys():
    """Reports read the typed journal: no field looked up by name (``j["slos"]``,
    ``s.get("verdict")``) outside schema.py, which checks the decoded document."""
    import ast
    own = {"counts", "files", "paths", "env"}   # the report's own dicts (env: OTEL_* variables), not journal parts
    found = []
    for path in sorted(Path(junit.__file__).parent.glob("*.py")):
        if path.name == "schema.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                    and isinstance(node.slice.value, str):
                obj = node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "get" and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                obj = node.func.value
            else:
                continue
            if not (isinstance(obj, ast.Name) and obj.id in own):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_the_page_shows_where_it_broke_then_the_charts_then_required_verdicts_first():
    j = canary_journal()
    j["slos"].append(_slo("echo", "during", "inconclusive", None, -25.0, "dB", "<=", "max", "max <= -25 dB",
                          note="no thick listener decoded the audio"))
    j["slos"].append(_slo("mos", "during", "inconclusive", None, 3.5, "", ">=", "min", "min >= 3.5",
                          note="no thick listener decoded the audio"))
    page = report_html.page(j)
    where, chart, verdicts, run = (page.index(x) for x in (
        "Where it broke", 'class="sli-chart"', "<h2>Verdicts", "<h2>Run"))
    assert where < chart < verdicts < run
    table = page[verdicts:page.index("</table>", verdicts)]
    rows = table.split("<tr>")[2:]
    assert "failed" in rows[0] and "failed" in rows[1] and all("passed" in r for r in rows[2:])
    assert "mouth_to_ear" not in table                       # observed only: folded below
    assert '<details class="observed">' in page and "1 observed-only" in page
    # what measured nothing: one line per reason, said inconclusive, not a row each
    assert "echo [during], mos [during]: no thick listener decoded the audio" in page
    assert "Not measured (2 inconclusive, not passed)" in page


def test_chart_labels_take_free_rows_and_turn_left_at_the_right_edge():
    from chaos.report.charts import Labels
    lab = Labels(0, 300)
    a = lab.place("breach t=13 s", 100, [10, 22, 34])
    b = lab.place("breach t=15 s", 110, [10, 22, 34])
    c = lab.place("breach t=40 s", 290, [10, 22, 34], flip_by=16)
    assert a == (100, 10, "start") and b == (110, 22, "start")
    assert c == (274, 10, "end")
    assert not lab.taken(lab.box("x", 400, 100, 10, "start"))
