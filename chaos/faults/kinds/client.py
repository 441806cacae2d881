"""The client-side faults: ``echo`` and ``join_storm``, played by the run's own clients.

Nothing on the stack is touched: the probe's speaker plays the echo, the load generator
fires the storm (mechanism ``client``, see exec_client.py). So they can only run while a
probe or experiment run has its clients attached (``chaos.session.clients.SessionClients``),
and a revert with no run attached has nothing to undo.

- ``echo``: ``mode`` ``hot_mic`` (the speaker's microphone hears its own playback: it
  publishes its signal plus ``gain_db`` x its signal ``delay_ms`` earlier, mixed in PCM
  before the Opus encoder) or ``double`` (the speaker is published twice: a second
  publisher, its own connection and speaker id, sends the signal ``delay_ms`` later at
  ``gain_db``, and the origin's mixer adds them). Target: the speaker.
- ``join_storm``: listeners arrive open-loop at ``rate`` joins/s (Poisson), plus
  ``burst`` joins at once ``burst_at_s`` after the start, from the inject to the revert
  (at most MAX_STORM_S); each stays ``hold_s`` (0: leaves once it heard the speaker) or
  until the fault ends; ``retry`` is the clients' policy (``profile``: the stack
  profile's; the others with a 0.1 s base and a 2 s cap). Bounded: at most
  ``rate`` x MAX_STORM_S + ``burst`` arrivals, against loopback addresses only. Target:
  the arriving audience.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from chaos.core.retry import KINDS as RETRY_KINDS
from chaos.core.target import Target

from chaos.core.errors import ConfigError
from chaos.faults.base import Action, Param, Selector, register

RUNTIMES = ("local", "docker")
MAX_STORM_S = 600.0       # a storm's schedule: the revert ends it sooner
MAX_RATE = 2000.0         # joins/s; this machine's stack saturates near 300
RETRY_CHOICES = (*RETRY_KINDS, "profile")


def client_target(kind: str, target: Selector, who: str, names: tuple[str, ...]) -> None:
    """A client fault's selector may name only the client (or nothing): a service, link or
    DC of the stack is refused."""
    stack_part = target.link is not None or target.dc is not None or (
        target.service is not None and target.service not in names)
    if stack_part or str(target.count) not in ("all", "one", "1"):
        raise ConfigError(
            f"{kind} is played by the run's own {who}, client-side, not by the stack; the "
            f"selector ({target.describe()}) names a part of the stack or a blast radius: "
            f"leave it empty (or service={names[0]!r}). To hurt a service or link, use a "
            "network fault (latency, packet_drop, link_down, ...)")


@register
class Echo:
    name = "echo"
    params: ClassVar[dict[str, Param]] = {
        "delay_ms": Param(float, 30, 1000, default=200, unit="ms"),
        "gain_db": Param(float, -40, 0, default=-6, unit="dB"),
        "mode": Param(str, choices=("hot_mic", "double"), default="hot_mic"),
    }
    runtimes: ClassVar[tuple[str, ...]] = RUNTIMES

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        client_target(self.name, target, "speaker", ("speaker",))
        return [Action(self.name, fault_id, "client", "speaker", None, dict(params))]


@register
class JoinStorm:
    name = "join_storm"
    params: ClassVar[dict[str, Param]] = {
        "rate": Param(float, 0.1, MAX_RATE, default=50, unit="joins/s"),
        "burst": Param(int, 0, 20_000, default=0, unit="joins"),
        "burst_at_s": Param(float, 0, MAX_STORM_S, default=0, unit="s"),
        "hold_s": Param(float, 0, MAX_STORM_S, default=0, unit="s"),
        "retry": Param(str, choices=RETRY_CHOICES, default="profile"),
    }
    runtimes: ClassVar[tuple[str, ...]] = RUNTIMES

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        client_target(self.name, target, "listeners", ("listener", "audience"))
        from chaos.adapters import storm_routes as routes
        from chaos.core.storm import StormOptions
        try:
            where = routes(topo, StormOptions())
        except ConfigError as e:
            raise ConfigError(f"join_storm: {e}") from None
        addresses = sorted({a for entry in where["gateways"].values() for a in entry})
        far = [a for a in addresses if not _loopback(a)]
        if not addresses or far:
            raise ConfigError("join_storm fires only at a stack on this machine (loopback "
                              "addresses); these addresses the arrivals join at are not: "
                              f"{', '.join(far) or 'none published'}")
        return [Action(self.name, fault_id, "client", "audience", None,
                       {**params, "max_s": MAX_STORM_S})]


def _loopback(address: str | None) -> bool:
    if not address:
        return False
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
