"""Bring the reference stack up, report on it, take it down: one stack at a time.

This is what `chaos stack ...` and the pytest plugin call. The runtimes do the work;
this module keeps the state file honest (written only once the stack is healthy, removed
only once everything is gone).
"""

from __future__ import annotations

import datetime as _dt
import uuid

from chaos.adapters.space.reference import DEFAULT_BASE_PORT, PROFILES, RUNTIMES, build

from chaos.core.errors import ConfigError, StackAlreadyUp, StackError, StackNotUp, StateDamaged
from chaos.targets.base import Progress, ServiceStatus, quiet
from chaos.targets.state import StackState, write_atomic

DEFAULT_UP_TIMEOUT_S = {"local": 45.0, "docker": 240.0}


def runtime_for(name: str, stack_id: str = ""):
    if stack_id.startswith("target-"):     # a described stack: the user runs it
        from chaos.targets.external import ExternalRuntime
        return ExternalRuntime(stack_id)
    from chaos.targets.runtimes import by_name
    return by_name(name, stack_id)


def _validate(runtime: str, profile: str, base_port: int) -> None:
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; use one of: {', '.join(RUNTIMES)}")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; use one of: {', '.join(PROFILES)}")
    if not 1024 <= base_port <= 64535:
        raise ConfigError(f"--base-port {base_port} is out of range; use 1024 to 64535 "
                          "(the stack uses about 520 ports above it)")


def _validate_units(runtime: str, gateways_per_dc: int, edges_per_dc: int) -> None:
    from chaos.adapters.space.reference import MAX_PER_DC
    for what, n in (("gateways_per_dc", gateways_per_dc), ("edges_per_dc", edges_per_dc)):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PER_DC:
            raise ConfigError(f"{what} must be a whole number from 1 to {MAX_PER_DC}, got {n!r}")
    if runtime != "local" and (gateways_per_dc > 1 or edges_per_dc > 1):
        raise ConfigError(f"more than one gateway or edge per DC runs on the local runtime only "
                          f"(the {runtime} stack has one of each per DC); leave gateways_per_dc "
                          "and edges_per_dc at 1, or use the local runtime")


def up(runtime: str = "local", profile: str = "resilient", base_port: int = DEFAULT_BASE_PORT,
       timeout_s: float | None = None, progress: Progress = quiet, *, gateways_per_dc: int = 1,
       edges_per_dc: int = 1) -> StackState:
    _validate(runtime, profile, base_port)
    _validate_units(runtime, gateways_per_dc, edges_per_dc)
    existing = StackState.load()
    if existing is not None:
        rt = runtime_for(existing.runtime, existing.stack_id)
        alive = [s for s in rt.status(existing.topology, existing.runtime_state)
                 if s.detail != "not running"]
        if alive:
            raise StackAlreadyUp(
                f"a stack is already up ({existing.runtime}, {existing.profile}, since "
                f"{existing.started_at}, {len(alive)} services running). Run `chaos stack down` "
                "first, or use it as it is.")
        progress(f"removing the state of a stack that is no longer running ({existing.stack_id})")
        rt.down(existing.topology, existing.runtime_state, progress)
        StackState.clear()
    topo = build(runtime, profile, base_port, gateways_per_dc, edges_per_dc)
    stack_id = f"space-{uuid.uuid4().hex[:8]}"
    rt = runtime_for(runtime, stack_id)
    rt.preflight(topo)
    if runtime == "docker":  # before up: a crash mid-way still leaves a claim to sweep
        write_atomic(_docker_claim(), stack_id)
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    runtime_state = rt.up(topo, timeout_s or DEFAULT_UP_TIMEOUT_S[runtime], progress)
    state = StackState(stack_id, runtime, profile, started_at, topo, runtime_state)
    try:
        state.save()
    except BaseException:
        rt.down(topo, runtime_state, progress)
        raise
    return state


def current(target: str | None = None) -> StackState:
    """The stack commands act on: a described target (its file), else the reference stack
    that `chaos stack up` started."""
    if target is not None:
        from chaos.targets.external import attach
        from chaos.targets.file import check_live
        state = attach(target)
        check_live(state.topology)
        return state
    state = StackState.load()
    if state is None:
        raise StackNotUp("no stack is up. Start one with `chaos stack up` "
                         "(add --runtime docker for the dockerised stack).")
    return state


def status(state: StackState | None = None) -> list[ServiceStatus]:
    state = state or current()
    return runtime_for(state.runtime, state.stack_id).status(state.topology, state.runtime_state)


def down(progress: Progress = quiet) -> list[str]:
    try:
        state = StackState.load()
    except StateDamaged as e:   # it cannot say what is up: sweep what was started from here
        progress(str(e).split(". It cannot")[0])
        aside = StackState.set_aside()
        return sweep_orphans(progress) + ([f"the damaged state file (kept as {aside})"] if aside else [])
    if state is None:
        return sweep_orphans(progress)
    removed = runtime_for(state.runtime, state.stack_id).down(
        state.topology, state.runtime_state, progress)
    StackState.clear()
    _docker_claim().unlink(missing_ok=True)
    return removed


def _docker_claim():
    """The id of the docker stack started from this CHAOS_HOME (the engine is machine-wide)."""
    from chaos.targets.state import home
    return home() / "docker-stack-id"


def sweep_orphans(progress: Progress = quiet) -> list[str]:
    """What a crashed run left with no state file: labelled processes started from this
    CHAOS_HOME, and the docker stack if it was started from this CHAOS_HOME."""
    from chaos.targets import procs
    from chaos.targets.state import home

    removed = []
    orphans = procs.find_under(home() / "local")
    if orphans:
        progress(f"stopping {len(orphans)} orphaned processes of stack(s) "
                 f"{', '.join(sorted(set(orphans.values())))}")
        removed += [f"orphaned process (pid {pid}) of {orphans[pid]}"
                    for pid in procs.terminate(list(orphans))]
    claim = _docker_claim()
    if claim.exists():  # only a docker stack started from here is ours to sweep
        try:
            from chaos.targets.docker import DockerRuntime, has_labelled_containers
            if has_labelled_containers(stack_id=claim.read_text().strip()):
                progress("removing orphaned containers of the docker stack started from here")
                removed += DockerRuntime().down(build("docker", "resilient"), {}, progress)
            claim.unlink(missing_ok=True)
        except StackError as e:  # no engine, no compose: nothing of ours can be running there
            progress(f"docker not checked: {e}")
    return removed


def require_healthy(state: StackState) -> None:
    sick = [s for s in status(state) if not s.healthy]
    if sick:
        raise StackError("the stack is not healthy: "
                         + "; ".join(f"{s.name} ({s.detail or 'unhealthy'})" for s in sick)
                         + ". See `chaos stack status`; `chaos stack down` and `up` to restart it.")


def wait_healthy(state: StackState, within_s: float, poll_s: float = 1.0) -> None:
    """Until every service is healthy, at most ``within_s``; then as ``require_healthy``."""
    import time
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if all(s.healthy for s in status(state)):
                return
        except StackError:
            pass
        time.sleep(poll_s)
    require_healthy(state)
