"""The stack a session of experiments runs against, by runtime and profile.

A stack already up with the wanted runtime and profile is used as it is and left up. A
different profile is needed: the stack this session started is taken down and one of
that profile started; a stack someone else started is never taken down (a clear error
says so). At the end, the session takes down only what it started.
"""

from __future__ import annotations

from chaos.adapters.space.reference import DEFAULT_BASE_PORT

from chaos.targets import stack
from chaos.core.errors import StackAlreadyUp, StackError
from chaos.targets.state import StackState


class SessionStacks:
    def __init__(self, runtime: str, progress=stack.quiet, base_port: int | None = None) -> None:
        self.runtime, self.progress = runtime, progress
        self.base_port = base_port or DEFAULT_BASE_PORT
        self.ours: str | None = None       # stack_id of the stack this session started
        self.targets: dict[str, StackState] = {}   # described targets, by file
        self.started: list = []            # described targets this session brought up

    def target(self, path: str) -> StackState:
        """A described target: attached; brought up with its own `up` command when it is
        not running and has one (and then taken down at the end, by its `down`)."""
        if path in self.targets:
            return self.targets[path]
        from chaos.targets.external import attach
        from chaos.targets.file import check_live, load
        t = load(path)
        if t.runtime == "docker":
            from chaos.targets.images import docker_client
            docker_client(timeout=10).close()     # EngineUnavailable: nothing to test against
        state = attach(t)
        if not _healthy(state) and t.commands.get("up"):
            self.progress(f"starting target {t.name}: {' '.join(t.commands['up'])}")
            self.started.append(t)
            _command(t, "up")
            stack.wait_healthy(state, float(t.commands.get("up_timeout_s", 300.0)))
        check_live(t)
        stack.require_healthy(state)
        self.targets[path] = state
        return state

    def get(self, profile: str) -> StackState:
        existing = StackState.load()
        if existing is not None and _alive(existing):
            if existing.runtime == self.runtime and existing.profile == profile:
                stack.require_healthy(existing)
                return existing
            if existing.stack_id != self.ours:
                raise StackAlreadyUp(
                    f"a {existing.runtime} stack with the {existing.profile} profile is up, and this "
                    f"experiment needs {self.runtime}/{profile}. It was not started by this pytest "
                    "session, so it is left alone: run `chaos stack down` first, or choose the "
                    "matching --chaos-runtime/--chaos-stack-profile.")
            self.progress(f"switching the stack to the {profile} profile")
            stack.down(self.progress)
        state = stack.up(self.runtime, profile, self.base_port, progress=self.progress)
        self.ours = state.stack_id
        return state

    def close(self) -> None:
        for t in reversed(self.started):
            if t.commands.get("down"):
                self.progress(f"taking target {t.name} down: {' '.join(t.commands['down'])}")
                try:
                    _command(t, "down")
                except Exception as e:  # noqa: BLE001 - the reference stack still goes down
                    self.progress(f"taking target {t.name} down failed: {e}")
        self.started.clear()
        existing = StackState.load()
        if self.ours is not None and existing is not None and existing.stack_id == self.ours:
            stack.down(self.progress)
        self.ours = None


def _healthy(state: StackState) -> bool:
    try:
        return all(r.healthy for r in stack.status(state))
    except StackError:
        return False


def _command(t, which: str) -> None:
    """A target's own up/down command, bounded in time, its output in the error if it fails."""
    import subprocess
    timeout = float(t.commands.get("up_timeout_s", 300.0))
    try:
        r = subprocess.run(t.commands[which], cwd=t.commands.get("cwd"), capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise StackError(f"target {t.name}: its {which} command failed: {e}") from None
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise StackError(f"target {t.name}: its {which} command exited {r.returncode}:\n{tail}")


def _alive(state: StackState) -> bool:
    return any(r.detail != "not running" for r in stack.status(state))
