"""The suite's own settings (not the plugin's: a user's project gets none of this).

Layers as markers, given by where a test lives (so no test can forget one):

- ``unit``: tests/unit, no stack, no network beyond loopback sockets it opens itself;
- ``integration``: tests/integration, against real stacks (``local`` and ``docker`` say which);
- ``experiments``: experiments/, the canaries against the embedded stack.

``pytest -m unit`` is the developer's loop; ``pytest -m "not docker"`` skips the engine. The
README's Development section lists them with their times.

Two workers (``pytest -n 2``, pytest-xdist; the README's test command): tests that share
something run on one worker, one after the other, as one group (this file's scheduler,
``SuiteScheduling``; xdist's own ``xdist_group`` marks do not reach its scheduler under
pytest 9):

- everything that uses the docker engine (one engine, its stacks on port 17000, the Icecast
  fixture's fixed ports, swarm is the machine's), in group ``docker``;
- an integration module's tests (they share its stack, on the module's own ports), and
  modules whose stacks' ports overlap (a stack uses its base port + 80 to + 540);
- an experiment file's tests (they share the worker's session stack);
- a unit test file's tests (cheap to keep together).

Some tests measure what the machine can do (capacity, a starved probe, hundreds of listeners
on two cores): marked ``quiet`` (their groups in ``_QUIET``), each runs with the machine to
itself. Every test of a worker holds a shared lock on one file while it runs, a quiet one an
exclusive lock: a quiet test waits for the other worker's test to end, and the other worker
waits for it (at most ``QUIET_WAIT_S``; then it runs anyway and says so).

Each worker has its own embedded reference stack (the plugin gives each worker its own
CHAOS_HOME and base port: 15000 and 15600 here, set in pyproject.toml; no test module uses
those), and ``chaos_xdist_grouped`` tells the plugin this scheduler keeps a described target's
tests (the Icecast fixture) on one worker. Groups start longest first (bench/suite_times.json,
measured by bench/suite_times.py), so the run does not end waiting on one long group.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent
_LAYERS = {("tests", "unit"): "unit", ("tests", "integration"): "integration",
           ("experiments",): "experiments"}
# integration modules that use the docker engine (or ports its stacks publish)
_DOCKER = {"test_docker_stack", "test_experiments_docker", "test_faults_dc", "test_faults_network",
           "test_icecast", "test_scale", "test_stack_behaviour"}
# integration modules whose stacks' port ranges overlap: one group
_SHARED_PORTS = {"test_gameday": "ports-22000", "test_local_stack": "ports-22000",
                 "test_probe_limits": "ports-26000", "test_probe_slos": "ports-26000",
                 "test_space_services": "ports-27000", "test_thick_listener": "ports-27000",
                 "test_explore_local": "ports-27000"}
# groups whose tests measure the machine's capacity or starve it on purpose: run alone
_QUIET = {"ports-26000", "test_load_storm", "experiments/test_readiness", "experiments/test_join_storm"}
QUIET_WAIT_S = 600.0
WORKERS = 2     # the port plan: 15000 and 15600 for the workers' embedded stacks, 16200 in use
_TIMES = _ROOT / "bench" / "suite_times.json"


def _parts(path: Path) -> tuple[str, ...]:
    try:
        return path.resolve().relative_to(_ROOT).parts
    except ValueError:
        return ()


def _layer(parts: tuple[str, ...]) -> str | None:
    for prefix, name in _LAYERS.items():
        if parts[:len(prefix)] == prefix:
            return name
    return None


def _group(parts: tuple[str, ...], layer: str | None) -> str | None:
    """The group of a test that shares a stack or ports (None: it shares nothing)."""
    if layer == "integration":
        module = Path(parts[-1]).stem
        return "docker" if module in _DOCKER else _SHARED_PORTS.get(module, module)
    if layer == "experiments":
        return "docker" if "icecast" in parts else "experiments/" + Path(parts[-1]).stem
    return None


def _unit_of(nodeid: str) -> str:
    """The scheduling unit of a test id: its group, else its file."""
    path = nodeid.split("::", 1)[0]
    parts = _parts(_ROOT / path)
    return _group(parts, _layer(parts)) or path


def _worker() -> int | None:
    name = os.environ.get("PYTEST_XDIST_WORKER")      # gw0, gw1, ...
    return int(name[2:]) if name and name[2:].isdigit() else None


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Under -n: each group whole to one worker, in collection order (longest first)."""
    from xdist.scheduler import LoadScopeScheduling

    class SuiteScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit_of(nodeid)

    config.option.loadscopereorder = False
    return SuiteScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    index = _worker()
    if index is None:
        return
    if index >= WORKERS:
        raise pytest.UsageError(f"the suite's port plan fits {WORKERS} workers: run it with "
                                f"-n {WORKERS} or fewer")


@pytest.fixture(autouse=True)
def _machine_share(request: pytest.FixtureRequest):
    """Under -n: a shared lock for every test while it runs, an exclusive one for a quiet one."""
    if _worker() is None:
        yield
        return
    import fcntl
    import time
    import warnings
    quiet = request.node.get_closest_marker("quiet") is not None
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")
    lock = Path(tempfile.gettempdir()) / f"chaos-suite-{run}.lock"
    want = lock.with_suffix(f".want-{os.environ['PYTEST_XDIST_WORKER']}")   # a quiet test waits
    with open(lock, "a+") as f:
        mode = fcntl.LOCK_EX if quiet else fcntl.LOCK_SH
        deadline = time.monotonic() + QUIET_WAIT_S
        if quiet:
            want.touch()          # no other test starts now: the one running ends, then this runs
        try:
            while True:
                try:
                    if not quiet and any(lock.parent.glob(lock.name.replace(".lock", ".want-*"))):
                        raise BlockingIOError
                    fcntl.flock(f, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        warnings.warn(f"{request.node.nodeid}: waited {QUIET_WAIT_S:g} s for "
                                      + ("the machine to itself" if quiet else "a quiet test")
                                      + "; running beside the other worker")
                        break
                    time.sleep(0.05)
        finally:
            if quiet:
                want.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _measured() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(_TIMES.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups: dict[int, str] = {}
    for i, item in enumerate(items):
        parts = _parts(Path(str(item.fspath)))
        layer = _layer(parts)
        if layer is not None:
            item.add_marker(getattr(pytest.mark, layer))
        group = _group(parts, layer)
        if group is not None:
            groups[i] = group
            if group in _QUIET:
                item.add_marker(pytest.mark.quiet)
    if _worker() is None:       # one process: collection order (unit, integration, experiments)
        return
    # longest group first; the rest (unit files) last, as the filler; order kept within each
    times = _measured()
    rank = {i: -times.get(groups[i], 60.0) if i in groups else 0.0 for i in range(len(items))}
    order = sorted(range(len(items)), key=lambda i: (rank[i], i))
    items[:] = [items[i] for i in order]
