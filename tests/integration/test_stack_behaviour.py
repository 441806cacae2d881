"""What the reference stack must do, in both runtimes, checked through the framework's probes:
audio in order in every DC, a full edge refuses with a retry hint, the standby origin takes
over when the primary dies (resilient profile)."""

from __future__ import annotations

import asyncio
import os
import json
import time
import urllib.request

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chaos.targets import stack
from chaos.core.errors import StackAlreadyUp
from chaos.core.model import Verdict
from chaos.adapters.space.joinapi import create_space, join
from chaos.session.probe import run_probe
from chaos.targets.state import StackState
from space.topology import DCS

from .conftest import bring_up, kill_service

pytestmark = pytest.mark.timeout(300)
BASE = {"local": int(os.environ.get("CHAOS_TEST_STACK_BASE_PORT", 21000)), "docker": 17000}


@pytest.fixture(scope="module", params=[pytest.param("local", marks=pytest.mark.local),
                                        pytest.param("docker", marks=pytest.mark.docker)])
def resilient(request, chaos_home):
    runtime = request.param
    if runtime == "docker":
        from chaos.targets.docker import has_labelled_containers
        from chaos.targets.images import docker_client
        try:
            docker_client(timeout=3).close()
        except Exception as e:  # noqa: BLE001 - any reason the engine is not there
            pytest.skip(f"no docker engine: {e}")
        if has_labelled_containers():
            pytest.skip("a docker space stack is already running on this engine")
    state = bring_up(runtime, "resilient", BASE[runtime])
    yield state
    stack.down()


def test_listeners_in_every_dc_hear_audio_in_order(resilient):
    result = asyncio.run(run_probe(resilient.topology, listeners=9, seconds=3))
    assert result.listeners_joined == 9
    for dc in DCS:
        recs = [r for r in result.records if r.home_dc == dc]
        assert recs and all(r.dc == dc for r in recs), "joins stay in a healthy home DC"
        for r in recs:
            assert r.out_of_order == 0, "frames arrive in order, without duplicates"
            assert r.frames_heard >= 0.99 * (result.produced[-1][0] - r.first_seq + 1)
    slos = {s.name: s for s in result.slos}
    assert slos["join_time"].verdict is Verdict.PASSED and slos["join_time"].value < 2.0
    assert slos["audio_delivered"].value >= 0.99
    # capture times are the speaker's: mouth-to-ear is small and positive on one machine
    assert 0 < slos["mouth_to_ear"].value < 0.4


def test_status_reports_every_service_healthy(resilient):
    rows = stack.status()
    assert {r.name for r in rows} == set(resilient.topology.services)
    assert all(r.healthy for r in rows), [r for r in rows if not r.healthy]
    assert {r.dc for r in rows if r.kind == "edge"} == set(DCS)


def test_a_second_up_is_refused_and_leaves_the_first_alone(resilient):
    with pytest.raises(StackAlreadyUp, match="chaos stack down"):
        stack.up(resilient.runtime, "resilient", BASE[resilient.runtime])
    assert StackState.load().stack_id == resilient.stack_id
    assert all(r.healthy for r in stack.status())


async def _refused_by_full_edge(topo) -> InvalidStatus:
    edge = topo.link("listener", "edge-a").connect
    with urllib.request.urlopen(f"http://{edge}/admin/capacity?listeners=0", timeout=2) as r:
        assert json.loads(r.read())["capacity"] == 0
    try:
        async with aiohttp.ClientSession() as s:
            gw = topo.services["gateway-a"].public
            space = await create_space(s, [gw], "full-edge-test")
            token = (await join(s, gw, space, "listener", 3.0)).body["token"]
        with pytest.raises(InvalidStatus) as exc:
            async with connect(f"ws://{edge}/listen?space={space}&token={token}", open_timeout=3):
                pass
        return exc.value
    finally:
        with urllib.request.urlopen(f"http://{edge}/admin/capacity?listeners=5000", timeout=2):
            pass


def test_a_full_edge_refuses_with_a_retry_hint(resilient):
    refusal = asyncio.run(_refused_by_full_edge(resilient.topology))
    response = refusal.response
    assert response.status_code == 503
    assert float(response.headers["Retry-After"]) > 0
    body = json.loads(response.body)
    assert body["error"] == "edge_full" and body["retry_after_s"] > 0 and "edge-a" in json.dumps(body)


def _kill(state, name: str) -> None:
    if state.runtime == "local":
        kill_service(state, name)
        return
    from chaos.targets.images import docker_client
    client = docker_client()
    try:
        [c] = client.containers.list(filters={"label": ["chaos.stack=space", f"chaos.service={name}"]})
        c.kill()
    finally:
        client.close()


def test_the_standby_origin_takes_over_when_the_primary_dies(resilient):
    """Kill origin-a mid-run: origin-b promotes itself, speaker and edges reconnect."""
    topo = resilient.topology
    killed_at_ns: list[int] = []

    async def scenario():
        probe = asyncio.create_task(run_probe(topo, listeners=6, seconds=14))
        await asyncio.sleep(4)
        killed_at_ns.append(time.time_ns())
        await asyncio.to_thread(_kill, resilient, "origin-a")
        return await probe

    result = asyncio.run(scenario())
    kill_ns = killed_at_ns[0]
    capture = dict(result.produced)
    assert result.listeners_joined == 6
    last_capture_s = (capture[result.produced[-1][0]] - kill_ns) / 1e9
    kill_s = (kill_ns - result.t0_ns) / 1e9          # the listeners count frames per second
    end_s = kill_s + last_capture_s
    for r in result.records:
        after = r.rx.heard_between(kill_s + 1, end_s + 1)
        assert after, f"listener {r.index} ({r.dc}) heard nothing after origin-a died"
        # the last 3 s of the run are heard: the takeover is complete, not a trickle
        heard_late = r.rx.heard_between(end_s - 3, end_s + 1)
        assert heard_late > 0.9 * 3 * 50
    origin_b = next(r for r in stack.status() if r.name == "origin-b")
    assert origin_b.healthy
    if resilient.runtime == "local":  # the docker status shows the container, not the role
        assert "role=active" in origin_b.detail
