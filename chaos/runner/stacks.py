"""The stack a session of experiments runs against, by runtime and profile.

A stack already up with the wanted runtime and profile is used as it is and left up. A
different profile is needed: the stack this session started is taken down and one of
that profile started; a stack someone else started is never taken down (a clear error
says so). At the end, the session takes down only what it started.
"""

from __future__ import annotations

from ..adapters.space.reference import DEFAULT_BASE_PORT

from .. import stack
from ..errors import StackAlreadyUp
from ..targets.state import StackState


class SessionStacks:
    def __init__(self, runtime: str, progress=stack.quiet, base_port: int | None = None) -> None:
        self.runtime, self.progress = runtime, progress
        self.base_port = base_port or DEFAULT_BASE_PORT
        self.ours: str | None = None       # stack_id of the stack this session started

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
                    "matching --runtime/--stack-profile.")
            self.progress(f"switching the stack to the {profile} profile")
            stack.down(self.progress)
        state = stack.up(self.runtime, profile, self.base_port, progress=self.progress)
        self.ours = state.stack_id
        return state

    def close(self) -> None:
        existing = StackState.load()
        if self.ours is not None and existing is not None and existing.stack_id == self.ours:
            stack.down(self.progress)
        self.ours = None


def _alive(state: StackState) -> bool:
    return any(r.detail != "not running" for r in stack.status(state))
