"""The ``space`` adapter: the reference stack's wire format (HTTP join API, WebSocket
audio, Opus frames that carry the speaker's sequence number and capture time).

``SpaceAdapter`` implements ``chaos.adapters.base.Adapter``: the room is a space created
through the gateways (home DC first); the speaker publishes to an origin; thin and thick
listeners join through a gateway and listen at the edge it gives; join storms post their
joins to the gateways (``storm``); thin listeners run in processes of their own (a frame
carries its capture time, so a listener needs only the speaker's id).

Only this package imports the reference stack's own package (``space``).
"""

from __future__ import annotations

from collections.abc import Sequence

from chaos.adapters.base import Adapter, StormRoutes
from chaos.core.errors import ProbeError
from chaos.audio.admission import Refused
from chaos.core.target import Target


def gateway_order(target: Target, home_dc: str) -> list[str]:
    """Gateways' public addresses, the home DC's first (what a geo-DNS would give)."""
    gws = sorted(target.of_kind("gateway"), key=lambda s: (s.dc != home_dc, s.dc or ""))
    return [g.public for g in gws if g.public]


class SpaceAdapter(Adapter):
    """The reference stack's protocol."""

    name = "space"
    storms = True
    crowd_in_processes = True

    async def open_room(self, session, target: Target, room: str) -> str:
        from chaos.adapters.space.joinapi import create_space
        try:
            return await create_space(session, gateway_order(target, target.dcs[0]), room)
        except Refused as e:
            raise ProbeError(f"could not create a space through any gateway: {e}. "
                             "Is the stack up and healthy? See `chaos stack status`.") from e

    def new_speaker(self, session, target: Target, room: str, retry, seed: int = 0):
        from chaos.adapters.space.speaker import Speaker
        return Speaker(session, gateway_order(target, target.dcs[0]), room, retry=retry, seed=seed)

    def new_listener(self, session, index: int, dc: str, target: Target, room: str,
                     speaker_id: str | None, retry, join_timeout_s: float, thick: bool = False,
                     bins=None, analyst=None):
        if thick:
            from chaos.adapters.space.thick import ThickListener
            return ThickListener(session, index, dc, gateway_order(target, dc), room, speaker_id,
                                 retry, join_timeout_s, bins=bins, analyst=analyst)
        from chaos.adapters.space.listener import Listener
        return Listener(session, index, dc, gateway_order(target, dc), room, speaker_id, retry,
                        join_timeout_s, bins=bins)

    def new_analyst(self, produced: Sequence[tuple[int, int]], seed: int, run_start_ns: int):
        from chaos.adapters.space.thick import Analyst
        return Analyst(produced, seed, run_start_ns)

    def storm_routes(self, target: Target, options) -> StormRoutes:
        from chaos.adapters.space.storm import routes
        return routes(target, options)

    def storm_client(self, spec):
        from chaos.adapters.space.storm import storm_client as make
        return make(spec)
