"""Several gateways and edges per DC (`chaos stack up --gateways-per-dc N --edges-per-dc N`):
names, addresses and links, with the first of each keeping its name and ports."""

from __future__ import annotations

import pytest

from chaos.targets import stack
from chaos.adapters.space.reference import build, per_dc, topology
from chaos.core.errors import ConfigError
from chaos.load.worker import WorkerSpec
from chaos.core.storm import StormOptions


def test_more_units_keep_the_first_ones_as_they_were():
    one, many = build("local", "resilient", 26000), build("local", "resilient", 26000, 2, 3)
    for name, s in one.services.items():
        assert many.services[name].address == s.address
    for name, lk in one.links.items():
        assert many.links[name].connect == lk.connect       # existing links keep their ports
    assert {s.name for s in many.of_kind("edge") if s.dc == "dc-b"} == {"edge-b", "edge-b2", "edge-b3"}
    assert {s.name for s in many.of_kind("gateway") if s.dc == "dc-c"} == {"gateway-c", "gateway-c2"}
    addrs = [s.address for s in many.services.values()]
    assert len(addrs) == len(set(addrs))
    ports = [lk.listen for lk in many.links.values()]
    assert len(ports) == len(set(ports))
    assert {"listener.edge-a3", "edge-a3.origin-b", "gateway-b2.redis-a"} <= set(many.links)
    assert many.depends["gateway-b2"] == ("redis-a", "redis-b")
    assert (per_dc(many, "edge"), per_dc(many, "gateway")) == (3, 2)
    assert set(topology(many).services) == set(many.services)


@pytest.mark.parametrize("kw, says", [
    ({"edges_per_dc": 0}, "edges_per_dc must be a whole number from 1 to 9"),
    ({"gateways_per_dc": 10}, "gateways_per_dc must be a whole number from 1 to 9"),
    ({"runtime": "docker", "edges_per_dc": 2}, "local runtime only"),
])
def test_bad_counts_are_refused_before_anything_starts(kw, says, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=says):
        stack.up(kw.pop("runtime", "local"), "resilient", 26000, **kw)


def test_arrivals_spread_over_their_dcs_gateways():
    spec = WorkerSpec(0, 1, b"", {"dc-a": ("a1", "a2", "b1"), "dc-b": ("b1", "a1", "a2")}, "s", None,
                      StormOptions(), 1.0, home_gateways={"dc-a": 2, "dc-b": 1})
    # arrivals alternate DCs; dc-a's own two gateways take turns, the other DC's stay the fallback
    assert [spec.gateways_for("dc-a", i)[0] for i in (0, 2, 4, 6)] == ["a1", "a2", "a1", "a2"]
    assert spec.gateways_for("dc-a", 2) == ("a2", "a1", "b1")
    assert spec.gateways_for("dc-b", 3) == ("b1", "a1", "a2")
