"""Readiness without a stack: the demand and fleet, the USL fit, single points of failure
from the target, how a sweep's journal turns into a capacity point (generator validity
included), the verdict's four known answers as a pure function of measured points, and
the evidence files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chaos.adapters.space.reference import build
from chaos.core.errors import ConfigError
from chaos.readiness import Demand, Fleet, Readiness, decide, load_fleet, usl
from chaos.readiness import spof
from chaos.readiness.evidence import write
from chaos.readiness.measure import FANOUT, JOIN, LossRun, Plan, point_of, sub_target, sweep_steps


# -- the event and the fleet -------------------------------------------------------------
def test_demand_parses_the_event_at_its_real_size():
    d = Demand.of(600_000, "50000/min", "10m", "30m")
    assert d.join_rate_per_s == pytest.approx(833.33, abs=0.01)
    assert (d.ramp_s, d.session_s) == (600.0, 1800.0)
    assert d.to_dict()["join_rate_per_min"] == 50_000


@pytest.mark.parametrize("kw, says", [
    ({"audience": 0, "join_rate": "10/s"}, "audience must be a whole number"),
    ({"audience": 10, "join_rate": "fast"}, "is not a rate"),
    ({"audience": 10, "join_rate": 5, "ramp": "ten minutes"}, "ramp 'ten minutes' is not a duration"),
])
def test_bad_demand_says_what_to_write(kw, says):
    with pytest.raises(ConfigError, match=says):
        Demand.of(**kw)


def test_fleet_file_with_its_event(tmp_path):
    f = tmp_path / "fleet.yaml"
    f.write_text("event: {audience: 600000, join_rate: 50000/min}\n"
                 "fleet:\n  dc-a: {gateways: 40, edges: 600}\n  dc-b: {gateways: 40, edges: 600}\n"
                 "  dc-c: {gateways: 20, edges: 300}\n")
    fleet, event = load_fleet(f, build("local", "resilient", 26000))
    assert fleet.units("gateways") == 100 and fleet.units("edges", without_dc="dc-a") == 900
    assert fleet.largest_dc("gateways") == "dc-a"
    assert event == {"audience": 600000, "join_rate": "50000/min"}


def test_fleet_file_problems_name_the_line(tmp_path):
    f = tmp_path / "fleet.yaml"
    f.write_text("fleet:\n  dc-a: {gateways: 4}\n  dc-b: {edges: 2, routers: 3}\n")
    with pytest.raises(ConfigError, match=r"fleet.yaml:3:\d+: fleet.dc-b.routers: unknown tier: "
                                          r"target space-resilient's are .*edges, gateways"):
        load_fleet(f, build("local", "resilient", 26000))
    f.write_text("fleet:\n  dc-a: {gateways: -4}\n")
    with pytest.raises(ConfigError, match=r"fleet.yaml:2:\d+: fleet.dc-a.gateways: .*greater than or equal to 0"):
        load_fleet(f)
    f.write_text("fleet:\n  dc-a: {gateways: 4}\n  dc-x: {edges: 2}\n")
    with pytest.raises(ConfigError, match=r"fleet.yaml:3:\d+: fleet.dc-x: DC 'dc-x' is not one"):
        load_fleet(f, build("local", "resilient", 26000))


def test_the_targets_own_fleet():
    fleet = Fleet.of_target(build("local", "fragile", 26000))
    assert fleet.units("gateways") == 3 and fleet.units("edges") == 3
    assert fleet.units("gateways", without_dc="dc-b") == 2


# -- the USL fit -----------------------------------------------------------------------
def test_usl_fit_recovers_known_parameters():
    n = np.array([1, 2, 3, 4, 6, 8])
    x = usl.usl(n, 100.0, 0.08, 0.01)
    f = usl.fit(n.tolist(), x.tolist(), (0.01 * x).tolist())
    assert f.lam == pytest.approx(100.0, rel=0.02)
    assert f.sigma == pytest.approx(0.08, abs=0.01) and f.kappa == pytest.approx(0.01, abs=0.002)
    assert f.peak_units == pytest.approx(np.sqrt(0.92 / 0.01), rel=0.1)
    cap, sd = f.at(20)
    assert cap == pytest.approx(usl.usl(20, 100, 0.08, 0.01), rel=0.05) and sd > 0
    assert f.at(4) == (pytest.approx(x[3]), pytest.approx(0.02 * x[3]))   # measured (sd floored at 2 %)
    assert "beyond the data" in f.beyond(20) and f.beyond(8) == ""


def test_usl_fleet_needed_and_a_curve_that_peaks_below_the_demand():
    f = usl.fit([1, 2, 3], [100.0, 190.0, 270.0], [5.0, 5.0, 5.0])
    need = f.units_for(500.0)
    assert need is not None and f.at(need)[0] >= 500 and f.at(need - 1)[0] < 500
    peaked = usl.fit([1, 2, 3], [100.0, 120.0, 110.0], [2.0, 2.0, 2.0])
    assert peaked.units_for(1000.0) is None


def test_usl_needs_two_fleet_sizes():
    with pytest.raises(ConfigError, match="2 or more distinct fleet sizes"):
        usl.fit([2, 2], [10.0, 11.0], [1.0, 1.0])


# -- single points of failure ------------------------------------------------------------
def test_fragile_reference_has_redis_and_the_origin_in_dc_a_as_single_points():
    t = build("local", "fragile", 26000)
    found = {s.service: s for s in spof.find(t)}
    assert set(found) == {"redis-a", "origin-a"}
    assert found["redis-a"].dc == "dc-a" and found["redis-a"].needed_by == ("gateway-b", "gateway-c")
    assert "redis (redis-a) lives only in dc-a" in found["redis-a"].describe(t)
    assert spof.dc_to_lose(t, list(found.values())) == "dc-a"


def test_resilient_reference_has_none():
    t = build("local", "resilient", 26000)
    assert spof.find(t) == []
    assert spof.dc_to_lose(t, []) == "dc-a"     # where the primaries live


def test_sub_target_keeps_shared_services():
    t = sub_target(build("local", "resilient", 26000), ("dc-a",))
    assert t.dcs == ("dc-a",)
    assert {s.name for s in t.of_kind("gateway")} == {"gateway-a"}
    assert "redis-b" in t.services and "origin-b" in t.services


def test_sweep_steps_scale_with_units_and_obey_the_generators_cap():
    plan = Plan.quick()
    assert sweep_steps(JOIN, 2, plan) == (80.0, 160.0, 320.0, 640.0, 1280.0)
    capped = Plan(join_steps=(40, 80, 160), max_rate_per_s=100)
    assert sweep_steps(JOIN, 1, capped) == (40.0, 80.0, 100.0)


# -- a sweep's journal -> a capacity point -------------------------------------------------
def _journal(rows, storms, verdict="failed"):
    """A run's journal as the runner writes it: breaking_point steps and the storms."""
    return {"run_id": "run-1", "verdict": verdict, "reason": "",
            "breaking_point": {"steps": [
                {"index": i, "value": req, "slos": {"join_time": {"verdict": v, "value": val},
                                                    "audio_delivered": {"verdict": "passed", "value": 1.0},
                                                    "mouth_to_ear": {"verdict": "passed", "value": 0.05}}}
                for i, (req, v, val) in enumerate(rows)]},
            "storms": [{"started_ns": i, "rate_requested_per_s": req, "achieved_rate_per_s": got,
                        "arrivals": int(req * 4), "fired": int(req * 4), "scheduled_s": 4.0,
                        "lateness_p99_s": late, "peak_concurrent": int(got * 4), "errors": []}
                       for i, (req, got, late) in enumerate(storms)]}


def test_point_finds_the_knee_and_brackets_it():
    j = _journal([(40, "passed", 0.1), (80, "passed", 0.3), (160, "failed", 4.2)],
                 [(40, 39, 0.01), (80, 79, 0.02), (160, 158, 0.03)])
    p = point_of(j, JOIN, 1, ("dc-a",))
    assert (p.capacity, p.knee, p.limit) == (79, 158, "knee")
    assert p.capacity_sd == pytest.approx((158 - 79) / np.sqrt(12))
    assert "broke at 158 joins/s (join_time)" in p.words


def test_a_step_the_generator_did_not_deliver_is_inconclusive_never_a_pass():
    j = _journal([(40, "passed", 0.1), (80, "passed", 0.2), (160, "passed", 0.3)],
                 [(40, 39, 0.01), (80, 79, 0.02), (160, 90, 0.9)])
    p = point_of(j, JOIN, 1, ("dc-a",))
    assert [s.verdict for s in p.steps] == ["passed", "passed", "inconclusive"]
    assert "fired 90 joins/s of the 160 requested" in p.steps[2].why
    assert (p.capacity, p.knee, p.limit) == (79, None, "generator")
    late = point_of(_journal([(40, "failed", 9.0)], [(40, 39, 0.8)]), JOIN, 1, ("dc-a",))
    assert late.steps[0].verdict == "inconclusive" and "behind its schedule" in late.steps[0].why
    assert late.knee is None and late.capacity is None


# -- the verdict: the four known answers ----------------------------------------------------
def _pt(tier, units, cap, knee=None, limit="knee"):
    from chaos.readiness.measure import Point
    return Point(tier, units, (), f"run-{tier}-{units}", "passed", (), cap, 0.05 * (cap or 0), knee, limit,
                 f"{tier} x{units}")


def _measured(join=(150.0, 280.0, 400.0), fan=(900.0, 1750.0, 2600.0), limit="knee"):
    return ([_pt("join", u + 1, c, c * 1.3, limit) for u, c in enumerate(join)]
            + [_pt("fanout", u + 1, c, c * 1.3, limit) for u, c in enumerate(fan)])


def test_go_when_demand_is_well_inside_capacity():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    v = decide(Demand.of(600, "3000/min"), fleet, _measured(), 0.3, survive=False)
    assert v.verdict is Readiness.GO and v.exit_code == 0
    assert v.sentence.startswith("GO: the event fits")
    assert all(t.headroom > 0.3 for t in v.tiers)


def test_no_go_above_the_knee_with_negative_headroom_and_the_fleet_needed():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    v = decide(Demand.of(600, "50000/min"), fleet, _measured(), 0.3, survive=False)
    join = next(t for t in v.tiers if t.tier == "join")
    assert v.verdict is Readiness.NO_GO and v.exit_code == 1
    assert join.headroom < 0 and join.verdict is Readiness.NO_GO
    assert join.needed_units is None or join.needed_units > 3
    assert "NO-GO: the join tier" in v.sentence
    assert v.binding["tier"] == "join"


def test_no_go_names_the_fleet_that_would_do():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    linear = _measured(join=(100.0, 200.0, 300.0))
    v = decide(Demand.of(600, "30000/min"), fleet, linear, 0.3, survive=False)   # 500/s
    join = next(t for t in v.tiers if t.tier == "join")
    assert v.verdict is Readiness.NO_GO
    assert join.needed_units == 9 and join.needed_per_dc == 3      # 650/s at ~100/s per unit
    assert "about 9 units (3 per DC)" in v.sentence


def test_fragile_dc_loss_is_no_go_naming_redis_in_dc_a():
    t = build("local", "fragile", 26000)
    spofs = spof.find(t)
    loss = LossRun("dc-a", 20.0, "run-loss", "failed", "join_time p95 <= 5 s broke during the method",
                   {"join_time (during)": ["dc-b", "dc-c"]}, False)
    v = decide(Demand.of(300, "1200/min"), Fleet.of_target(t), _measured(), 0.3, survive=True,
               spofs=spofs, loss=loss, target=t)
    assert v.verdict is Readiness.NO_GO
    assert "redis (redis-a)" in v.sentence and "dc-a" in v.sentence
    assert any("single point of failure" in r and "redis (redis-a) lives only in dc-a" in r
               for r in v.reasons)


def test_generator_capped_below_the_demand_is_inconclusive():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    capped = _measured(join=(20.0, 20.0, 20.0), limit="generator")
    capped = [p if p.tier == "fanout" else _pt("join", p.units, 20.0, None, "generator") for p in capped]
    v = decide(Demand.of(600, "6000/min"), fleet, capped, 0.3, survive=False)     # 100/s
    assert v.verdict is Readiness.INCONCLUSIVE and v.exit_code == 4
    assert "the generator was the limit" in v.sentence


def test_at_risk_when_headroom_is_below_what_is_wanted():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    v = decide(Demand.of(600, f"{360 * 60}/min"), fleet, _measured(), 0.3, survive=False)
    assert v.verdict is Readiness.GO_AT_RISK and v.exit_code == 3


def test_survivable_needs_n_minus_1_headroom():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    ok = LossRun("dc-a", 20.0, "run-loss", "passed", "every required SLO held", {}, True)
    v = decide(Demand.of(600, f"{330 * 60}/min"), fleet, _measured(), 0.3, survive=True, loss=ok)
    join = next(t for t in v.tiers if t.tier == "join")
    assert join.units_n1 == 2 and join.headroom > 0 > join.headroom_n1
    assert v.verdict is Readiness.NO_GO and v.binding["dc"] == "without dc-a"


# -- evidence ------------------------------------------------------------------------
def test_evidence_files(tmp_path):
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    points = _measured()
    v = decide(Demand.of(600, "3000/min"), fleet, points, 0.3, survive=False)
    doc = {"demand": Demand.of(600, "3000/min").to_dict(), "headroom_wanted": 0.3, "survive": "none",
           "scale": {"described": "a scale"}, "measurements": [p.to_dict() for p in points],
           "run_ids": [p.run_id for p in points], "target": {"fingerprint": "abc"}, **v.to_dict()}
    files = write(doc, tmp_path / "r")
    back = json.loads(files["readiness.json"].read_text())
    assert back["verdict"] == "GO" and back["run_ids"][0] == "run-join-1"
    html = files["readiness.html"].read_text()
    assert "GO: the event fits" in html and 'class="rd usl"' in html and "headroom-bar" in html
    assert "<script" not in html


def test_a_tier_that_broke_at_its_first_step_is_no_go_when_even_linear_scaling_misses():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    points = [p for p in _measured() if p.tier == "join"] + [_pt("fanout", 1, None, 50.0)]
    v = decide(Demand.of(600, "3000/min"), fleet, points, 0.3, survive=False)
    fan = next(t for t in v.tiers if t.tier == "fanout")
    assert fan.verdict is Readiness.NO_GO and "broke at the sweep's first step" in fan.why
    small = decide(Demand.of(100, "3000/min"), fleet, points, 0.3, survive=False)
    assert next(t for t in small.tiers if t.tier == "fanout").verdict is Readiness.INCONCLUSIVE


def test_a_step_where_the_run_stopped_the_sweep_is_the_knee():
    j = _journal([(40, "passed", 0.1), (80, "passed", 1.9)], [(40, 39, 0.01), (80, 79, 0.02)])
    for i, row in enumerate(j["breaking_point"]["steps"]):
        row["label"] = f"join_storm(rate={row['value']:g})"
    j["events"] = [{"t_s": 9.0, "kind": "step",
                    "message": "sweep stopped: join_time broke at join_storm(rate=80); later steps not run"}]
    p = point_of(j, JOIN, 1, ("dc-a",))
    assert (p.capacity, p.knee, p.limit) == (39, 79, "knee")
    assert p.steps[1].slos["join_time"]["note"] == "broke in a window of the step"


# -- the command ------------------------------------------------------------------------
@pytest.mark.parametrize("argv, says", [
    (["readiness", "--join-rate", "50000/min"], "give the event's size"),
    (["readiness", "--audience", "600000", "--join-rate", "lots"], "is not a rate"),
    (["readiness", "--audience", "600000", "--join-rate", "833", "--budget", "soon"], "--budget 'soon'"),
    (["readiness", "--audience", "600000", "--join-rate", "833", "--fleet", "/nonexistent.yaml"],
     "no such file"),
])
def test_usage_errors_exit_2_before_the_stack_is_looked_at(argv, says, capsys, tmp_path, monkeypatch):
    from chaos.cli import main
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))      # no stack is up here
    assert main(argv) == 2
    assert says in capsys.readouterr().err


def test_without_a_stack_it_says_how_to_start_one(capsys, tmp_path, monkeypatch):
    from chaos.cli import main
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    assert main(["readiness", "--audience", "600000", "--join-rate", "50000/min"]) == 5   # no stack: NOT_READY
    assert "chaos stack up" in capsys.readouterr().err


def test_a_bad_headroom_is_usage(capsys, tmp_path, monkeypatch):
    from chaos.cli import main
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    assert main(["readiness", "--audience", "600", "--join-rate", "10", "--headroom", "-1"]) == 2
    assert "headroom must be a share from 0 to 10" in capsys.readouterr().err


def test_a_run_the_generator_could_not_finish_is_a_generator_limit():
    j = _journal([(40, "passed", 0.1)], [(40, 39, 0.01)], verdict="inconclusive")
    j["reason"] = ("could not inject join_storm(rate=80): FaultError: starting join_storm: ... the run's "
                   "clients did not answer within 8 s")
    p = point_of(j, JOIN, 2, ("dc-a", "dc-b"))
    assert (p.capacity, p.knee, p.limit) == (39, None, "generator")
    assert "the generator was the limit: could not inject join_storm" in p.words


def test_lower_bounds_stay_out_of_the_fit_when_two_knees_were_measured():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    points = [_pt("join", 1, 100.0, 130.0), _pt("join", 2, 180.0, 230.0),
              _pt("join", 3, 60.0, None, "generator")] + [p for p in _measured() if p.tier == "fanout"]
    v = decide(Demand.of(600, "3000/min"), fleet, points, 0.3, survive=False)
    join = next(t for t in v.tiers if t.tier == "join")
    assert join.fit.units == (1, 2) and not join.lower_bound
    assert "projected from 1-2 measured units to 3" in join.beyond


def test_at_a_measured_size_the_measurement_is_the_capacity():
    f = usl.fit([1, 2, 3], [40.0, 300.0, 120.0], [20.0, 150.0, 60.0])     # noisy, badly conditioned
    assert f.at(3) == (120.0, 60.0) and f.project(3)[0] != 120.0


def test_a_lower_bound_at_the_fleet_size_props_up_an_uncertain_projection():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    points = [_pt("join", 1, 143.0, 311.0), _pt("join", 2, 143.0, 626.0),
              _pt("join", 3, 230.0, None, "generator")] + [p for p in _measured() if p.tier == "fanout"]
    v = decide(Demand.of(60, "600/min"), fleet, points, 0.3, survive=False)
    join = next(t for t in v.tiers if t.tier == "join")
    assert join.capacity >= 230.0 and join.verdict is Readiness.GO


# -- a target that is not the reference stack: tiers from its paths ------------------------
ICECAST = Path(__file__).resolve().parents[2] / "fixtures/icecast/chaos-target.yaml"


def test_an_icecast_targets_tiers_are_its_relays():
    from chaos.readiness.measure import sub_target, tiers_for
    from chaos.targets.file import load as load_target
    t = load_target(ICECAST)
    tiers = tiers_for(t)
    assert (tiers["join"].fleet_key, tiers["fanout"].fleet_key) == ("relays", "relays")
    assert tiers["join"].slos == ("join_time",) and tiers["fanout"].hold_s > 0
    fleet = Fleet.of_target(t)
    assert fleet.units("relays") == 3 and fleet.units("origins") == 1
    assert fleet.units("relays", without_dc="dc-a") == 2
    sub = sub_target(t, ("dc-a",))
    assert sorted(sub.services) == ["origin", "relay-a"]
    assert tiers_for(build("local", "resilient", 26000))["join"].fleet_key == "gateways"


def test_an_icecast_fleet_file_gives_relays(tmp_path):
    from chaos.targets.file import load as load_target
    t = load_target(ICECAST)
    f = tmp_path / "fleet.yaml"
    f.write_text("fleet:\n  dc-a: {relays: 20, origins: 1}\n  dc-b: {relays: 20}\n")
    fleet, _ = load_fleet(f, t)
    assert fleet.units("relays") == 40 and fleet.largest_dc("relays") == "dc-a"
    f.write_text("fleet:\n  dc-a: {gateways: 20}\n")
    with pytest.raises(ConfigError, match=r"fleet.dc-a.gateways: unknown tier: target icecast's "
                                          r"are origins, relays"):
        load_fleet(f, t)
    f.write_text("fleet: {}\n")
    with pytest.raises(ConfigError, match=r"no units in any DC; give each DC its units of the "
                                          r"target's kinds in the plural"):
        load_fleet(f)
    f.write_text("fleet:\n  dc-a: {origins: 2}\n")
    with pytest.raises(ConfigError, match=r"no relays in any DC; give e.g. dc-a: \{relays: 40\}"):
        load_fleet(f, t)


def test_a_target_without_paths_is_refused_for_readiness_before_anything_runs():
    from dataclasses import replace as dc_replace

    from chaos.readiness.demand import tier_kinds
    from chaos.targets.file import load as load_target
    from chaos.core.target import Paths
    t = load_target(ICECAST)
    with pytest.raises(ConfigError, match=r"readiness needs target icecast's paths.join .* and "
                                          r"paths.audio"):
        tier_kinds(dc_replace(t, paths=Paths()))
    with pytest.raises(ConfigError, match="has no service of kind edge"):
        tier_kinds(dc_replace(t, paths=Paths(join=("relay",), audio=("edge",))))


def test_the_scale_names_the_targets_tiers():
    from chaos.readiness.assess import scale_of
    from chaos.targets.file import load as load_target
    t = load_target(ICECAST)
    machine = Fleet.of_target(t)
    fleet = Fleet({"dc-a": {"relays": 30}}, "f")
    s = scale_of(Demand.of(1000, 20), fleet, machine, [], t)
    assert s["relays"] == pytest.approx(0.1)
    assert "on 3 relays (0.1 of the fleet's)" in s["described"]
    ref = scale_of(Demand.of(1000, 20), Fleet.of_target(build("local", "resilient", 26000)),
                   Fleet.of_target(build("local", "resilient", 26000)), [],
                   build("local", "resilient", 26000))
    assert "on 3 gateways and 3 edges (1 and 1 of the fleet's)" in ref["described"]
