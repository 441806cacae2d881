"""Target description files: loaded whole, or refused with the line of every problem."""

from __future__ import annotations

import textwrap

import pytest

from chaos.core.errors import ConfigError
from chaos.faults.base import FaultSpec, Selector, plan
from chaos.report.narrative import shared_cause
from chaos.targets.file import load

GOOD = """\
name: radio
runtime: docker
toxiproxy: 127.0.0.1:21474
dcs: [dc-a, dc-b]
adapter: {protocol: space}
services:
  - {name: origin, kind: origin, dc: dc-a, find: {labels: {app: radio, role: origin}}, address: "origin:8000"}
  - {name: relay-a, kind: relay, dc: dc-a, find: {compose_project: radio, compose_service: relay-a}}
  - {name: relay-b, kind: relay, dc: dc-b, find: {labels: {app: radio, role: relay-b}}}
links:
  - {name: listener.relay-a, src: listener, dst: relay-a, connect: "127.0.0.1:21501"}
  - {name: listener.relay-b, src: listener, dst: relay-b, connect: "127.0.0.1:21502"}
  - {name: relay-b.origin, src: relay-b, dst: origin}
depends: {relay-a: [origin], relay-b: [origin]}
paths: {join: [relay], audio: [relay], speaker: [origin]}
nouns: {origin: the origin}
"""


def write(tmp_path, text: str):
    p = tmp_path / "chaos-target.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_a_whole_description_loads_into_the_model(tmp_path):
    t = load(write(tmp_path, GOOD))
    assert t.name == "radio" and t.dcs == ("dc-a", "dc-b") and t.adapter == "space"
    assert t.services["relay-a"].labels == (("com.docker.compose.project", "radio"),
                                            ("com.docker.compose.service", "relay-a"))
    assert t.services["origin"].label_filter == ["app=radio", "role=origin"]
    assert t.links["relay-b.origin"].kind == "relay_origin"
    assert t.links["listener.relay-a"].kind == "listener_relay"
    assert t.dependencies("relay-b") == ["origin"] and not t.is_reference()


@pytest.mark.parametrize("change, where, says", [
    (("depends: {relay-a: [origin], relay-b: [origin]}", "depends: {relay-a: [originn]}"),
     ":14:", "depends.relay-a[0]: unknown service 'originn'"),
    (('dst: relay-b, connect: "127.0.0.1:21502"', 'dst: relay-z, connect: "127.0.0.1:21502"'),
     ":12:", "links[1].dst: unknown service 'relay-z'"),
    (("protocol: space", "protocol: webrtc"), ":5:", "unknown protocol 'webrtc'"),
    (("kind: relay, dc: dc-b", "kind: relay, dc: dc-q"), ":9:", "services[2].dc: no DC 'dc-q'"),
    (("toxiproxy: 127.0.0.1:21474", "toxiproxy: nowhere"), ":3:", "is not host:port"),
    (("find: {labels: {app: radio, role: relay-b}}", "colour: blue"), ":9:", "unknown field"),
    (("paths: {join: [relay]", "paths: {join: [gateway]"), ":15:16:", "no service of kind 'gateway'"),
    (("dcs: [dc-a, dc-b]", "dcs: [dc-a, dc-b"), ":", "not valid YAML"),
])
def test_every_problem_is_refused_with_its_line(tmp_path, change, where, says):
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, GOOD.replace(*change)))
    assert says in str(e.value) and where in str(e.value), str(e.value)


def test_a_docker_service_without_a_way_to_find_it_is_refused(tmp_path):
    text = GOOD.replace(", find: {labels: {app: radio, role: relay-b}}", "")
    with pytest.raises(ConfigError, match=r"services\[2\]: relay-b: a docker target must say how to find"):
        load(write(tmp_path, text))


@pytest.mark.parametrize("text, says", [("", "must be a YAML mapping"), ("- a\n- b\n", "must be a YAML mapping")])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path, text, says):
    with pytest.raises(ConfigError, match=says):
        load(write(tmp_path, text))


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load(tmp_path)


def test_faults_are_planned_against_the_description(tmp_path):
    t = load(write(tmp_path, GOOD))
    actions = plan(FaultSpec("dc_loss", Selector(dc="dc-a")), t)
    assert sorted(a.target for a in actions) == ["origin", "relay-a"]
    assert [a.target for a in plan(FaultSpec("latency", Selector(link="relay-b.*"), {"latency_ms": 50}), t)] \
        == ["relay-b.origin"]
    with pytest.raises(ConfigError, match="no link of the stack matches"):
        plan(FaultSpec("latency", Selector(link="edge-*"), {"latency_ms": 50}), t)


def test_a_fault_the_description_cannot_support_is_refused(tmp_path):
    text = GOOD.replace("runtime: docker", "runtime: local")
    t = load(write(tmp_path, text))
    with pytest.raises(ConfigError, match="does not find or restart"):
        plan(FaultSpec("dc_loss", Selector(dc="dc-b")), t)
    no_toxi = load(write(tmp_path, GOOD.replace("toxiproxy: 127.0.0.1:21474\n", "").replace(
        "links:\n", "links: []\nold_links:\n", 1).split("old_links:")[0] + "depends: {relay-a: [origin]}\n"))
    with pytest.raises(ConfigError, match="no link of the stack matches|declares no toxiproxy"):
        plan(FaultSpec("link_down", Selector(link="*")), no_toxi)


def test_the_narrative_cause_comes_from_the_description(tmp_path):
    shape = load(write(tmp_path, GOOD)).shape()
    # dc-b's listeners lost audio while only dc-a's services were hit: the relay of dc-b depends on origin
    assert shared_cause(shape, "audio_delivered", ["dc-b"], {"origin", "relay-a"}) == "origin"
    assert shared_cause(shape, "join_time", ["dc-b"], {"relay-a"}) is None
    assert shape["nouns"] == {"origin": "the origin"}
