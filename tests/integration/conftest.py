"""Shared fixtures: an isolated CHAOS_HOME and a stack per module, always taken down."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from chaos.targets import stack
from chaos.targets import procs
from chaos.targets.state import StackState


def port_free(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
            return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def chaos_home(tmp_path_factory):
    old = os.environ.get("CHAOS_HOME")
    home = tmp_path_factory.mktemp("chaos-home")
    os.environ["CHAOS_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("CHAOS_HOME", None)
    else:
        os.environ["CHAOS_HOME"] = old


def bring_up(runtime: str, profile: str, base_port: int) -> StackState:
    try:
        return stack.up(runtime, profile, base_port)
    except BaseException:
        stack.down()
        raise


def kill_service(state: StackState, name: str, sig: int = signal.SIGKILL) -> int:
    """Signal one service of a local stack (checked to be ours first)."""
    for d in state.runtime_state["procs"]:
        p = procs.Proc.from_dict(d)
        if p.service == name:
            assert procs.is_ours(p, state.stack_id)
            os.kill(p.pid, sig)
            return p.pid
    raise KeyError(name)
