"""The space stack's services for real: redis-server, Sentinel, toxiproxy-server and the
gateway, edge and origin processes on loopback, with speakers and listeners as clients.

Each stack gets its own base port so that stacks never share a port; every process is
stopped by the fixture's finalizer, also when a test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from space import redisconf, topology, wire
from space.opus import Encoder
from space.wire import FRAME_SAMPLES, SAMPLE_RATE

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
TOXIPROXY = shutil.which("toxiproxy-server") or "/usr/local/bin/toxiproxy-server"

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(not (os.path.exists(REDIS) and os.path.exists(TOXIPROXY)),
                       reason="needs redis-server and toxiproxy-server"),
]

# One base port per stack; a stack uses base+80 .. base+530.
BASE_PORTS = {"shared": 27000, "origin_failover": 27600, "redis_failover": 28200, "fragile": 28800}
START_TIMEOUT_S = 20.0


def _port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.2):
            return True
    except OSError:
        return False


class Stack:
    """A whole topology as local processes."""

    def __init__(self, profile: str, base_port: int, workdir: Path) -> None:
        self.topo = topology.build("local", profile, base_port=base_port)
        self.dir = workdir
        self.procs: dict[str, subprocess.Popen] = {}
        self.topo_file = workdir / "topology.json"
        self.topo_file.write_text(self.topo.to_json())

    def svc(self, name: str) -> topology.Service:
        return self.topo.services[name]

    def _command(self, name: str) -> list[str]:
        svc = self.svc(name)
        if svc.kind == "toxiproxy":
            cfg = self.dir / "toxiproxy.json"
            cfg.write_text(json.dumps(topology.toxiproxy_config(self.topo)))
            host, port = svc.bind.rsplit(":", 1)
            return [TOXIPROXY, "-host", host, "-port", port, "-config", str(cfg)]
        if svc.kind in ("redis", "sentinel"):
            cfg = self.dir / f"{name}.conf"
            data = self.dir / name
            data.mkdir(exist_ok=True)
            cfg.write_text(redisconf.render(self.topo, name, str(data)))
            return [REDIS, str(cfg)] + (["--sentinel"] if svc.kind == "sentinel" else [])
        return [sys.executable, "-m", f"space.{svc.kind}", "--name", name,
                "--topology", str(self.topo_file)]

    def start(self, *names: str) -> None:
        for name in names:
            with open(self.dir / f"{name}.log", "ab") as log:  # the child keeps its own copy
                self.procs[name] = subprocess.Popen(self._command(name), stdout=log, stderr=log,
                                                    stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        for name in names:
            while not _port_open(self.svc(name).address):
                if self.procs[name].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start; its log:\n{self.log(name)}")
                time.sleep(0.05)

    def start_all(self) -> None:
        kinds = ("toxiproxy", "redis", "sentinel")
        self.start(*[s.name for k in kinds for s in self.topo.of_kind(k)])
        self.start("origin-a")  # before the standby, which would otherwise wait out its grace
        self.start(*[s.name for s in self.topo.origins()[1:]])
        self.start(*[s.name for k in ("edge", "gateway") for s in self.topo.of_kind(k)])
        if self.topo.settings.redis_failover:
            self.wait_replica_known()

    def _redis(self, name: str) -> redis.Redis:
        host, port = self.svc(name).address.rsplit(":", 1)
        return redis.Redis(host=host, port=int(port), socket_timeout=1, decode_responses=True)

    def wait_replica_known(self) -> None:
        """A failover needs a synced replica that every sentinel has discovered (from the
        primary's INFO, every 10 s): before that, killing the primary loses the state."""
        deadline = time.monotonic() + 30
        sentinels = [self._redis(s.name) for s in self.topo.of_kind("sentinel")]
        while time.monotonic() < deadline:
            synced = self._redis("redis-b").info("replication").get("master_link_status") == "up"
            if synced and all(s.sentinel_slaves(redisconf.MASTER_NAME) for s in sentinels):
                return
            time.sleep(0.2)
        raise RuntimeError("redis-b did not sync, or the sentinels did not discover it, in 30 s")

    def replicate(self) -> None:
        """Wait until the replica has every write made so far (replication is asynchronous)."""
        assert self._redis("redis-a").wait(1, 2000) == 1

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(5)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def gateway_url(self, name: str) -> str:
        return f"http://{self.svc(name).public}"


@pytest.fixture(scope="module")
def stack_factory(tmp_path_factory):
    stacks: list[Stack] = []

    def make(profile: str, key: str) -> Stack:
        base = BASE_PORTS[key]
        stack = Stack(profile, base, tmp_path_factory.mktemp(key))
        busy = [s.name for s in stack.topo.services.values() if _port_open(s.address)]
        if busy:
            pytest.fail(f"ports of base {base} are taken ({', '.join(busy)}); "
                        "is another stack running? stop it or change BASE_PORTS")
        stacks.append(stack)
        stack.start_all()
        return stack

    yield make
    for stack in stacks:
        stack.stop_all()


@pytest.fixture(scope="module")
def resilient(stack_factory) -> Stack:
    return stack_factory("resilient", "shared")


# --- clients --------------------------------------------------------------------------

async def http_json(session: aiohttp.ClientSession, method: str, url: str, body=None):
    async with session.request(method, url, json=body, timeout=aiohttp.ClientTimeout(total=5)) as r:
        return r.status, dict(r.headers), await r.json(content_type=None)


async def health(session, svc: topology.Service) -> dict | None:
    try:
        return (await http_json(session, "GET", f"http://{svc.address}/health"))[2]
    except (aiohttp.ClientError, TimeoutError):
        return None


async def until(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    """Await predicate() until truthy; fail with what after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := await predicate():
            return result
        await asyncio.sleep(interval_s)
    pytest.fail(f"{what}: not within {timeout_s} s")


async def create_space(session, stack: Stack, space: str, gateway: str = "gateway-a") -> None:
    status, _, body = await http_json(session, "POST", f"{stack.gateway_url(gateway)}/spaces",
                                      {"space": space})
    assert status in (200, 201), body


async def join(session, stack: Stack, gateway: str, space: str, **body) -> dict:
    """A join that waits out 503s (edges not reported yet) for a few seconds."""
    async def attempt():
        status, _, reply = await http_json(
            session, "POST", f"{stack.gateway_url(gateway)}/spaces/{space}/join", body)
        if status == 200:
            return reply
        assert status == 503, reply
        return None
    return await until(attempt, 10, f"join {body} at {gateway}", interval_s=0.2)


def speech(n_frames: int) -> list[bytes]:
    enc = Encoder()
    t = np.arange(n_frames * FRAME_SAMPLES) / SAMPLE_RATE
    pcm = (5000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    return [enc.encode(pcm[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]) for i in range(n_frames)]


@dataclass
class Speaker:
    """Publishes frames at 50/s, reconnecting through its list of origins."""
    space: str
    name: str
    urls: list[str]
    sent: dict[int, int] = field(default_factory=dict)  # speaker seq -> capture_ns
    connects: list[str] = field(default_factory=list)

    async def run(self, n_frames: int) -> None:
        payloads = speech(n_frames)
        ws: ClientConnection | None = None
        start = time.monotonic()
        seq, attempt = 0, 0
        while seq < n_frames and time.monotonic() - start < n_frames * 0.02 + 30:
            if ws is None:
                url = self.urls[attempt % len(self.urls)]
                attempt += 1
                try:
                    ws = await connect(url, open_timeout=2, compression=None)
                    self.connects.append(url)
                except (OSError, TimeoutError, WebSocketException):
                    await asyncio.sleep(0.2)
                    continue
            capture_ns = time.time_ns()
            try:
                await ws.send(wire.single(self.space, self.name, seq, capture_ns, payloads[seq]))
                self.sent[seq] = capture_ns
            except ConnectionClosed:
                ws = None
            seq += 1  # real time goes on: a frame not sent is lost
            await asyncio.sleep(max(0.0, start + seq * 0.02 - time.monotonic()))
        if ws is not None:
            await ws.close()


@dataclass
class Listener:
    url: str
    frames: list[wire.Frame] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    async def run(self, ws: ClientConnection, duration_s: float) -> None:
        try:
            async with asyncio.timeout(duration_s):
                async for msg in ws:
                    self.frames.append(wire.decode(msg))
                    self.arrivals.append(time.monotonic())
        except TimeoutError:
            pass
        finally:
            await ws.close()


async def listen(stack: Stack, session, gateway: str, space: str) -> tuple[dict, ClientConnection]:
    reply = await join(session, stack, gateway, space, role="listener")
    return reply, await connect(reply["url"], open_timeout=3, compression=None)


async def upstream_ready(session, stack: Stack, space: str, edges: list[str]) -> None:
    async def ready():
        hs = [await health(session, stack.svc(e)) for e in edges]
        return all(h and h["upstream"].get(space) for h in hs)
    await until(ready, 10, f"edges {edges} subscribed to {space}")


def check_in_order(frames: list[wire.Frame], speaker: Speaker) -> None:
    """Room seqs strictly increase; each frame carries the speaker's own seq and capture time."""
    seqs = [f.seq for f in frames]
    assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
    for f in frames:
        (c,) = f.contributors
        assert c.speaker == speaker.name
        assert speaker.sent[c.seq] == c.capture_ns
    speaker_seqs = [f.contributors[0].seq for f in frames]
    assert speaker_seqs == sorted(speaker_seqs)


# --- tests ----------------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_audio_reaches_listeners_in_every_dc(resilient: Stack):
    stack = resilient

    async def scenario():
        async with aiohttp.ClientSession() as s:
            await create_space(s, stack, "room-1")
            status, _, again = await http_json(s, "POST", f"{stack.gateway_url('gateway-b')}/spaces",
                                               {"space": "room-1"})
            assert (status, again) == (200, {"space": "room-1"})
            status, _, missing = await http_json(
                s, "POST", f"{stack.gateway_url('gateway-a')}/spaces/nope/join", {"role": "listener"})
            assert status == 404 and missing["error"] == "no_such_space"

            listeners, replies = [], []
            for gw in ("gateway-a", "gateway-b", "gateway-c"):
                reply, ws = await listen(stack, s, gw, "room-1")
                assert reply["edge"] == gw.replace("gateway", "edge")  # its own DC
                assert len(reply["alternates"]) == 2
                replies.append(reply)
                listeners.append((Listener(reply["url"]), ws))
            await upstream_ready(s, stack, "room-1", ["edge-a", "edge-b", "edge-c"])

            reply = await join(s, stack, "gateway-b", "room-1", role="speaker", speaker="alice")
            # the active origin first
            assert stack.topo.link("speaker", "origin-a").connect in reply["origins"][0]
            speaker = Speaker("room-1", "alice", reply["origins"])
            await asyncio.gather(speaker.run(100),
                                 *(lst.run(ws, 2.0 + 1.5) for lst, ws in listeners))
            for lst, _ in listeners:
                assert len(lst.frames) >= 98, f"{lst.url}: {len(lst.frames)} of 100 frames"
                check_in_order(lst.frames, speaker)
            # the same room stream everywhere
            assert {tuple(f.seq for f in lst.frames) for lst, _ in listeners}.__len__() == 1

            h = await health(s, stack.svc("origin-a"))
            assert h["role"] == "active" and h["kind"] == "origin" and h["dc"] == "dc-a"
            async with s.get(f"http://{stack.svc('edge-a').address}/metrics") as r:
                text = await r.text()
            assert "space_edge_frames_forwarded_total" in text

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_full_edge_refuses_and_gateway_sends_elsewhere(resilient: Stack):
    stack = resilient
    edge = stack.svc("edge-c")
    admin = f"http://{edge.address}/admin/capacity"

    async def scenario():
        async with aiohttp.ClientSession() as s:
            await create_space(s, stack, "room-full")
            try:
                status, _, body = await http_json(s, "GET", f"{admin}?listeners=1")
                assert (status, body["capacity"]) == (200, 1)
                first, ws = await listen(stack, s, "gateway-c", "room-full")
                assert first["edge"] == "edge-c"
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(first["url"], open_timeout=3):
                        pass
                response = refused.value.response
                assert response.status_code == 503
                assert int(response.headers["Retry-After"]) >= 1
                body = json.loads(response.body)
                assert body["error"] == "edge_full" and body["edge"] == "edge-c"
                assert body["retry_after_s"] > 0 and body["message"]

                # once gateway-c has seen edge-c full, it sends listeners to another DC
                async def elsewhere():
                    reply = await join(s, stack, "gateway-c", "room-full", role="listener")
                    return reply if reply["edge"] != "edge-c" else None
                reply = await until(elsewhere, 5, "gateway-c sends a listener away from full edge-c")
                assert reply["dc"] != "dc-c"
                assert all("room-full" in url for url in reply["alternates"])
                await ws.close()
            finally:
                await http_json(s, "GET", f"{admin}?listeners={stack.topo.settings.edge_capacity}")

    asyncio.run(scenario())


@pytest.mark.timeout(120)
def test_standby_origin_takes_over(stack_factory):
    stack = stack_factory("resilient", "origin_failover")
    edges = ["edge-a", "edge-b", "edge-c"]

    async def scenario():
        async with aiohttp.ClientSession() as s:
            h = await health(s, stack.svc("origin-b"))
            assert h["role"] == "standby"
            # a standby refuses, naming the active origin
            await create_space(s, stack, "room-2")
            reply = await join(s, stack, "gateway-a", "room-2", role="speaker", speaker="bob")
            standby_url = next(u for u in reply["origins"]
                               if stack.topo.link("speaker", "origin-b").connect in u)
            with pytest.raises(InvalidStatus) as refused:
                async with connect(standby_url, open_timeout=3):
                    pass
            body = json.loads(refused.value.response.body)
            assert refused.value.response.status_code == 503
            assert (body["error"], body["active"]) == ("standby", "origin-a")

            listeners = []
            for gw in ("gateway-a", "gateway-b", "gateway-c"):
                r, ws = await listen(stack, s, gw, "room-2")
                listeners.append((Listener(r["url"]), ws))
            await upstream_ready(s, stack, "room-2", edges)
            speaker = Speaker("room-2", "bob", reply["origins"])
            talk = asyncio.create_task(speaker.run(500))  # 10 s of audio
            hearing = [asyncio.create_task(lst.run(ws, 14)) for lst, ws in listeners]

            await asyncio.sleep(2)
            killed_at = time.monotonic()
            stack.kill("origin-a")

            async def promoted():
                h = await health(s, stack.svc("origin-b"))
                return h and h["role"] == "active"
            await until(promoted, 6, "origin-b promoted")
            promoted_s = time.monotonic() - killed_at
            await asyncio.gather(talk, *hearing)

            outages = []
            for lst, _ in listeners:
                after = [t for t in lst.arrivals if t > killed_at]
                assert len(after) > 200, f"{lst.url}: {len(after)} frames after the failover"
                outages.append(max(b - a for a, b in zip(lst.arrivals, lst.arrivals[1:]) if b > killed_at))
                assert outages[-1] < 8, f"{lst.url}: no audio for {outages[-1]:.1f} s"
                check_in_order(lst.frames, speaker)
            assert stack.topo.link("speaker", "origin-b").connect in speaker.connects[-1]
            hs = [await health(s, stack.svc(e)) for e in edges]
            # edges' upstreams were closed or moved to origin-b
            assert all(h["upstream"].get("room-2") in (None, "origin-b") for h in hs)
            # no automatic failback: a restarted origin-a finds origin-b active and stands by
            stack.start("origin-a")
            h = await health(s, stack.svc("origin-a"))
            assert h["role"] == "standby", h
            print(f"origin failover: origin-b active {promoted_s:.2f} s after the kill; "
                  f"listeners heard nothing for {min(outages):.2f} to {max(outages):.2f} s")

    asyncio.run(scenario())


@pytest.mark.timeout(120)
def test_redis_failover_restores_joins(stack_factory):
    stack = stack_factory("resilient", "redis_failover")

    async def scenario():
        async with aiohttp.ClientSession() as s:
            await create_space(s, stack, "room-3")
            await join(s, stack, "gateway-b", "room-3", role="listener")
            stack.replicate()
            killed_at = time.monotonic()
            stack.kill("redis-a")
            refused = {}

            async def joins_everywhere():
                ok = True
                for gw in ("gateway-a", "gateway-b", "gateway-c"):
                    status, headers, body = await http_json(
                        s, "POST", f"{stack.gateway_url(gw)}/spaces/room-3/join", {"role": "speaker", "speaker": "x"})
                    if status != 200:
                        assert status == 503 and body["error"] == "state_unavailable", body
                        assert "Retry-After" in headers
                        refused[gw] = body
                        ok = False
                return ok
            await until(joins_everywhere, 30, "joins after the redis failover", interval_s=0.25)
            recovered_s = time.monotonic() - killed_at
            assert refused, "no join was refused while redis-a was gone"
            h = await health(s, stack.svc("gateway-c"))
            assert (h["redis"], h["redis_primary"]) == ("ok", "redis-b")
            print(f"redis failover: joins served again {recovered_s:.1f} s after redis-a was killed")

    asyncio.run(scenario())


@pytest.mark.timeout(90)
def test_fragile_redis_loss_fails_joins_everywhere(stack_factory):
    stack = stack_factory("fragile", "fragile")

    async def scenario():
        async with aiohttp.ClientSession() as s:
            await create_space(s, stack, "room-4")
            reply, ws = await listen(stack, s, "gateway-b", "room-4")
            await upstream_ready(s, stack, "room-4", [reply["edge"]])
            speaker_reply = await join(s, stack, "gateway-a", "room-4", role="speaker", speaker="eve")
            assert len(speaker_reply["origins"]) == 1

            stack.kill("redis-a")
            for gw in ("gateway-a", "gateway-b", "gateway-c"):
                status, headers, body = await http_json(
                    s, "POST", f"{stack.gateway_url(gw)}/spaces/room-4/join", {"role": "listener"})
                assert status == 503, body
                assert body["error"] == "state_unavailable" and int(headers["Retry-After"]) >= 1
                h = await health(s, stack.svc(gw))
                assert h["redis"] == "unreachable" and h["status"] == "ok"

            # the audio plane does not need redis: a listener already in still hears
            speaker = Speaker("room-4", "eve", speaker_reply["origins"])
            listener = Listener(reply["url"])
            await asyncio.gather(speaker.run(50), listener.run(ws, 2.5))
            assert len(listener.frames) >= 48
            check_in_order(listener.frames, speaker)

    asyncio.run(scenario())
