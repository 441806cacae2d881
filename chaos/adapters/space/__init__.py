"""The ``space`` adapter: the reference stack's wire format (HTTP join API, WebSocket
audio, Opus frames that carry the speaker's sequence number and capture time).

The interface every adapter offers the probes (``chaos.session.probe``):

- ``open_room(session, target, room)``: the room our speaker talks in (created if needed);
- ``new_speaker(session, target, room, retry, seed)``: publishes the known test signal at real
  rate; ``run(stop)``, ``connected``, ``produced`` ((seq, capture_ns) per frame), ``errors``,
  ``origin``, ``id``, ``close()``;
- ``new_listener(session, index, dc, target, room, speaker_id, retry, join_timeout_s, thick,
  bins, analyst)``: ``run(stop)`` and ``rec`` (a ``chaos.audio.record.ListenerRecord``);
  each frame heard goes to ``rec.rx.heard(seq, capture_ns, recv_ns, bins)``, the per-second
  bins of its group; a thick one also ``await finish(analyst)`` -> its report;
- ``new_analyst(produced, seed, run_start_ns)``: what a run's thick listeners' analyses
  share (``close()`` at the end);
- ``STORMS``: whether the load generator can send a join storm through it, with
  ``storm_routes(target, options)`` (where its arrivals go, as ``chaos.load.worker.WorkerSpec``
  fields) and ``storm_client(spec)`` (one worker's client, see ``chaos.load.worker``);
  ``CROWD``: whether its thin listeners can run in processes of their own
  (``chaos.session.crowd``).

Only this package imports the reference stack's own package (``space``).
"""

from __future__ import annotations

from chaos.core.errors import ProbeError
from chaos.audio.admission import Refused
from chaos.core.target import Target

NAME = "space"
STORMS = True
CROWD = True


def gateway_order(target: Target, home_dc: str) -> list[str]:
    """Gateways' public addresses, the home DC's first (what a geo-DNS would give)."""
    gws = sorted(target.of_kind("gateway"), key=lambda s: (s.dc != home_dc, s.dc or ""))
    return [g.public for g in gws if g.public]


async def open_room(session, target: Target, room: str) -> str:
    from chaos.adapters.space.joinapi import create_space
    try:
        return await create_space(session, gateway_order(target, target.dcs[0]), room)
    except Refused as e:
        raise ProbeError(f"could not create a space through any gateway: {e}. "
                         "Is the stack up and healthy? See `chaos stack status`.") from e


def new_speaker(session, target: Target, room: str, retry, seed: int = 0):
    from chaos.adapters.space.speaker import Speaker
    return Speaker(session, gateway_order(target, target.dcs[0]), room, retry=retry, seed=seed)


def new_listener(session, index: int, dc: str, target: Target, room: str, speaker_id: str, retry,
                 join_timeout_s: float, thick: bool = False, bins=None, analyst=None):
    if thick:
        from chaos.adapters.space.thick import ThickListener
        return ThickListener(session, index, dc, gateway_order(target, dc), room, speaker_id, retry,
                             join_timeout_s, bins=bins, analyst=analyst)
    from chaos.adapters.space.listener import Listener
    return Listener(session, index, dc, gateway_order(target, dc), room, speaker_id, retry,
                    join_timeout_s, bins=bins)


def new_analyst(produced, seed: int, run_start_ns: int):
    from chaos.adapters.space.thick import Analyst
    return Analyst(produced, seed, run_start_ns)


def storm_routes(target: Target, options) -> dict:
    from chaos.adapters.space.storm import routes
    return routes(target, options)


def storm_client(spec):
    from chaos.adapters.space.storm import storm_client as make
    return make(spec)
