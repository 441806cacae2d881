import ipaddress

import pytest

from space import redisconf, topology as t


@pytest.mark.parametrize("runtime", t.RUNTIMES)
@pytest.mark.parametrize("profile", t.PROFILES)
def test_round_trips_through_json(runtime, profile):
    topo = t.build(runtime, profile)
    assert t.Topology.from_json(topo.to_json()) == topo


def test_every_inter_tier_link_goes_through_toxiproxy():
    topo = t.build("local", "resilient")
    kinds = {lk.kind for lk in topo.links.values()}
    assert kinds == {"listener_edge", "speaker_origin", "edge_origin", "gateway_redis"}
    for edge in topo.of_kind("edge"):
        for origin in topo.of_kind("origin"):
            assert topo.link(edge.name, origin.name).upstream == origin.address
    for gw in topo.of_kind("gateway"):
        assert topo.link(gw.name, "redis-a").upstream == topo.services["redis-a"].address


def test_local_dcs_have_their_own_loopback_range():
    topo = t.build("local", "resilient")
    for svc in topo.services.values():
        host = ipaddress.ip_address(svc.bind.rsplit(":", 1)[0])
        assert host.is_loopback
        if svc.dc:
            assert str(host).startswith(f"127.0.{t.DCS.index(svc.dc) + 1}.")


def test_no_two_listeners_share_an_address():
    for runtime in t.RUNTIMES:
        topo = t.build(runtime, "resilient")
        binds = [lk.listen for lk in topo.links.values()]
        if runtime == "local":
            binds += [s.bind for s in topo.services.values()]
        assert len(binds) == len(set(binds))


def test_fragile_is_the_incident_shape():
    topo = t.build("local", "fragile")
    assert [s.name for s in topo.of_kind("redis")] == ["redis-a"]
    assert [s.name for s in topo.origins()] == ["origin-a"]
    assert not topo.of_kind("sentinel")
    s = topo.settings
    assert not s.admission and s.edge_capacity is None and s.retry.kind == "fixed" and s.retry.base_s == 0


def test_docker_publishes_only_on_loopback():
    topo = t.build("docker", "resilient")
    published = [s.public for s in topo.services.values() if s.public]
    published += [lk.connect for lk in topo.links.values() if lk.src in ("listener", "speaker")]
    assert published and all(p.startswith("127.0.0.1:") for p in published)
    env = t.compose_env(topo)
    assert env["CHAOS_PORT_LISTENER_EDGE_A"] == topo.links["listener.edge-a"].connect.rsplit(":", 1)[1]


def test_ports_move_with_the_base_port():
    a, b = t.build("local", base_port=17000), t.build("local", base_port=27000)
    assert a.services["edge-a"].port + 10000 == b.services["edge-a"].port


@pytest.mark.parametrize("kw", [{"runtime": "k8s"}, {"profile": "sturdy"}, {"base_port": 80}])
def test_bad_arguments_name_the_accepted_values(kw):
    with pytest.raises(ValueError, match="use"):
        t.build(**kw)


def test_sentinel_watches_the_primary_with_a_quorum_of_two():
    topo = t.build("local", "resilient")
    conf = redisconf.render(topo, "sentinel-c")
    assert f"sentinel monitor space {topo.services['redis-a'].address.replace(':', ' ')} 2" in conf
    assert "replicaof" in redisconf.render(topo, "redis-b")
    assert "replicaof" not in redisconf.render(topo, "redis-a")
    assert topo.redis_named_at("127.0.2.40", topo.services["redis-b"].port).name == "redis-b"
    assert t.build("docker").redis_named_at("redis-b", 6379).name == "redis-b"


def test_the_frameworks_names_of_the_reference_stack_agree_with_its_package():
    # the CLI and the plugin load without the stack's package, so they keep its names too
    from chaos import pytest_plugin
    from chaos.adapters.space import reference
    assert (reference.RUNTIMES, reference.PROFILES, reference.DCS, reference.DEFAULT_BASE_PORT,
            reference.MAX_PER_DC) == (t.RUNTIMES, t.PROFILES, t.DCS, t.DEFAULT_BASE_PORT, t.MAX_PER_DC)
    assert (pytest_plugin.RUNTIMES, pytest_plugin.PROFILES) == (t.RUNTIMES, t.PROFILES)
