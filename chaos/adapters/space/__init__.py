"""The ``space`` adapter: the reference stack's wire format (HTTP join API, WebSocket
audio, Opus frames that carry the speaker's sequence number and capture time).

The interface every adapter offers the probes (``chaos.probes.session``):

- ``open_room(session, target, room)``: the room our speaker talks in (created if needed);
- ``new_speaker(session, target, room, retry, seed)``: publishes the known test signal at real
  rate; ``run(stop)``, ``connected``, ``produced`` ((seq, capture_ns) per frame), ``errors``,
  ``origin``, ``id``, ``close()``;
- ``new_listener(session, index, dc, target, room, speaker_id, retry, join_timeout_s, thick)``:
  ``run(stop)`` and ``rec`` (a ``chaos.probes.record.ListenerRecord``);
- ``analyse(record, produced, seed, run_start_ns, cache)`` of a thick listener's record,
  and ``run_cache(seed)`` for what one run's analyses share;
- ``STORMS``: whether the load generator can send a join storm through it.

Only this package imports the reference stack's own package (``space``).
"""

from __future__ import annotations

from ...errors import ProbeError
from ...probes.record import Refused
from ...targets.model import Target

NAME = "space"
STORMS = True


def gateway_order(target: Target, home_dc: str) -> list[str]:
    """Gateways' public addresses, the home DC's first (what a geo-DNS would give)."""
    gws = sorted(target.of_kind("gateway"), key=lambda s: (s.dc != home_dc, s.dc or ""))
    return [g.public for g in gws if g.public]


async def open_room(session, target: Target, room: str) -> str:
    from .joinapi import create_space
    try:
        return await create_space(session, gateway_order(target, target.dcs[0]), room)
    except Refused as e:
        raise ProbeError(f"could not create a space through any gateway: {e}. "
                         "Is the stack up and healthy? See `chaos stack status`.") from e


def new_speaker(session, target: Target, room: str, retry, seed: int = 0):
    from .speaker import Speaker
    return Speaker(session, gateway_order(target, target.dcs[0]), room, retry=retry, seed=seed)


def new_listener(session, index: int, dc: str, target: Target, room: str, speaker_id: str, retry,
             join_timeout_s: float, thick: bool = False):
    if thick:
        from .thick import ThickListener as cls
    else:
        from .listener import Listener as cls
    return cls(session, index, dc, gateway_order(target, dc), room, speaker_id, retry, join_timeout_s)


def run_cache(seed: int):
    from .thick import RunCache
    return RunCache(seed)


def analyse(record, produced, *, seed: int, run_start_ns: int, cache=None):
    from .thick import analyse as _analyse
    return _analyse(record, produced, seed=seed, run_start_ns=run_start_ns, cache=cache)
