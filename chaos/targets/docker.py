"""The ``docker`` runtime: the reference stack as containers, from fixtures/compose.yaml.

The compose tool (``docker compose`` v2 if it works, else ``docker-compose`` 1.29) only
creates and removes the stack; everything else (waiting for health, status, the sweep
after ``down``) goes through the docker SDK and finds the containers by their labels
(``chaos.stack=space``, ``chaos.service``, ``chaos.dc``, ``chaos.kind`` and
``chaos.stack_id``), so it does not depend on which compose tool, or which naming scheme,
made them.

The image is built (offline, see images.py) before the timeout of ``up`` starts.
Health is docker's own health check (every CHAOS_HEALTH_INTERVAL, default 5 s).
Environment: CHAOS_FIXTURES (where fixtures/ is), CHAOS_COMPOSE (force a compose command,
e.g. ``docker-compose``), CHAOS_IMAGE / CHAOS_BASE_IMAGE (see images.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from chaos.core.errors import (ConfigError, CpuFaultError, FaultError, IptablesError, MissingTool,
                               PortInUse, StackAlreadyUp, StackError)
from chaos.targets import images
from chaos.targets.base import FaultSide, Progress, ServiceStatus, Swept, quiet
from chaos.core.target import Service, Target

PROJECT = "chaos-space"
STACK_LABEL = "chaos.stack=space"
RESILIENT_ONLY_PROFILE = "resilient"     # the compose profile of origin-b, redis-b, sentinels

PING_TIMEOUT_S = 5
NETWORK_REMOVE_TRIES = 6
API_TIMEOUT_S = 30
COMPOSE_PROBE_TIMEOUT_S = 15
COMPOSE_DOWN_TIMEOUT_S = 180
LOG_LINES = 15
POLL_S = 0.5
STOP_GRACE_S = 3.0          # a service's stop: docker stop's grace before SIGKILL
RUNNING_WAIT_S = 8.0        # from start/unpause to "running"
NETWORK_API_TIMEOUT_S = 10  # a network fault's calls, within the engine's 10 s deadline
CPU_QUOTA_MIN_US = 1000     # docker's minimum CFS quota: 1 ms


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None,
         cwd: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise StackError(f"`{shlex.join(cmd)}` did not finish within {timeout:.0f} s") from e
    except OSError as e:
        raise MissingTool(f"cannot run `{shlex.join(cmd)}`: {e}") from e


def find_compose() -> list[str]:
    """The compose command: CHAOS_COMPOSE if set, else `docker compose` (v2) if it works,
    else `docker-compose` (v1)."""
    override = os.environ.get("CHAOS_COMPOSE")
    candidates = [shlex.split(override)] if override else [["docker", "compose"],
                                                           ["docker-compose"]]
    for cmd in candidates:
        if not shutil.which(cmd[0]):
            continue
        try:
            r = subprocess.run([*cmd, "version"], capture_output=True, text=True,
                               timeout=COMPOSE_PROBE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return cmd
    if override:
        raise MissingTool(f"CHAOS_COMPOSE={override!r} does not run (`{override} version` failed)")
    raise MissingTool(
        "no compose tool: neither `docker compose` (the v2 plugin) nor `docker-compose` works. "
        "Install one: apt-get install docker-compose-plugin (Docker's repository) or "
        "apt-get install docker-compose (Debian)")


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def published_ports(topo: Target) -> dict[str, int]:
    """Every port compose publishes on 127.0.0.1, by the variable that sets it."""
    from chaos.adapters.space import launch   # the reference stack's (needs its package)
    return {k: int(v) for k, v in launch.compose_env(topo).items() if k.startswith("CHAOS_PORT_")}


class _ServiceStopped(StackError):
    """A service exited while starting and will not be restarted: no use waiting."""


def has_labelled_containers(timeout_s: int = 3, stack_id: str | None = None) -> bool:
    """Any container of the space stack (of that stack id) on this engine? False when no
    engine answers."""
    try:
        client = images.docker_client(timeout=timeout_s)
    except StackError:
        return False
    labels = [STACK_LABEL] + ([f"chaos.stack_id={stack_id}"] if stack_id else [])
    try:
        return bool(client.containers.list(all=True, filters={"label": labels}))
    finally:
        client.close()


def labelled(client, service: str | None = None) -> list:
    """The stack's containers (label chaos.stack=space), or one service's (chaos.service):
    the only way faults find a container."""
    labels = [STACK_LABEL] + ([f"chaos.service={service}"] if service else [])
    return client.containers.list(all=True, filters={"label": labels})


def containers_of(client, state, service: str | None = None) -> list:
    """The containers of one service of a target (every service's when None): found by the
    labels its description gives (the reference stack: chaos.stack=space, chaos.service), and
    of this stack (a reference stack's containers also carry its chaos.stack_id). The one
    place that decides "this container belongs to the target": nothing else is ever touched."""
    from chaos.core.errors import FaultError
    target = state.topology
    names = [service] if service is not None else sorted(target.services)
    out = []
    for name in names:
        svc = target.services.get(name)
        if svc is None:
            raise FaultError(f"{name!r} is not a service of target {target.name}; its services are "
                             f"{', '.join(sorted(target.services))}")
        if not svc.labels:
            if service is None:
                continue
            raise FaultError(f"{name} has no docker labels in target {target.name}: describe how to "
                             "find its containers (find: labels, or compose_project and compose_service)")
        found = client.containers.list(all=True, filters={"label": svc.label_filter})
        ours = [c for c in found if c.labels.get("chaos.stack_id") in ("", None, state.stack_id)]
        if found and not ours:
            ids = sorted({c.labels.get("chaos.stack_id") for c in found})
            raise FaultError(f"the containers of {name} belong to stack {', '.join(ids)}, "
                             f"not {state.stack_id}: not touching them")
        out += ours
    return out


def by_service(client, state) -> dict[str, list]:
    """Every described service's containers (``containers_of``), by service name."""
    return {name: containers_of(client, state, name)
            for name, svc in state.topology.services.items() if svc.labels}


def network(client, name: str):
    """The stack's network labelled chaos.network=name (dc-a, ..., backbone, ingress), or None."""
    nets = client.networks.list(filters={"label": [STACK_LABEL, f"chaos.network={name}"]})
    nets.sort(key=lambda n: n.name != f"{PROJECT}_{name}")   # compose's own name first
    return nets[0] if nets else None


def expected_networks(service: Service) -> tuple[str, ...]:
    """The networks compose.yaml puts a service on, by their chaos.network label."""
    if service.kind == "toxiproxy":
        return ("backbone", "ingress")
    return (service.dc, "backbone") + (("ingress",) if service.kind == "gateway" else ())


def _wait_running(c, service: str) -> None:
    deadline = time.monotonic() + RUNNING_WAIT_S
    while True:
        c.reload()
        if c.status == "running":
            return
        if time.monotonic() > deadline:
            raise FaultError(f"{service} is {c.status}, not running, "
                             f"{RUNNING_WAIT_S:g} s after it was brought back")
        time.sleep(0.1)


def _state_text(c) -> tuple[bool, str]:
    """(healthy, words) for a container."""
    st = c.attrs.get("State") or {}
    status = st.get("Status", "unknown")
    health = (st.get("Health") or {}).get("Status")
    if status == "running":
        return health == "healthy", f"running ({health})" if health else "running"
    if status in ("exited", "dead"):
        return False, f"{status} ({st.get('ExitCode')})"
    return False, status            # paused, restarting, created, removing


class DockerRuntime(FaultSide):
    """The stack as containers, found by label only (``containers_of``).

    For faults: kill = docker kill, stop = docker stop, freeze = docker pause; each
    container has its own network namespace (entered with nsenter); a CPU is capped by the
    container's CFS quota; the reference stack's networks can be disconnected."""
    name = "docker"
    revert_imports = ("docker",)      # the SDK: seconds to import on a busy machine
    shares_host_netns = False
    disconnects_networks = True
    caps_cpu_by_quota = True
    restarts_missing = False          # resume_all starts an exited container already
    reset_healthy_wait_s = 120.0      # docker's health check runs every few seconds
    resume_words = "bringing every container back"

    def __init__(self, stack_id: str = "", fixtures: Path | None = None) -> None:
        self.stack_id = stack_id                 # labels every container (chaos.stack_id)
        self.fixtures = Path(fixtures) if fixtures else images.fixtures_dir()
        self.project = PROJECT
        self._compose: list[str] | None = None

    # ------------------------------------------------------------------ helpers

    @property
    def compose_file(self) -> Path:
        return self.fixtures / "compose.yaml"

    def compose_cmd(self) -> list[str]:
        if self._compose is None:
            self._compose = find_compose()
        return self._compose

    def _compose_env(self, topo: Target, image: str | None = None,
                     all_profiles: bool = False) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        from chaos.adapters.space import launch   # the reference stack's (needs its package)
        env.update(launch.compose_env(topo))
        env["CHAOS_STACK_ID"] = self.stack_id
        if image:
            env["CHAOS_IMAGE"] = image
        if all_profiles or topo.profile == "resilient":
            env["COMPOSE_PROFILES"] = RESILIENT_ONLY_PROFILE
        else:
            env.pop("COMPOSE_PROFILES", None)
        return env

    def _compose_run(self, topo: Target, args: list[str], timeout: float,
                     image: str | None = None, all_profiles: bool = False
                     ) -> subprocess.CompletedProcess:
        cmd = [*self.compose_cmd(), "-p", self.project, "-f", str(self.compose_file), *args]
        return _run(cmd, timeout, env=self._compose_env(topo, image, all_profiles),
                    cwd=str(self.fixtures))

    def _containers(self, client) -> dict[str, object]:
        """The stack's containers by service name (a running one wins over a stopped one)."""
        out: dict[str, object] = {}
        for c in client.containers.list(all=True, filters={"label": [STACK_LABEL]}):
            name = c.labels.get("chaos.service")
            if not name:
                continue
            if name not in out or (c.status == "running" and out[name].status != "running"):
                out[name] = c
        return out

    # ------------------------------------------------------ what faults may plan here

    def service_fault_refusal(self, fault: str, service: str, topo: Target) -> str | None:
        """Why a fault on a service's containers cannot be planned on this target (None: it
        can): a described target must say how to find them."""
        svc = topo.services.get(service)
        if topo.is_reference() or svc is None or svc.labels:
            return None
        return (f"{fault} on {service}: target {topo.name} does not say how to find "
                f"its containers; add find: {{labels: ...}} to service {service}")

    def partitions_networks(self, topo: Target) -> bool:
        """Only the reference stack's compose networks are the framework's to disconnect."""
        return topo.is_reference()

    def cpu_quota_us(self, share: float, period_us: int) -> int:
        return max(CPU_QUOTA_MIN_US, round(share * period_us))

    # --------------------------------------------------- faults on the containers

    @cached_property
    def _fault_client(self):
        return images.docker_client(timeout=int(RUNNING_WAIT_S) + 2)

    def each_container(self, state, visit: Callable[[object, str, object, Swept], None]) -> Swept:
        """Call ``visit(client, service name, container, swept)`` for every container of the
        stack; an engine error on one container is a problem of the report and the others
        are still visited."""
        import docker
        swept = Swept()
        client = images.docker_client(timeout=30)
        try:
            for name, containers in by_service(client, state).items():
                for c in containers:
                    try:
                        visit(client, name, c, swept)
                    except docker.errors.APIError as e:
                        swept.problems.append(f"container {name}: {e.explanation or e}")
        finally:
            client.close()
        return swept

    def take_down(self, state, service: str, mode: str) -> None:
        import docker
        for c in containers_of(self._fault_client, state, service):
            c.reload()
            try:
                if c.status == "paused" and mode != "freeze":
                    c.unpause()   # kill or stop a frozen container: it must hear the signal
                    c.reload()
                if c.status != "running":
                    continue          # already down (or paused, for freeze): nothing to do
                if mode == "kill":
                    c.kill()
                elif mode == "stop":
                    c.stop(timeout=int(STOP_GRACE_S))
                else:
                    c.pause()
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as e:
                raise FaultError(f"docker refused to {mode} {service}: {e.explanation}") from None

    def _start_together(self, state, service: str, together: list[str]) -> None:
        """Start the fault's other containers that are down, side by side (each start is a
        blocking API call of up to a second on a busy machine)."""
        import concurrent.futures as cf

        import docker
        names = set(together) - {service}
        if not names:
            return
        down = [c for name in sorted(names & set(state.topology.services))
                for c in containers_of(self._fault_client, state, name)
                if c.status in ("exited", "created", "dead")]

        def start(c) -> None:
            try:
                c.start()
            except docker.errors.APIError:
                pass          # its own revert reports it
        if down:
            with cf.ThreadPoolExecutor(max_workers=min(8, len(down))) as pool:
                list(pool.map(start, down))

    def bring_back(self, state, service: str, mode: str, together: list[str]) -> None:
        """Unpause a paused container, start an exited one (a `restart: on-failure` policy
        does not undo a docker kill), with the rest of ``together`` that is down, side by
        side; then wait until this one runs."""
        import docker
        self._start_together(state, service, together)
        for c in containers_of(self._fault_client, state, service):
            try:
                c.reload()
                if c.status == "paused":
                    c.unpause()
                elif c.status in ("exited", "created", "dead"):
                    c.start()
                elif c.status == "restarting":
                    pass          # docker is bringing it back already
                _wait_running(c, service)
            except docker.errors.NotFound:
                raise FaultError(f"the container of {service} is gone: "
                                 "`chaos stack down` and `up` to recreate the stack") from None
            except docker.errors.APIError as e:
                raise FaultError(f"docker could not bring {service} back: {e.explanation}") from None

    def resume_all(self, state) -> Swept:
        """Unpause every paused container of the stack, start every one that has exited."""
        def back(client, name, c, swept: Swept) -> None:
            if c.status == "paused":
                c.unpause()
                swept.did.append(f"unpaused {name}")
            elif c.status in ("exited", "created", "dead"):
                c.start()
                swept.did.append(f"started {name} (was {c.status})")
        return self.each_container(state, back)

    def restart_missing(self, state) -> Swept:
        return Swept()           # resume_all started every container that had exited

    def restart_clean(self, state, service: str) -> list[str]:
        """Restart a service's containers, clean from their config; what was done, in words."""
        did = []
        client = images.docker_client(timeout=30)
        try:
            for c in labelled(client, service):
                c.restart(timeout=1)
                did.append(f"restarted the {service} container clean from its config: its API "
                           "did not answer")
        finally:
            client.close()
        return did

    # -- networks: a container disconnected from one of the stack's networks

    @cached_property
    def _network_client(self):
        return images.docker_client(timeout=NETWORK_API_TIMEOUT_S)

    def _network_and_containers(self, state, service: str, name: str):
        net = network(self._network_client, name)
        if net is None:
            raise FaultError(f"the stack has no docker network labelled chaos.network={name}")
        containers = containers_of(self._network_client, state, service)
        if not containers:
            raise FaultError(f"no container of stack {state.stack_id} is found for {service}")
        return net, containers

    @staticmethod
    def _attached(c, net) -> bool:
        c.reload()
        nets = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return any(n.get("NetworkID") == net.id for n in nets.values()) or net.name in nets

    def disconnect(self, state, service: str, name: str) -> None:
        """Disconnect the service's containers from the network labelled chaos.network=name."""
        import docker
        net, containers = self._network_and_containers(state, service, name)
        for c in containers:
            if not self._attached(c, net):
                continue
            try:
                net.disconnect(c, force=True)
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as e:
                raise FaultError(f"could not disconnect {service} from {net.name}: "
                                 f"{e.explanation}") from None

    def connect(self, state, service: str, name: str, aliases: list[str]) -> None:
        """Connect the service's containers to that network again, under ``aliases``."""
        import docker
        net, containers = self._network_and_containers(state, service, name)
        for c in containers:
            if self._attached(c, net):
                continue
            try:
                net.connect(c, aliases=aliases)
            except docker.errors.APIError as e:
                if self._attached(c, net):        # connected meanwhile (a parallel revert)
                    continue
                raise FaultError(f"could not reconnect {service} to {net.name}: "
                                 f"{e.explanation}") from None

    def reconnect_all(self, state) -> Swept:
        """Connect every container of the stack to each network compose gave its service."""
        nets: dict[str, object] = {}

        def reconnect(client, name, c, swept: Swept) -> None:
            svc = state.topology.services.get(name)
            if svc is None:
                return
            attached = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
            ids = {n.get("NetworkID") for n in attached.values()}
            for label in expected_networks(svc):
                if label not in nets:
                    nets[label] = network(client, label)
                net = nets[label]
                if net is not None and net.id not in ids and net.name not in attached:
                    net.connect(c, aliases=[name])
                    swept.did.append(f"reconnected {name} to network {label}")
        return self.each_container(state, reconnect)

    # -- CPU: the container's CFS quota

    def cpu_container(self, state, service: str):
        """The service's container of this stack (labelled with its id, or with none: a
        stack from before ids were labelled), a running one first; one of another stack is
        never touched (CpuFaultError)."""
        client = images.docker_client(timeout=10)
        try:
            found = client.containers.list(
                all=True, filters={"label": [STACK_LABEL, f"chaos.service={service}"]})
        finally:
            client.close()
        ours = [c for c in found if c.labels.get("chaos.stack_id") in ("", None, state.stack_id)]
        if found and not ours:
            ids = sorted({str(c.labels.get("chaos.stack_id")) for c in found})
            raise CpuFaultError(f"cpu_starve: the containers of {service} belong to stack "
                                f"{', '.join(ids)}, not {state.stack_id}: not touching them")
        running = [c for c in ours if c.status == "running"]
        return (running or ours or [None])[0]

    def cap_cpu(self, state, service: str, quota_us: int, period_us: int) -> None:
        """Set the quota; refuse a container that already has another limit, so that
        ``uncap_cpu`` never erases one it did not set."""
        c = self.cpu_container(state, service)
        if c is None:
            raise CpuFaultError(f"cpu_starve: no container labelled {STACK_LABEL} and "
                                f"chaos.service={service}")
        hc = c.attrs.get("HostConfig") or {}
        have_quota, have_period = int(hc.get("CpuQuota") or 0), int(hc.get("CpuPeriod") or 0)
        if have_quota == quota_us and have_period == period_us:
            return  # idempotent
        if have_quota > 0 or int(hc.get("NanoCpus") or 0) > 0:
            raise ConfigError(f"cpu_starve: the container of {service} already has a CPU limit "
                              f"(quota {have_quota} us per {have_period or 100000} us, nano_cpus "
                              f"{hc.get('NanoCpus') or 0}); another cpu_starve may be active: "
                              "revert it first")
        c.update(cpu_period=period_us, cpu_quota=quota_us)

    def uncap_cpu(self, state, service: str) -> None:
        c = self.cpu_container(state, service)
        if c is None:
            return  # no container, no limit
        if int((c.attrs.get("HostConfig") or {}).get("CpuQuota") or 0) > 0:
            c.update(cpu_quota=-1)  # -1: no limit (0 would leave the quota unchanged)

    def uncap_all_cpus(self, state) -> Swept:
        """Lift the CPU quota of every container of the stack (they run without one)."""
        def lift(client, name, c, swept: Swept) -> None:
            if ((c.attrs.get("HostConfig") or {}).get("CpuQuota") or 0) > 0:
                c.update(cpu_quota=-1)   # -1: no limit (0 would leave it unchanged)
                swept.did.append(f"lifted the CPU quota of {name}")
        return self.each_container(state, lift)

    # -- packet drop: each container's own network namespace, entered with nsenter

    def netns_refusal(self) -> str | None:
        if shutil.which("nsenter") is None:
            return ("nsenter is not installed (Debian package util-linux); it enters a "
                    "container's namespace")
        return None

    def netns_pid(self, service: str) -> int | None:
        """The pid of the service's running container of this stack (None: none running).
        A container of another stack is never entered (IptablesError if only such are found)."""
        client = images.docker_client(timeout=10)
        try:
            found = client.containers.list(filters={"label": [STACK_LABEL, f"chaos.service={service}"]})
            ours = [c for c in found if c.labels.get("chaos.stack_id") in ("", None, self.stack_id)]
            if found and not ours:
                ids = sorted({str(c.labels.get("chaos.stack_id")) for c in found})
                raise IptablesError(f"packet_drop: the containers of {service} belong to stack "
                                    f"{', '.join(ids)}, not {self.stack_id}: not touching them")
            for c in ours:
                pid = int((c.attrs.get("State") or {}).get("Pid") or 0)
                if pid > 0:
                    return pid
            return None
        finally:
            client.close()

    def netns_prefix(self, state, service: str) -> list[str] | None:
        """The command prefix that enters the service's namespace (None: it has none now)."""
        pid = self.netns_pid(service)
        return None if pid is None else ["nsenter", "-t", str(pid), "-n"]

    def netns_prefixes(self, state) -> dict[str, list[str]]:
        """The command prefix into each running container's namespace, by service (none
        without nsenter)."""
        if not shutil.which("nsenter"):
            return {}
        out = {}
        client = images.docker_client(timeout=30)
        try:
            for name, c in [(n, c) for n, cs in by_service(client, state).items() for c in cs]:
                pid = int((c.attrs.get("State") or {}).get("Pid") or 0)
                if pid > 0:
                    out[name] = ["nsenter", "-t", str(pid), "-n"]
        finally:
            client.close()
        return out

    # --------------------------------------------------------------- preflight

    def preflight(self, topo: Target) -> None:
        if topo.runtime != "docker":
            raise ConfigError(f"the docker runtime needs a docker topology, got {topo.runtime!r}")
        if not self.compose_file.is_file():
            raise StackError(f"{self.compose_file} is missing: set CHAOS_FIXTURES to the "
                             "project's fixtures/ directory")
        client = images.docker_client(timeout=PING_TIMEOUT_S)
        try:
            self.compose_cmd()
            existing = self._containers(client)
        finally:
            client.close()
        if existing:
            ids = sorted({c.labels.get("chaos.stack_id") or "?" for c in existing.values()})
            raise StackAlreadyUp(
                f"a docker space stack is already there ({len(existing)} containers, stack id "
                f"{', '.join(ids)}: {', '.join(sorted(existing))}). `chaos stack down` removes "
                "it if it was started from here; otherwise: docker rm -f $(docker ps -aq "
                f"--filter label={STACK_LABEL})")
        busy = [f"{port} ({var})" for var, port in published_ports(topo).items()
                if not port_free(port)]
        if busy:
            raise PortInUse(
                f"port(s) on 127.0.0.1 the stack publishes are in use: {', '.join(busy)}. "
                "Stop what listens there (`ss -ltnp`), or move the stack to another base port")

    # ---------------------------------------------------------------------- up

    def up(self, topo: Target, timeout_s: float, progress: Progress = quiet) -> dict:
        """Build the image if needed (not counted in timeout_s), start the stack and wait
        until every container is healthy; on failure, tear it down and raise StackError."""
        image = images.ensure_images(progress)
        compose = self.compose_cmd()
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        try:
            progress(f"starting {len(topo.services)} containers ({topo.profile}) with "
                     f"`{shlex.join(compose)}`")
            r = self._compose_run(topo, ["up", "-d", "--no-build", "--remove-orphans"],
                                  timeout=max(30.0, deadline - time.monotonic()),
                                  image=image)
            if r.returncode != 0:
                raise StackError(f"`{shlex.join(compose)} up` failed (exit {r.returncode}):\n"
                                 f"{images._tail(r.stderr or r.stdout, 20)}")
            ids = self._wait_healthy(topo, deadline, timeout_s, progress)
        except BaseException as e:
            report = ""
            if isinstance(e, StackError):
                try:
                    report = self._diagnose(topo, only_failed=isinstance(e, _ServiceStopped))
                except Exception as diag:  # the engine itself may be the problem
                    report = f"\n(could not collect container logs: {diag})"
            progress("start failed: removing what was started")
            try:
                self._teardown(topo, quiet)
            except Exception as td:
                report += f"\n(teardown failed too: {td}; run `chaos stack down`)"
            if isinstance(e, StackError):
                cls = StackError if isinstance(e, _ServiceStopped) else type(e)
                raise cls(f"{e}{report}") from e
            raise
        progress(f"stack healthy in {time.monotonic() - t0:.1f} s")
        return {"project": self.project, "stack_id": self.stack_id, "compose": compose,
                "compose_file": str(self.compose_file), "image": image,
                "profile": topo.profile, "containers": ids}

    def _wait_healthy(self, topo: Target, deadline: float, timeout_s: float,
                      progress: Progress) -> dict[str, str]:
        client = images.docker_client(timeout=API_TIMEOUT_S)
        last = None
        try:
            while True:
                containers = self._containers(client)
                waiting: list[str] = []
                for name in topo.services:
                    c = containers.get(name)
                    if c is None:
                        waiting.append(f"{name} (not created)")
                        continue
                    healthy, words = _state_text(c)
                    if healthy:
                        continue
                    st = c.attrs.get("State") or {}
                    policy = ((c.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}
                              ).get("Name", "")
                    will_restart = (policy in ("always", "unless-stopped")
                                    or (policy == "on-failure" and st.get("ExitCode")))
                    if st.get("Status") in ("exited", "dead") and not will_restart:
                        raise _ServiceStopped(f"{name} stopped while starting: {words}")
                    waiting.append(name if words == "running (starting)" else f"{name} ({words})")
                if not waiting:
                    return {n: containers[n].short_id for n in topo.services}
                n_ok = len(topo.services) - len(waiting)
                if n_ok != last:
                    progress(f"healthy {n_ok}/{len(topo.services)}; waiting for "
                             f"{', '.join(waiting)}")
                    last = n_ok
                if time.monotonic() > deadline:
                    raise StackError(f"the stack was not healthy within {timeout_s:.0f} s; "
                                     f"not healthy: {', '.join(waiting)}")
                time.sleep(POLL_S)
        finally:
            client.close()

    def _diagnose(self, topo: Target, only_failed: bool = False) -> str:
        """The last log lines and health-check output of the containers that are not healthy
        (with only_failed: of those that stopped or failed their checks; the ones still
        starting are only named)."""
        client = images.docker_client(timeout=API_TIMEOUT_S)
        try:
            containers = self._containers(client)
            parts, starting = [], []
            for name in topo.services:
                c = containers.get(name)
                if c is None:
                    parts.append(f"--- {name}: not created")
                    continue
                healthy, words = _state_text(c)
                if healthy:
                    continue
                if only_failed and words in ("running (starting)", "running"):
                    starting.append(name)
                    continue
                logs = c.logs(tail=LOG_LINES).decode(errors="replace").rstrip()
                health_log = ((c.attrs.get("State") or {}).get("Health") or {}).get("Log") or []
                check = health_log[-1].get("Output", "").strip() if health_log else ""
                parts.append(f"--- {name}: {words}; last log lines:\n{logs or '(no output)'}"
                             + (f"\n[last health check] {images._tail(check, 3)}" if check else ""))
            if starting:
                parts.append(f"(still starting: {', '.join(starting)})")
            return ("\n" + "\n".join(parts)) if parts else ""
        finally:
            client.close()

    # ------------------------------------------------------------------ status

    def status(self, topo: Target, runtime_state: dict | None = None) -> list[ServiceStatus]:
        client = images.docker_client(timeout=API_TIMEOUT_S)
        try:
            containers = self._containers(client)
        finally:
            client.close()
        out = []
        for svc in topo.services.values():
            c = containers.get(svc.name)
            address = svc.public or svc.address
            if c is None:
                out.append(ServiceStatus(svc.name, svc.kind, svc.dc, False, address,
                                         "not running"))
                continue
            healthy, words = _state_text(c)
            # the container's name is what `docker logs` wants; the state when it is not well
            detail = c.name if healthy else f"{words}; {c.name}"
            out.append(ServiceStatus(svc.name, svc.kind, svc.dc, healthy, address, detail))
        return out

    # -------------------------------------------------------------------- down

    def down(self, topo: Target, runtime_state: dict | None = None,
             progress: Progress = quiet) -> list[str]:
        return self._teardown(topo, progress)

    def _teardown(self, topo: Target, progress: Progress) -> list[str]:
        """compose down, then remove whatever labelled chaos.stack=space is left."""
        client = images.docker_client(timeout=API_TIMEOUT_S)
        try:
            before_c = {c.id: f"container {c.labels.get('chaos.service', '?')} ({c.name})"
                        for c in client.containers.list(all=True,
                                                        filters={"label": [STACK_LABEL]})}
            before_n = {n.id: f"network {n.name}"
                        for n in client.networks.list(filters={"label": [STACK_LABEL]})}
            problems = []
            if self.compose_file.is_file():
                try:
                    progress(f"compose down ({len(before_c)} containers)")
                    r = self._compose_run(topo, ["down", "--remove-orphans", "--volumes",
                                                 "--timeout", "5"],
                                          timeout=COMPOSE_DOWN_TIMEOUT_S, all_profiles=True)
                    if r.returncode != 0:
                        problems.append(f"compose down exit {r.returncode}: "
                                        f"{images._tail(r.stderr, 3)}")
                except StackError as e:   # no compose tool, or it hung: the sweep does it
                    problems.append(str(e))
            if problems:
                progress("; ".join(problems) + "; removing the rest through the docker API")
            # every name a stack container has had here: compose v1 and v2 spellings
            known = {d.rsplit("(", 1)[-1].rstrip(")") for d in before_c.values()}
            known |= {f"{self.project}{sep}{svc}{sep}1" for svc in topo.services for sep in "_-"}
            self._sweep(client, progress, known)
            left_c = {c.id for c in client.containers.list(all=True,
                                                            filters={"label": [STACK_LABEL]})}
            left_n = set()
            stale = []
            for n in client.networks.list(filters={"label": [STACK_LABEL]}):
                n.reload()
                if n.attrs.get("Containers"):
                    left_n.add(n.id)
                else:
                    # empty, yet the engine refuses to remove it: a stale endpoint in
                    # dockerd's memory (docker 20.10, seen after disconnect/connect). It
                    # holds nothing and compose reuses it; only a dockerd restart drops it.
                    stale.append(n.name)
        finally:
            client.close()
        if left_c or left_n:
            raise StackError(f"could not remove {len(left_c)} container(s) and {len(left_n)} "
                             f"network(s) labelled {STACK_LABEL}: see `docker ps -a --filter "
                             f"label={STACK_LABEL}` and `docker network ls`, remove them, then "
                             "`chaos stack down` again.")
        warnings = [f"network {name} is empty but the engine keeps a stale endpoint on it; "
                    "restart dockerd to remove it" for name in stale]
        for w in warnings:
            progress(w)
        return (sorted(d for i, d in before_c.items() if i not in left_c)
                + sorted(d for i, d in before_n.items()
                         if i not in left_n and d.removeprefix("network ") not in stale)
                + warnings)

    def _sweep(self, client, progress: Progress, known_names: set[str] = frozenset()) -> None:
        import docker
        names = set(known_names)
        for c in client.containers.list(all=True, filters={"label": [STACK_LABEL]}):
            names.add(c.name)
            progress(f"removing container {c.name}")
            try:
                c.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for n in client.networks.list(filters={"label": [STACK_LABEL]}):
            progress(f"removing network {n.name}")
            for attempt in range(NETWORK_REMOVE_TRIES):
                try:
                    n.reload()
                    for cid in (n.attrs.get("Containers") or {}):
                        try:
                            n.disconnect(cid, force=True)
                        except docker.errors.APIError:
                            pass
                    n.remove()
                    break
                except docker.errors.NotFound:
                    break
                except docker.errors.APIError as e:
                    # endpoints of just-removed containers go away asynchronously; one that
                    # stays (docker 20.10, after a disconnect/connect) goes with a forced
                    # disconnect by the vanished container's name
                    for name in names:
                        try:
                            client.api.disconnect_container_from_network(name, n.id, force=True)
                        except docker.errors.APIError:
                            pass
                    if attempt == NETWORK_REMOVE_TRIES - 1:
                        progress(f"could not remove network {n.name}: {e.explanation}. "
                                 "If it persists, restart dockerd (it drops stale endpoints)")
                    else:
                        time.sleep(0.5)
