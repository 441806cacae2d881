"""The adapter registry and the typed ``Adapter`` protocol (chaos.adapters.base): every
registered adapter is one class implementing every member, with the protocol's
signatures; a capability it lacks is a typed answer, never a missing attribute."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from chaos import adapters
from chaos.adapters import base
from chaos.adapters.httpstream import ExternalFeed, HttpStreamAdapter
from chaos.adapters.httpstream.endpoints import StreamEndpoints
from chaos.adapters.httpstream.speaker import StreamSpeaker
from chaos.core.errors import ConfigError
from chaos.core.slo import DEFAULTS
from chaos.core.storm import StormOptions
from chaos.targets.file import load as load_target

ROOT = Path(__file__).resolve().parents[2]
EP = StreamEndpoints("/live.opus", {"dc-a": "127.0.0.1:1"}, source="127.0.0.1:2")


def _members(proto: type) -> dict[str, object]:
    """The protocol's own members (methods, properties and declared attributes), through
    its bases up to ``Protocol``."""
    out: dict[str, object] = {}
    for cls in reversed(proto.__mro__):
        if cls is object or not getattr(cls, "_is_protocol", False) or cls.__module__ == "typing":
            continue
        for name in cls.__dict__.get("__annotations__", {}):
            out[name] = None
        for name, value in vars(cls).items():
            if not name.startswith("_") and (callable(value) or isinstance(value, property)):
                out[name] = value
    return out


PROTOCOL = _members(base.Adapter)


@pytest.fixture(params=adapters.names())
def adapter(request):
    return adapters.get(request.param)


def test_the_protocol_declares_every_capability_the_session_asks_for():
    assert set(PROTOCOL) == {
        "name", "open_room", "new_speaker", "warm_up", "new_listener", "new_analyst",
        "new_join_probe", "storms", "storm_routes", "storm_client", "crowd_in_processes",
        "slo_notes", "slo_defaults"}
    # a speaker-side and a listener-side adapter can be different objects
    assert {"open_room", "new_speaker"} <= set(_members(base.SpeakerSide))
    assert not {"new_listener", "storm_client"} & set(_members(base.SpeakerSide))
    assert {"new_listener", "new_analyst", "new_join_probe", "storm_client", "storms",
            "crowd_in_processes", "warm_up"} <= set(_members(base.ListenerSide))


def test_each_registered_adapter_implements_every_member(adapter):
    cls = type(adapter)
    assert isinstance(adapter, base.Adapter) and not inspect.isabstract(cls)
    assert adapters.get(adapter.name) is adapter     # registered under its own name
    for name, declared in PROTOCOL.items():
        assert hasattr(adapter, name), f"{cls.__name__} lacks {name}"
        if not callable(declared):
            continue
        got = getattr(cls, name)
        assert inspect.iscoroutinefunction(got) == inspect.iscoroutinefunction(declared), name
        want = list(inspect.signature(declared).parameters)
        have = list(inspect.signature(got).parameters)
        assert have[:len(want)] == want, f"{cls.__name__}.{name}{have} is not {want}"
        extra = inspect.signature(got).parameters
        assert all(extra[p].default is not inspect.Parameter.empty for p in have[len(want):]), \
            f"{cls.__name__}.{name}: a parameter the protocol does not pass needs a default"
    assert isinstance(adapter.storms, bool) and isinstance(adapter.crowd_in_processes, bool)


def test_get_returns_one_adapter_per_protocol_and_refuses_unknown_ones():
    assert adapters.get("http-stream") is adapters.get("http-stream")
    assert isinstance(adapters.get("http-stream"), HttpStreamAdapter)
    with pytest.raises(ConfigError, match="unknown audio protocol 'webrtc'.*space, http-stream"):
        adapters.get("webrtc")


def test_importing_the_registry_loads_no_adapter():
    code = ("import sys, chaos.adapters as a; "
            "print(sorted(m for m in sys.modules if m.startswith(('chaos.adapters.', 'aiohttp', 'numpy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "['chaos.adapters.base']"


class _Quiet(base.Adapter):
    """An adapter with only what the protocol requires: the defaults answer the rest."""

    name = "quiet"

    async def open_room(self, session, target, room):
        return room

    def new_speaker(self, session, target, room, retry, seed=0):
        raise NotImplementedError

    def new_listener(self, session, index, dc, target, room, speaker_id, retry,
                     join_timeout_s, thick=False, bins=None, analyst=None):
        return ("listener", index, dc, thick, bins)

    def new_analyst(self, produced, seed, run_start_ns):
        raise NotImplementedError


def test_the_defaults_of_an_adapter_that_declares_only_what_it_must():
    q = _Quiet()
    assert not q.storms and not q.crowd_in_processes
    assert asyncio.run(q.warm_up(None, None, "r")) == {}
    assert q.slo_notes(None) == {} and q.slo_defaults() is DEFAULTS
    assert q.new_join_probe(None, 7, "dc-b", None, "r", "spk", None, 2.0) == \
        ("listener", 7, "dc-b", False, None)
    with pytest.raises(ConfigError, match="quiet adapter has no join storm client"):
        q.storm_routes(None, StormOptions())
    with pytest.raises(ConfigError, match="quiet adapter has no join storm client"):
        q.storm_client(None)


def test_an_adapter_missing_a_required_member_cannot_be_made():
    class Mute(base.Adapter):
        name = "mute"

        async def open_room(self, session, target, room):
            return room

    with pytest.raises(TypeError, match="new_listener"):
        Mute()


def test_storm_routes_asks_the_targets_adapter_and_names_it():
    target = load_target(ROOT / "fixtures/icecast/chaos-target.yaml")
    where = adapters.storm_routes(target, StormOptions())
    assert where["adapter"] == "http-stream" and set(where["gateways"]) == set(target.dcs)


def test_the_space_adapters_default_warm_up_and_notes():
    space = adapters.get("space")
    assert asyncio.run(space.warm_up(None, None, "r")) == {}
    assert space.slo_notes(None) == {} and space.slo_defaults() is DEFAULTS


# --- the http-stream speaker's echo: what cannot be played says what to write ------------------

def test_an_echo_an_icecast_mount_cannot_play_is_a_config_error_that_says_what_to_write():
    spk = StreamSpeaker(EP)
    with pytest.raises(ConfigError, match="write mode: hot_mic"):
        spk.set_echo(0.2, 0.5, mode="double")
    with pytest.raises(ConfigError, match="write mode: hot_mic"):
        spk.twin(f"{spk.id}.echo")
    with pytest.raises(ConfigError, match="echo delay 2 s: use more than 0 and at most 1 s"):
        spk.set_echo(2.0, 0.5)
    with pytest.raises(ConfigError, match="echo gain 1.5: use 0 to 1"):
        spk.set_echo(0.2, 1.5)


def test_a_stream_fed_by_something_else_refuses_an_echo_and_has_none_to_clear():
    feed = ExternalFeed(StreamEndpoints("/live.opus", {"dc-a": "127.0.0.1:1"}))
    with pytest.raises(ConfigError, match="feed: speaker"):
        feed.set_echo(0.2, 0.5)
    with pytest.raises(ConfigError, match="no speaker of ours"):
        feed.twin("x.echo")

    async def clear():
        return await feed.clear_echo()

    assert asyncio.run(clear()) is None and feed.echo is None
