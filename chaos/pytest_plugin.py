"""pytest glue: `pytest experiments/ [--runtime local|docker]`.

Thin on purpose: options and fixtures only; the framework does the work. Nothing heavy
is imported until a fixture is used.
"""

from __future__ import annotations

import pytest

RUNTIMES = ("local", "docker")
PROFILES = ("resilient", "fragile")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "chaos experiments against the reference space stack")
    group.addoption("--runtime", dest="chaos_runtime", default=None, choices=RUNTIMES,
                    help="runtime of the stack under test (default: local; ini: chaos_runtime)")
    group.addoption("--stack-profile", dest="chaos_profile", default=None, choices=PROFILES,
                    help="stack profile (default: resilient; ini: chaos_profile)")
    parser.addini("chaos_runtime", "default runtime of the stack under test", default="local")
    parser.addini("chaos_profile", "default stack profile", default="resilient")


def _setting(config: pytest.Config, name: str, accepted: tuple[str, ...]) -> str:
    value = config.getoption(f"chaos_{name}") or config.getini(f"chaos_{name}")
    if value not in accepted:
        raise pytest.UsageError(f"Invalid {name} {value!r} from the ini file (chaos_{name}); "
                                f"use one of: {', '.join(accepted)}")
    return value


@pytest.fixture(scope="session")
def chaos_runtime(pytestconfig: pytest.Config) -> str:
    return _setting(pytestconfig, "runtime", RUNTIMES)


@pytest.fixture(scope="session")
def space_stack(pytestconfig: pytest.Config, chaos_runtime: str):
    """The stack under test: the one already up if it matches, else one started for the session."""
    from chaos import stack
    from chaos.targets.state import StackState

    profile = _setting(pytestconfig, "profile", PROFILES)
    existing = StackState.load()
    if existing and existing.runtime == chaos_runtime and existing.profile == profile:
        rows = stack.status(existing)
        if any(r.detail != "not running" for r in rows):  # else stale: up() clears it
            stack.require_healthy(existing)
            yield existing
            return
    state = stack.up(chaos_runtime, profile)
    try:
        yield state
    finally:
        stack.down()
