"""The framework's exception tree. Every user-facing error says what, the numbers, and
what to do next."""

from __future__ import annotations


class ChaosError(Exception):
    """Root of every error the framework raises on purpose."""


class ConfigError(ChaosError):
    """Bad input: an unknown runtime, profile, flag value or declaration."""


class StackError(ChaosError):
    """The stack could not be started, reached, or stopped."""


class StackAlreadyUp(StackError):
    pass


class StackNotUp(StackError):
    pass


class EngineUnavailable(StackError):
    """The docker engine does not answer (not installed, not started, not reachable)."""


class StateDamaged(StackError):
    """A state file of the framework ($CHAOS_HOME/stack.json) cannot be read as one."""


class MissingTool(StackError):
    """A program the runtime needs (redis-server, toxiproxy-server, docker) is not installed."""


class PortInUse(StackError):
    pass


class ProbeError(ChaosError):
    """A probe could not run at all (as opposed to measuring a bad steady state)."""
