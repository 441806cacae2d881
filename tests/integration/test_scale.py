"""Scale-out against the local stack: a join storm split over shards on the local engine and
on a single-node Docker Swarm (shards as the tasks of one service, host networking), with
one set of results: the rate delivered, every join counted once, merged percentiles equal
to one histogram of all joins, a halt that stops every shard within 1 s, a killed shard
reported with the share of the audience it carried.

The swarm tests make this Docker engine a single-node swarm for the module and always
leave it; they are skipped when the engine is already in a swarm (someone else's)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

from chaos.targets import stack
from chaos.load import ArrivalSchedule, StormOptions
from chaos.scale import JoinObjective, run_scaled

from .conftest import bring_up
from .test_load_storm import with_speaker

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]
BASE = int(os.environ.get("CHAOS_TEST_SCALE_BASE_PORT", "31000"))


@pytest.fixture(scope="module")
def resilient(chaos_home):
    state = bring_up("local", "resilient", BASE)
    yield state
    stack.down()


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    """A single-node swarm made here, always left."""
    if shutil.which("docker") is None or _docker("info").returncode != 0:
        pytest.skip("no Docker engine")
    if _docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() != "inactive":
        pytest.skip("this Docker engine is already in a swarm that is not ours")
    init = _docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    assert init.returncode == 0, init.stderr
    try:
        yield {}          # the shards' image, built from these sources (chaos.scale.image)
    finally:
        left = _docker("swarm", "leave", "--force")
        assert left.returncode == 0, left.stderr


def storm(topo, schedule, shards, engine, engine_options=None, objective=None, during=None,
          hold_s=0.5):
    return asyncio.run(with_speaker(topo, f"scale-{engine}", lambda space, spk: run_scaled(
        topo, space, spk, schedule, StormOptions(hold_s=hold_s), shards=shards, engine=engine,
        engine_options=engine_options, objective=objective, during=during)))


def assert_one_set_of_results(r, schedule, shards):
    arrivals = len(schedule.offsets())
    assert r.shards == shards and r.arrivals == arrivals
    sizes = [s["arrivals"] for s in r.per_shard]
    assert sum(sizes) == arrivals and max(sizes) - min(sizes) <= 1
    assert r.fired == arrivals and sum(s["fired"] for s in r.per_shard) == arrivals
    assert r.joined + r.failed == arrivals and r.accounted
    assert len(r.samples) == arrivals                  # each join once, from its own shard
    assert r.joined >= 0.99 * arrivals, r.describe()
    whole = r.histogram_of_samples()
    for q in (0.5, 0.95, 0.99):
        assert r.merged.quantile(q) == whole.quantile(q)
    assert all(s["clock_offset_ms"] is not None and abs(s["clock_offset_ms"]) < 50
               for s in r.per_shard)


# -- the local engine -------------------------------------------------------------------------------

def test_local_shards_give_one_set_of_results(resilient):
    schedule = ArrivalSchedule(100, 4, process="even", seed=1)
    r = storm(resilient.topology, schedule, 3, "local")
    assert_one_set_of_results(r, schedule, 3)
    assert r.engine == "local" and not r.dead and r.halt is None


def test_a_killed_local_shard_is_reported_with_its_share(resilient):
    schedule = ArrivalSchedule(80, 6, process="even", seed=2)

    async def kill_one(coord, engine):
        while coord.t0_wall is None:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0 + 2.5)   # T0 is a second after the start messages
        engine.kill(1)

    r = storm(resilient.topology, schedule, 4, "local", during=kill_one)
    assert [d["index"] for d in r.dead] == [1], r.describe()
    d = r.dead[0]
    assert d["share"] == pytest.approx(d["arrivals"] / r.arrivals) and 0.24 < d["share"] < 0.26
    assert 0 < d["lost"] < d["arrivals"]
    assert "shard 1 died" in r.describe() and f"{d['share']:.1%} of the audience" in r.describe()
    assert r.accounted                     # the survivors' joins plus the dead shard's lost ones


# -- Docker Swarm ------------------------------------------------------------------------------------

def test_a_join_storm_over_4_swarm_shards_delivers_the_rate(resilient, swarm):
    schedule = ArrivalSchedule(200, 8, process="even", seed=3)
    r = storm(resilient.topology, schedule, 4, "swarm", swarm)
    assert_one_set_of_results(r, schedule, 4)
    assert r.achieved_rate_per_s == pytest.approx(schedule.mean_rate_per_s, rel=0.05), r.describe()
    assert r.rate_requested_per_s == pytest.approx(200, rel=0.01)
    names = {s["host"] for s in r.per_shard}     # swarm task names: four containers
    assert len(names) == 4 and all(n.startswith("chaos-shards-") for n in names), names
    print(r.describe())


def test_a_breach_halts_every_swarm_shard_within_a_second(resilient, swarm):
    schedule = ArrivalSchedule(100, 20, process="even", seed=4)
    # no join is that fast: the objective breaks as soon as 50 joins are in
    objective = JoinObjective(threshold_s=1e-6, min_joins=50, window_s=5)
    r = storm(resilient.topology, schedule, 4, "swarm", swarm, objective=objective)
    assert r.halt is not None and r.objective["verdict"] == "failed", r.describe()
    assert r.halt["shards_stopped"] == 4
    assert r.halt["stopped_within_s"] < 1.0, r.halt
    assert r.fired < r.scheduled_arrivals / 2     # stopped after a few seconds of twenty
    assert r.arrivals == r.fired and r.joined + r.failed == r.fired
    print(r.describe())


def test_a_killed_swarm_shard_is_reported_with_its_share(resilient, swarm):
    schedule = ArrivalSchedule(100, 8, process="even", seed=5)

    async def kill_one(coord, engine):
        while coord.t0_wall is None:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0 + 3.0)
        await asyncio.to_thread(engine.kill, 2)

    r = storm(resilient.topology, schedule, 4, "swarm", swarm, during=kill_one)
    assert [d["index"] for d in r.dead] == [2], r.describe()
    d = r.dead[0]
    assert 0.24 < d["share"] < 0.26 and 0 < d["lost"] < d["arrivals"]
    assert r.accounted
    print(r.describe())


# -- Kubernetes: the written Job's contract, played by local processes ----------------------------

def test_the_k8s_job_written_drives_shards_that_take_their_index_from_kubernetes(
        resilient, tmp_path):
    """No cluster here: the pods are played by processes given exactly the Job's container
    command and environment, plus the JOB_COMPLETION_INDEX that Kubernetes sets."""
    import subprocess
    import sys

    import yaml

    from chaos.scale import ScaleOut
    schedule = ArrivalSchedule(60, 4, process="even", seed=6)
    sink = f"127.0.0.1:{BASE + 900}"
    scale = ScaleOut("k8s", 3, sink=sink, manifests_dir=str(tmp_path))
    pods = []

    async def apply() -> None:
        """kubectl apply, as the user would once the file is written."""
        path = tmp_path / "chaos-shards.yaml"
        for _ in range(600):
            if path.exists():
                break
            await asyncio.sleep(0.1)
        job = yaml.safe_load(path.read_text())
        c = job["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in c["env"]}
        for i in range(job["spec"]["completions"]):
            pods.append(subprocess.Popen([sys.executable, *c["command"][1:]],
                                         env={**os.environ, **env, "JOB_COMPLETION_INDEX": str(i)}))

    async def both(space, spk):
        applying = asyncio.create_task(apply())
        try:
            return await run_scaled(resilient.topology, space, spk, schedule,
                                    StormOptions(hold_s=0.5), scale=scale)
        finally:
            await applying

    try:
        r = asyncio.run(with_speaker(resilient.topology, "scale-k8s", both))
    finally:
        for p in pods:
            p.wait(30)
    assert [p.returncode for p in pods] == [0, 0, 0]
    assert_one_set_of_results(r, schedule, 3)
    assert r.engine == "k8s"


def test_a_pool_runs_storms_one_after_another_and_keeps_a_dead_shard_dead(resilient):
    """The shards of a probe run: started once, two storms; a shard killed between them is
    reported by the second with the share it would have carried."""
    from chaos.scale import ScaleOut, shard_pool
    from chaos.scale.run import plan_for, run_plan
    topo, scale = resilient.topology, ScaleOut("local", 3)

    async def two(space, spk):
        async with shard_pool(scale, run_s=60) as pool:
            first = await run_plan(plan_for(topo, space, spk, ArrivalSchedule(
                60, 2, process="even", seed=9), StormOptions(hold_s=0.2)), scale, pool=pool)
            pool[1].kill(0)
            await asyncio.sleep(0.5)
            second = await run_plan(plan_for(topo, space, spk, ArrivalSchedule(
                60, 2, process="even", seed=10), StormOptions(hold_s=0.2)), scale, pool=pool)
            return first, second

    first, second = asyncio.run(with_speaker(topo, "scale-pool", two))
    assert not first.dead and first.joined + first.failed == first.arrivals == 120
    assert [d["index"] for d in second.dead] == [0] and second.dead[0]["at_s"] == 0.0
    assert second.dead[0]["share"] == pytest.approx(40 / 120)
    assert second.fired == 80 and second.accounted
