"""The ``space`` adapter's join storm client: what one arrival of ``chaos.load`` does
against the reference stack.

``request``: ``POST /spaces/<id>/join`` to a gateway (``joinhttp``, a lean keep-alive
pool), which answers with the edge's WebSocket URL; ``connect``: the lean WebSocket to that
edge (``ThinSocket``), whose ``first_audio`` is the first frame carrying the speaker. With
no speaker (``speaker_id`` None) a listener is joined once its socket is open.
"""

from __future__ import annotations

from chaos.core.errors import ConfigError
from chaos.adapters.space.joinhttp import JoinClient
from chaos.adapters.space.thin import ThinSocket, open_socket


def routes(target, options) -> dict:
    """Where the arrivals go, as ``WorkerSpec`` fields: per home DC its gateways' public
    addresses, the home DC's first (what a geo-DNS would give); how many of them are the
    home DC's own (a DC with several gateways spreads its listeners); and, with
    ``edge_direct``, the listener links' addresses rewritten to the edges' own."""
    from chaos.adapters.space import gateway_order
    gateways = {dc: tuple(gateway_order(target, dc)) for dc in target.dcs}
    if not all(gateways.values()):
        raise ConfigError(f"target {target.name} has no gateway with a public address in "
                          f"{', '.join(dc for dc, g in gateways.items() if not g)}: a join "
                          "storm posts its joins to gateways; is it a stack's target?")
    home = {dc: sum(1 for g in target.of_kind("gateway") if g.dc == dc and g.public)
            for dc in target.dcs}
    return {"gateways": gateways, "home_gateways": home,
            "url_rewrite": _url_rewrite(target, options)}


def _url_rewrite(target, options) -> tuple[tuple[str, str], ...]:
    if not options.edge_direct:
        return ()
    if target.runtime != "local":
        raise ConfigError("edge_direct reaches the edges' own addresses, which only the local "
                          f"runtime exposes (this stack is {target.runtime}); leave it off")
    return tuple((target.link("listener", e.name).connect, e.address)
                 for e in target.of_kind("edge"))


class SpaceStormClient:
    """One worker's client (one event loop): a join request, then the edge's socket."""

    def __init__(self, spec) -> None:
        self.speaker_id = spec.speaker_id
        self.hears_audio = spec.speaker_id is not None
        self.rewrite = dict(spec.url_rewrite)
        self.joins = JoinClient(spec.space, keepalive=spec.options.http_keepalive)

    async def request(self, gateway: str, timeout_s: float) -> str:
        """The edge URL the gateway gives this listener."""
        doc = await self.joins.join(gateway, timeout_s)
        url = doc["url"]
        for link, direct in self.rewrite.items():
            if f"//{link}/" in url:
                return url.replace(f"//{link}/", f"//{direct}/", 1)
        return url

    async def connect(self, url: str, timeout_s: float) -> ThinSocket:
        return await open_socket(url, self.speaker_id, timeout_s)

    def close(self) -> None:
        self.joins.close()


def storm_client(spec) -> SpaceStormClient:
    return SpaceStormClient(spec)
