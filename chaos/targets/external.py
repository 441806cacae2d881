"""A stack the user runs, attached through its target description.

``attach`` turns a target file into the same stack state that ``chaos stack up`` leaves for
the reference stack, kept in ``$CHAOS_HOME/targets/<id>.json`` so that the watchdog and
``chaos stack reset`` find it after a crash. The framework never starts or stops such a
stack: it only reads its health and puts faults on it (and takes them off).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from chaos.core.errors import ConfigError, StackError
from chaos.targets import health
from chaos.targets.base import Progress, ServiceStatus
from chaos.core.target import Target
from chaos.targets.state import StackState


def stack_id(target: Target) -> str:
    return "target-" + re.sub(r"[^A-Za-z0-9_.-]", "_", target.name)


def attach(target: Target | str | Path) -> StackState:
    """The stack state of a described target (saved, so the watchdog can find it)."""
    if not isinstance(target, Target):
        from chaos.targets.file import load
        target = load(target)
    state = StackState(stack_id(target), target.runtime, target.profile,
                       dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), target,
                       {"external": True})
    state.save()
    return state


def is_external(state: StackState) -> bool:
    return bool(state.runtime_state.get("external"))


class ExternalRuntime:
    """Status of a described target's services; ``up`` and ``down`` are the user's own."""

    def __init__(self, stack_id: str = "") -> None:
        self.stack_id = stack_id

    def preflight(self, topo: Target) -> None:
        raise ConfigError(f"target {topo.name} is started and stopped by you, not by "
                          "`chaos stack up`; the framework only probes and faults it")

    up = preflight

    def down(self, topo: Target, runtime_state: dict, progress: Progress) -> list[str]:
        return []

    def status(self, topo: Target, runtime_state: dict) -> list[ServiceStatus]:
        containers: dict[str, list] = {}
        if topo.runtime == "docker":
            containers = self._containers(topo)
        out = []
        for svc in sorted(topo.services.values(), key=lambda s: (s.dc or "", s.name)):
            where = svc.public or svc.address
            found = containers.get(svc.name)
            if found is not None:
                running = [c for c in found if c.status == "running"]
                if not running:
                    states = ", ".join(sorted({c.status for c in found})) or "no container"
                    out.append(ServiceStatus(svc.name, svc.kind, svc.dc, False, where,
                                             "not running" if not found else states))
                    continue
            if svc.health or (svc.address and topo.runtime == "local"):
                ok, detail = health.check(svc) if svc.health else _reachable(svc.address)
            else:
                ok, detail = True, "running"
            out.append(ServiceStatus(svc.name, svc.kind, svc.dc, ok, where, detail))
        return out

    def _containers(self, topo: Target) -> dict[str, list]:
        from chaos.targets.docker import containers_of
        from chaos.targets.images import docker_client
        state = StackState(self.stack_id, topo.runtime, topo.profile, "", topo, {"external": True})
        client = docker_client(timeout=10)
        try:
            return {name: containers_of(client, state, name)
                    for name, svc in topo.services.items() if svc.labels}
        except Exception as e:  # noqa: BLE001 - an engine problem is the stack's, in words
            raise StackError(f"target {topo.name}: docker did not list its containers: {e}") from None
        finally:
            client.close()


def _reachable(address: str) -> tuple[bool, str]:
    import socket
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
            return True, "accepts connections"
    except OSError as e:
        return False, f"unreachable ({e})"
