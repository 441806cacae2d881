"""Engines that run the shards: what the user already operates, not a home-made cluster.

- ``local``: N processes on this machine (``python -m chaos.scale.shardmain``), the default.
- ``swarm``: a Docker Swarm service, ``docker service create --replicas N``; each task's
  index is its slot (``CHAOS_SHARD_SLOT={{.Task.Slot}}``). Host networking by default, so
  that a shard reaches the coordinator and a stack published on the node's addresses.
- ``k8s``: manifests for a Kubernetes Indexed Job (chaos.scale.k8s), written to files
  for the user to apply: nothing here talks to a cluster.

Every engine's ``stop()`` removes what it started, also after a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

from chaos.core.errors import ConfigError, EngineUnavailable, ProbeError
from chaos.scale.shard import SHARD_CMD, shard_env

ENGINES = ("local", "swarm", "k8s")


class LocalEngine:
    name = "local"

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, count: int, sink: str) -> None:
        for i in range(count):
            env = {**os.environ, **shard_env(str(i), count, sink)}
            self.procs.append(subprocess.Popen([sys.executable, *SHARD_CMD[1:]], env=env,
                                               start_new_session=True))

    def check(self) -> None:
        for i, p in enumerate(self.procs):
            if p.poll() is not None and p.returncode != 0:
                raise ProbeError(f"shard {i} (pid {p.pid}) exited with code {p.returncode} "
                                 "before the run started; see its stderr")

    def kill(self, index: int) -> None:
        """SIGKILL one shard (what a lost machine looks like to the coordinator)."""
        self.procs[index].kill()

    def stop(self, timeout_s: float = 5.0) -> None:
        end = time.monotonic() + timeout_s
        for p in self.procs:
            try:
                p.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait(2)


def _docker(*args: str, check: bool = True, timeout_s: float = 60.0) -> str:
    try:
        out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError:
        raise EngineUnavailable("the swarm engine needs the docker command; install Docker") from None
    if check and out.returncode != 0:
        raise EngineUnavailable(f"docker {' '.join(args[:3])} failed: {out.stderr.strip()[:500]}")
    return out.stdout


class SwarmEngine:
    """One Swarm service of N replicas. The image must hold the project (None: the shards'
    image built here from the running sources, chaos.scale.image); ``mounts`` adds bind
    mounts (source:target) and ``env`` variables."""
    name = "swarm"

    def __init__(self, image: str | None = None, *, network: str = "host",
                 mounts: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.image, self.network, self.mounts, self.env = image, network, mounts, env or {}
        self.service = f"chaos-shards-{uuid.uuid4().hex[:8]}"
        self.started = False

    def start(self, count: int, sink: str) -> None:
        state = _docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
        if state != "active":
            raise EngineUnavailable("this Docker engine is not in a swarm (state "
                                    f"{state or 'unknown'}); run `docker swarm init` on a manager "
                                    "node, or use the local engine")
        if self.image is None:
            from chaos.scale.image import ensure_shard_image
            self.image = ensure_shard_image()
        args = ["service", "create", "--detach", "--name", self.service,
                "--replicas", str(count), "--restart-condition", "none",
                "--label", "chaos.scale=shards", "--network", self.network,
                "--env", "CHAOS_SHARD_SLOT={{.Task.Slot}}",
                "--env", "CHAOS_SHARD_NAME={{.Task.Name}}"]
        for k, v in {**shard_env(None, count, sink), **self.env}.items():
            args += ["--env", f"{k}={v}"]
        for m in self.mounts:
            src, _, dst = m.partition(":")
            args += ["--mount", f"type=bind,source={src},target={dst},readonly"]
        args += [self.image, *SHARD_CMD]
        _docker(*args)
        self.started = True

    def check(self) -> None:
        out = _docker("service", "ps", self.service, "--format", "{{.CurrentState}} {{.Error}}",
                      check=False)
        bad = [line for line in out.splitlines() if line.startswith(("Failed", "Rejected"))]
        if bad:
            raise ProbeError(f"swarm service {self.service}: a shard task failed: {bad[0]}")

    def containers(self) -> dict[int, str]:
        """Task slot - 1 -> container id, for the tasks running on this node."""
        out = _docker("ps", "--filter", f"label=com.docker.swarm.service.name={self.service}",
                      "--format", '{{.ID}} {{.Label "com.docker.swarm.task.name"}}')
        got = {}
        for line in out.splitlines():
            cid, _, task = line.partition(" ")
            slot = task.split(".")[1] if task.count(".") >= 2 else ""
            if slot.isdigit():
                got[int(slot) - 1] = cid
        return got

    def kill(self, index: int) -> None:
        cid = self.containers().get(index)
        if cid is None:
            raise ProbeError(f"no running container for shard {index} of {self.service}")
        _docker("kill", cid)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.started:
            _docker("service", "rm", self.service, check=False, timeout_s=timeout_s)
            self.started = False


def engine_for(name: str, **kw):
    if name == "local":
        return LocalEngine()
    if name == "swarm":
        return SwarmEngine(**kw)
    if name == "k8s":
        from chaos.scale.k8s import K8sEngine
        return K8sEngine(**kw)
    raise ConfigError(f"unknown engine {name!r}; use one of: {', '.join(ENGINES)}")
