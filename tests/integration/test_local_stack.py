"""What only the local runtime does: ports, labelled processes, cleaning up after a crash."""

from __future__ import annotations

import socket

import pytest

from chaos.targets import stack
from chaos.core.errors import PortInUse
from chaos.targets import procs
from chaos.targets.state import StackState

from .conftest import bring_up, port_free

pytestmark = [pytest.mark.local, pytest.mark.timeout(180)]


def test_a_taken_port_is_reported_and_nothing_is_left_half_started(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    other = 23000
    blocker = socket.socket()
    blocker.bind(("127.0.2.20", other + 100))  # edge-b of that stack, held by someone else
    blocker.listen(1)
    try:
        with pytest.raises(PortInUse, match=r"127\.0\.2\.20:23100.*--base-port"):
            stack.up("local", "resilient", other)
        assert StackState.load() is None
    finally:
        blocker.close()
    assert port_free("127.0.1.10:23080"), "no gateway of the refused stack was started"


def test_down_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    state = bring_up("local", "fragile", 22000)
    addresses = [s.bind for s in state.topology.services.values()]
    removed = stack.down()
    assert any("gateway-a" in r for r in removed)
    assert procs.find_labelled(state.stack_id) == []
    assert StackState.load() is None
    assert all(port_free(a) for a in addresses)
    assert stack.down() == [], "down with nothing up is a no-op"


def test_down_after_a_crash_removes_the_orphans_of_this_home_only(tmp_path, monkeypatch):
    other_home = tmp_path / "other"
    monkeypatch.setenv("CHAOS_HOME", str(other_home))
    bystander = bring_up("local", "fragile", 23400)   # another home's stack: not an orphan here
    try:
        monkeypatch.setenv("CHAOS_HOME", str(tmp_path / "mine"))
        crashed = bring_up("local", "fragile", 22500)
        StackState.clear()                              # the runner died: no state file
        removed = stack.down()
        assert len([r for r in removed if "orphaned process" in r]) == len(crashed.topology.services)
        assert procs.find_labelled(crashed.stack_id) == []
        assert len(procs.find_labelled(bystander.stack_id)) == len(bystander.topology.services)
    finally:
        monkeypatch.setenv("CHAOS_HOME", str(other_home))
        stack.down()
