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


class RunbookError(ConfigError):
    """A runbook that cannot run; says where (file, line, column, field) and what to write."""

    def __init__(self, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    @property
    def line(self) -> int | None:
        return self.problems[0].get("line") if self.problems else None


class ToxiproxyError(ChaosError):
    """The toxiproxy server refused or failed a request."""


class ToxiproxyTimeout(ToxiproxyError):
    """The toxiproxy server did not answer in time."""


class IptablesError(ChaosError):
    """A packet-drop rule could not be added or removed (iptables, nsenter)."""


class FaultError(ChaosError):
    """A fault could not be injected or reverted."""


class UnknownMechanism(FaultError):
    """An action names a mechanism no executor carries out (a plan or a ledger entry from
    another version of the framework)."""


class CpuFaultError(ChaosError):
    """A CPU limit could not be set or lifted."""


class YamlError(ConfigError):
    """Not valid YAML: ``problem`` at ``line``/``column`` (1-based) of ``source``."""

    def __init__(self, source: str, problem: str, line: int | None = None,
                 column: int | None = None) -> None:
        at = f"{source}:{line}:{column}" if line is not None else source
        super().__init__(f"{at}: {problem}")
        self.source, self.problem, self.line, self.column = source, problem, line, column


class ScheduleBroke(AssertionError):
    """A drawn schedule broke a required SLO."""
