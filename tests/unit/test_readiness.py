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
    d = Demand.of(600_000, "50000/min")
    assert d.join_rate_per_s == pytest.approx(833.33, abs=0.01)
    assert d.to_dict() == {"audience": 600_000, "join_rate_per_s": 833.333, "join_rate_per_min": 50_000}


@pytest.mark.parametrize("kw, says", [
    ({"audience": 0, "join_rate": "10/s"}, "audience must be a whole number"),
    ({"audience": 10, "join_rate": "fast"}, "is not a rate"),
    ({"audience": 10, "join_rate": -5}, "join_rate must be more than 0"),
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


# -- the verdict follows the band (issue 22) ----------------------------------------------
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from chaos.core.exits import Exit  # noqa: E402
from chaos.readiness import verdict as vmod  # noqa: E402
from chaos.readiness.verdict import band_verdict, tier_result  # noqa: E402
from chaos.report import fmt  # noqa: E402


def _fleet(per_dc: int, key: str = "gateways") -> Fleet:
    return Fleet({dc: {key: per_dc, "edges": per_dc} for dc in ("dc-a", "dc-b", "dc-c")}, "test")


def _knee(units: int, cap: float, sd: float, tier: str = "join"):
    from chaos.readiness.measure import Point
    return Point(tier, units, (), f"run-{tier}-{units}", "passed", (), cap, sd, cap * 1.3, "knee",
                 f"{tier} x{units}")


@pytest.mark.parametrize("lo, hi, demand, want", [
    (140.0, 160.0, 100.0, Readiness.GO),             # the foot clears demand x 1.3
    (129.0, 400.0, 100.0, Readiness.GO_AT_RISK),     # the foot takes the demand, not the headroom
    (100.0, 101.0, 100.0, Readiness.GO_AT_RISK),
    (99.0, 500.0, 100.0, Readiness.INCONCLUSIVE),    # straddles: a high centre is not a GO
    (10.0, 99.9, 100.0, Readiness.NO_GO),            # even the top misses
    (0.0, float("inf"), 100.0, Readiness.INCONCLUSIVE),
])
def test_the_class_follows_the_band(lo, hi, demand, want):
    assert band_verdict(lo, hi, demand, 0.3) is want


def test_exit_codes_are_the_commands_contract():
    assert vmod.EXIT_CODES == {Readiness.GO: Exit.OK, Readiness.NO_GO: Exit.NO,
                               Readiness.GO_AT_RISK: Exit.AT_RISK, Readiness.INCONCLUSIVE: Exit.INCONCLUSIVE}


def test_a_centre_above_the_target_with_a_foot_below_it_is_at_risk_not_go():
    # measured at the fleet's own size: 300 +- 60 against 200/s wanting 30 %: 300 > 260, foot 240 < 260
    pts = [_knee(1, 100.0, 20.0), _knee(2, 200.0, 40.0), _knee(3, 300.0, 60.0)]
    t = tier_result("join", pts, 200.0, _fleet(1), 0.3, survive=False)
    assert t.headroom == pytest.approx(0.5) and t.verdict is Readiness.GO_AT_RISK
    assert (t.capacity_lo, t.capacity_hi) == (pytest.approx(240.0), pytest.approx(360.0))
    assert "300 ± 60 joins/s (band 240 to 360)" in t.why and "+20 % at the band's foot" in t.why


def test_a_band_that_straddles_the_demand_is_inconclusive_with_what_to_measure_next():
    pts = [_knee(1, 100.0, 20.0), _knee(2, 200.0, 40.0), _knee(3, 300.0, 60.0)]
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    v = decide(Demand.of(600, 270), fleet, pts + [p for p in _measured() if p.tier == "fanout"],
               0.3, survive=False)
    join = next(t for t in v.tiers if t.tier == "join")
    assert join.verdict is Readiness.INCONCLUSIVE and v.verdict is Readiness.INCONCLUSIVE
    assert v.exit_code == Exit.INCONCLUSIVE
    assert "the band straddles the demand" in join.why
    assert join.next_step.startswith("sweep 3 units again with finer steps near the knee")
    assert f"next: {join.next_step}" in v.sentence


def test_the_issues_three_point_fit_projected_to_120_units():
    """100/200/300 at 1/2/3 units, projected to 120: 12,000 +- 6,100,000 joins/s. Forty times
    past the data is no evidence of GO or GO-AT-RISK; a demand above what linear scaling from
    the measured points allows is still NO-GO."""
    pts = [_knee(1, 100.0, 5.0), _knee(2, 200.0, 5.0), _knee(3, 300.0, 5.0)]
    t = tier_result("join", pts, 1250.0, _fleet(40), 0.3, survive=False)
    assert t.verdict is Readiness.INCONCLUSIVE and t.times_beyond == pytest.approx(40.0)
    assert "40 times the largest fleet measured (3), beyond the 4x" in t.why
    assert t.next_step.startswith("measure at 30 units or more")
    assert t.capacity_hi == pytest.approx(306.0 / 3 * 120)      # linear from the top of 3 units' band (sd floored at 2 %)
    big = tier_result("join", pts, 20_000.0, _fleet(40), 0.3, survive=False)
    assert big.verdict is Readiness.NO_GO and "even the band's top does not reach it" in big.why
    v = decide(Demand.of(600, 20_000), _fleet(40), pts + [_knee(1, 1e5, 10.0, "fanout"),
                                                               _knee(2, 2e5, 10.0, "fanout")], 0.3, False)
    assert "can take at most 12,200 joins/s (the top of its band) against a demand of 20,000" in v.sentence
    assert "-0 %" not in v.sentence and "%" not in v.sentence.split("demand")[0][-3:]


@pytest.mark.parametrize("per_dc, verdict", [(1, Readiness.GO), (2, Readiness.INCONCLUSIVE)])
def test_one_fleet_size_is_assumed_linear_and_never_go_past_the_factor(per_dc, verdict):
    # 50 listeners +- 2 at one unit; fleet 3 units (3x: within 4x) or 6 units (6x: past it)
    pts = [_knee(1, 50.0, 2.0, "fanout")]
    t = tier_result("fanout", pts, 60.0, _fleet(per_dc), 0.3, survive=False, t=FANOUT)
    assert t.assumed_linear and t.verdict is verdict
    assert "assumed linear: one fleet size measured (1 unit)" in t.why
    assert "assumed linear" in t.beyond
    fleet = _fleet(per_dc)
    v = decide(Demand.of(60, 60), fleet, [_knee(u, 100.0 * u, 5.0) for u in (1, 2, 3)] + pts, 0.3, False)
    assert v.verdict is verdict
    if verdict is Readiness.GO:
        assert "The fanout tier's scaling is assumed linear: one fleet size was measured." in v.sentence
    else:
        assert any("fanout capacity" in r and "next: measure at 2 units or more" in r for r in v.reasons)


def test_n_minus_1_is_judged_by_its_own_band():
    pts = [_knee(1, 100.0, 2.0), _knee(2, 200.0, 4.0), _knee(3, 300.0, 6.0)]
    t = tier_result("join", pts, 230.0, _fleet(1), 0.3, survive=True)
    # whole: 300 +- 6 (foot 294 < 299: at risk); without dc-a: 200 +- 4, top 204 < 230: NO-GO
    assert t.units_n1 == 2 and t.verdict is Readiness.NO_GO and "without dc-a" in t.why


@st.composite
def _synthetic(draw):
    sizes = draw(st.lists(st.sampled_from([1, 2, 3, 4, 6]), min_size=1, max_size=4, unique=True))
    lam = draw(st.floats(10, 1000))
    sigma = draw(st.floats(0, 0.3))
    kappa = draw(st.floats(0, 0.01))
    rel = draw(st.lists(st.floats(0.01, 2.0), min_size=len(sizes), max_size=len(sizes)))
    pts = []
    for u, r in zip(sorted(sizes), rel):
        cap = float(usl.usl(u, lam, sigma, kappa))
        pts.append(_knee(u, cap, r * cap))
    per_dc = draw(st.integers(1, 8))
    demand = draw(st.floats(0.5, 3.0)) * lam
    headroom = draw(st.floats(0, 1))
    survive = draw(st.booleans())
    return pts, per_dc, demand, headroom, survive


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_synthetic())
def test_a_wide_band_can_never_be_go(case):
    pts, per_dc, demand, headroom, survive = case
    t = tier_result("join", pts, demand, _fleet(per_dc), headroom, survive)
    bands = [(t.capacity, t.capacity_sd)] + ([(t.capacity_n1, t.capacity_n1_sd)] if survive else [])
    wide = any(c is not None and c > 0 and sd / c > vmod.MAX_RELATIVE_BAND for c, sd in bands)
    if wide:
        assert t.verdict is not Readiness.GO, t.why
    if t.verdict is Readiness.GO:          # and GO is only ever the band's foot clearing the target
        assert t.capacity_lo >= demand * (1 + headroom)
        assert t.times_beyond <= vmod.MAX_EXTRAPOLATION or max(p.units for p in pts) >= per_dc * 3
        assert t.capacity_n1_lo is None or t.capacity_n1_lo >= demand * (1 + headroom)


# -- numbers as people read them ------------------------------------------------------------
@pytest.mark.parametrize("call, text", [
    (lambda: fmt.band(944.0, 900.0, "joins/s"), "944 ± 900 joins/s"),
    (lambda: fmt.band(11988.0, 12071152.0, "joins/s"), "12,000 ± 12,000,000 joins/s"),
    (lambda: fmt.band(944.0, 4.26e-14, "joins/s"), "944 ± 0 joins/s"),
    (lambda: fmt.share(93.4), "+9,340 %"),
    (lambda: fmt.share(-0.004), "-0.4 %"),
    (lambda: fmt.share(0.3, signed=False), "30 %"),
    (lambda: fmt.quantity(12_071_152, "listeners"), "12,100,000 listeners"),
    (lambda: fmt.sig(0.0042), "0.0042"),
    (lambda: usl.fit([1, 2, 3], [100.0, 200.0, 300.0], [5.0] * 3).describe("joins/s"),
     "lambda 100 ± 5 joins/s per unit"),
])
def test_numbers_are_rounded_with_their_units(call, text):
    assert call().startswith(text)


def test_no_exponent_in_any_words_readiness_writes(tmp_path):
    import re
    pts = [_knee(1, 100.0, 5.0), _knee(2, 200.0, 5.0), _knee(3, 300.0, 5.0),
           _knee(1, 90_000.0, 1e4, "fanout")]
    v = decide(Demand.of(5_000_000, 1250), _fleet(40), pts, 0.3, survive=False)
    words = []

    def walk(x):
        if isinstance(x, str):
            words.append(x)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
    walk(v.to_dict())
    assert words and not [w for w in words if re.search(r"\d[eE][+-]?\d", w)]
    assert "12,000 ± 6,100,000 joins/s" in v.tiers[0].capacity_text()
    doc = {"demand": Demand.of(5_000_000, 1250).to_dict(), "headroom_wanted": 0.3, "survive": "none",
           "scale": {"described": ""}, "measurements": [p.to_dict() for p in pts], "run_ids": [],
           "target": {}, **v.to_dict()}
    html = write(doc, tmp_path / "r")["readiness.html"].read_text()
    assert 'class="band"' in html and "next: measure at 30 units or more" in html
    assert not re.search(r">[^<]*\d[eE][+-]\d[^<]*<", html) and "ramp" not in html


# -- N-1 at the load the survivors must carry ------------------------------------------------
def test_the_dc_loss_run_loads_the_survivors_with_the_full_demand_share():
    from chaos.faults.kinds.client import MAX_RATE
    from chaos.readiness.assess import MIN_LOSS_RATE, loss_load
    machine = Fleet.of_target(build("local", "resilient", 26000))     # 1 gateway per DC
    fleet = _fleet(40)                                                  # 120 gateways
    d = Demand.of(600_000, "50000/min")                                 # 833/s
    rate, need = loss_load(d, fleet, machine, "dc-a", "gateways")
    # 80 surviving gateways carry 833/s: 10.4/s each; this machine's 2 survivors 20.8/s
    assert need == pytest.approx(833.333 / 80 * 2, rel=1e-3) and rate == pytest.approx(20.8)
    lopsided = Fleet({"dc-a": {"gateways": 80}, "dc-b": {"gateways": 20}, "dc-c": {"gateways": 20}})
    rate, need = loss_load(d, lopsided, machine, "dc-a", "gateways")
    assert need == pytest.approx(833.333 / 40 * 2, rel=1e-3)            # no half-capacity cut
    rate, need = loss_load(Demand.of(600, 100_000), machine, machine, "dc-a", "gateways",
                           Plan(max_rate_per_s=150.0))
    assert (rate, need) == (150.0, pytest.approx(100_000 * 2 / 2))      # the plan's cap bounds it
    rate, _ = loss_load(Demand.of(600, 100_000), machine, machine, "dc-a", "gateways")
    assert rate == MAX_RATE
    assert loss_load(Demand.of(60, 1), fleet, machine, "dc-a", "gateways")[0] == MIN_LOSS_RATE


def test_a_failover_measured_below_the_survivors_load_is_inconclusive():
    fleet = Fleet.of_target(build("local", "resilient", 26000))
    short = LossRun("dc-a", 15.0, "run-loss", "passed", "every required SLO held", {}, True,
                    required_per_s=20.0)
    v = decide(Demand.of(60, 20), fleet, _measured(), 0.3, survive=True, loss=short)
    assert v.verdict is Readiness.INCONCLUSIVE
    assert "at 15 joins/s of the 20 joins/s the survivors must carry" in v.sentence
    full = LossRun("dc-a", 20.0, "run-loss", "passed", "every required SLO held", {}, True, 20.0)
    assert decide(Demand.of(60, 20), fleet, _measured(), 0.3, survive=True, loss=full).verdict \
        is Readiness.GO
    assert full.to_dict()["required_per_s"] == 20.0


# -- --ramp and --session: refused, not taken and ignored ---------------------------------------
@pytest.mark.parametrize("flag", ["--ramp", "--session"])
def test_ramp_and_session_are_refused_with_the_reason(flag, capsys, tmp_path, monkeypatch):
    from chaos.cli import main
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    assert main(["readiness", "--audience", "600", "--join-rate", "10", flag, "10m"]) == 2
    err = capsys.readouterr().err
    assert f"{flag}: readiness does not use the event's {flag[2:]}" in err and "leave it out" in err


def test_a_fleet_files_ramp_is_refused_with_its_line(tmp_path):
    f = tmp_path / "fleet.yaml"
    f.write_text("event: {audience: 600, join_rate: 10/s, ramp: 10m}\nfleet:\n  dc-a: {gateways: 4}\n")
    with pytest.raises(ConfigError, match=r"fleet.yaml:1:\d+: event.ramp: readiness does not use the "
                                          r"event's ramp: .*leave it out"):
        load_fleet(f)
