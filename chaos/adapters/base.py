"""The ``Adapter`` protocol: what every audio adapter gives the probe session, typed.

An adapter is one class per audio protocol (``SpaceAdapter``, ``HttpStreamAdapter``),
registered by its protocol's name in ``chaos.adapters`` and found with
``chaos.adapters.get(name)``. The session, the crowds and the load generator call these
members and nothing else; a capability an adapter lacks is a typed answer (``storms``
False, ``crowd_in_processes`` False, ``warm_up`` doing nothing), never a missing attribute.

The protocol comes in two halves, so that a target may one day speak through one adapter
and listen through another (WebRTC speakers, HLS listeners): ``SpeakerSide`` (the room
and our speaker in it) and ``ListenerSide`` (thin, thick and join-probe listeners, the
analyst of the thick ones, join storms, crowds in processes, the warm-up). What joins the
halves is only the speaker's id (a listener finds the capture times by it) and its
``produced`` frames (the analyst's reference). ``Adapter`` is both halves, with its name
and what its SLIs cannot measure; today a target names one adapter for both.

The small protocols below (``Speaker``, ``Listener``, ``ThickListener``, ``Analyst``,
``StormClient``, ``StormConnection``, ``StormSpec``) are the members of an adapter's
objects that the session, the crowds and the load worker use.

Loading this module loads no adapter and nothing heavy: it is what ``chaos.adapters``
imports.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, TypedDict, overload, runtime_checkable

from chaos.core.errors import ConfigError

if TYPE_CHECKING:
    import asyncio

    import aiohttp

    from chaos.audio.hearing import ThickReport
    from chaos.audio.reception import SecondBins
    from chaos.audio.record import ListenerRecord
    from chaos.core.retry import RetryPolicy
    from chaos.core.slo import Objective
    from chaos.core.storm import StormOptions
    from chaos.core.target import Target


# -- the adapter's objects, as the session uses them ------------------------------------

class Speaker(Protocol):
    """Publishes the known test signal at real rate into the room.

    ``id``: None when the room is fed by something else (no speaker of ours: an
    ``ExternalFeed`` that publishes and produces nothing). ``produced``: (seq, capture_ns)
    of every frame. ``origin``: where it publishes, for the report. The echo fault
    (``chaos.session.clients``) plays through ``set_echo`` / ``clear_echo`` (a future,
    done once a frame carries the change) and, for mode ``double``, a second publisher
    from ``twin``; a speaker that cannot play one raises ConfigError saying what to use."""

    id: str | None
    connected: asyncio.Event
    produced: Sequence[tuple[int, int]]
    errors: list[str]
    origin: str | None

    async def run(self, stop: asyncio.Event) -> None: ...

    async def close(self) -> None: ...

    @property
    def echo(self) -> object | None: ...

    def set_echo(self, delay_s: float, gain: float, mode: str = "hot_mic",
                 copy: Speaker | None = None) -> asyncio.Future: ...

    def clear_echo(self) -> asyncio.Future: ...

    def twin(self, speaker_id: str) -> Speaker: ...


class Listener(Protocol):
    """One listener: ``run(stop)`` joins (home DC first), listens and rejoins until
    ``stop``; ``rec`` is what it did and heard (``chaos.audio.sli`` judges it)."""

    rec: ListenerRecord

    async def run(self, stop: asyncio.Event) -> None: ...


class Analyst(Protocol):
    """What the analyses of one run's thick listeners share (the test signal, a thread);
    ``close()`` once every thick listener has finished."""

    def close(self) -> None: ...


class ThickListener(Listener, Protocol):
    """A listener that keeps what it heard; after the run ``finish(analyst)`` judges it
    as a listener would (echo, gaps, E-model)."""

    async def finish(self, analyst: Analyst | None = None) -> ThickReport: ...


class StormSpec(Protocol):
    """What a storm client reads of its worker's spec (``chaos.load.worker.WorkerSpec``)."""

    space: str                                   # the room: a space id, a mount
    speaker_id: str | None
    options: StormOptions
    url_rewrite: tuple[tuple[str, str], ...]


class StormConnection(Protocol):
    """One arrival's connection: ``first_audio`` a future of the monotonic seconds of its
    first audio, ``closed`` done once it is gone."""

    first_audio: asyncio.Future
    closed: asyncio.Future

    def close(self) -> object: ...

    def abort(self) -> None: ...


class StormClient(Protocol):
    """One load worker's client (one event loop). ``request`` (phase ``join_request``)
    asks an entry address where to connect; ``connect`` (phase ``connect``) opens the
    connection. Refusals raise ``Refused`` or ``HandshakeRefused``; a connection that
    breaks the protocol raises ``ProtocolFault``. ``hears_audio``: whether a join waits
    for the connection's ``first_audio``."""

    hears_audio: bool

    async def request(self, address: str, timeout_s: float) -> str: ...

    async def connect(self, where: str, timeout_s: float) -> StormConnection: ...

    def close(self) -> None: ...


class StormRoutes(TypedDict, total=False):
    """Where a join storm's arrivals go, as ``WorkerSpec`` fields."""

    gateways: dict[str, tuple[str, ...]]          # home DC -> entry addresses, its own first
    home_gateways: dict[str, int]                 # DC -> how many of them are its own
    url_rewrite: tuple[tuple[str, str], ...]      # (link address, edge address): edge_direct
    adapter: str                                  # whose storm client (chaos.adapters.storm_routes)


# -- the two halves of an adapter ----------------------------------------------------------

class _Named(Protocol):
    name: ClassVar[str]     # the protocol's name, as a target's ``adapter:`` gives it


class SpeakerSide(_Named, Protocol):
    """The room and our speaker in it."""

    @abstractmethod
    async def open_room(self, session: aiohttp.ClientSession, target: Target,
                        room: str) -> str:
        """The room our speaker talks in (created if the protocol needs it); returns its id."""

    @abstractmethod
    def new_speaker(self, session: aiohttp.ClientSession, target: Target, room: str,
                    retry: RetryPolicy, seed: int = 0) -> Speaker:
        """Our speaker in the room, publishing the test signal of ``seed``."""


class ListenerSide(_Named, Protocol):
    """Listeners, join probes, join storms and crowds.

    ``storms``: whether the load generator can send a join storm through this adapter
    (``storm_routes`` and ``storm_client``). ``crowd_in_processes``: whether its thin
    listeners can run in processes of their own (``chaos.session.crowd``): a listener made
    there knows the speaker by its id only."""

    storms: ClassVar[bool] = False
    crowd_in_processes: ClassVar[bool] = False

    @overload
    def new_listener(self, session: aiohttp.ClientSession, index: int, dc: str, target: Target,
                     room: str, speaker_id: str | None, retry: RetryPolicy,
                     join_timeout_s: float, thick: Literal[False] = False,
                     bins: SecondBins | None = None, analyst: Analyst | None = None) -> Listener: ...

    @overload
    def new_listener(self, session: aiohttp.ClientSession, index: int, dc: str, target: Target,
                     room: str, speaker_id: str | None, retry: RetryPolicy,
                     join_timeout_s: float, thick: Literal[True],
                     bins: SecondBins | None = None,
                     analyst: Analyst | None = None) -> ThickListener: ...

    @abstractmethod
    def new_listener(self, session, index, dc, target, room, speaker_id, retry,
                     join_timeout_s, thick=False, bins=None, analyst=None):
        """A listener of home DC ``dc`` following the speaker ``speaker_id``: thin (counts
        into ``bins``, its group's per-second bins) or, ``thick``, one that keeps what it
        heard for ``analyst`` to judge after the run."""

    @abstractmethod
    def new_analyst(self, produced: Sequence[tuple[int, int]], seed: int,
                    run_start_ns: int) -> Analyst:
        """What one run's thick listeners' analyses share (close it at the end)."""

    def new_join_probe(self, session: aiohttp.ClientSession, index: int, dc: str,
                       target: Target, room: str, speaker_id: str | None, retry: RetryPolicy,
                       join_timeout_s: float) -> Listener:
        """A short-lived listener that joins and is hung up once it hears the speaker
        (``chaos.session.joinprobe``); by default a thin listener of its own."""
        return self.new_listener(session, index, dc, target, room, speaker_id, retry,
                                 join_timeout_s)

    async def warm_up(self, session: aiohttp.ClientSession, target: Target,
                      room: str) -> Mapping[str, float]:
        """Wait, after the speaker connected and before the listeners start, until the
        room is served where they join (a target's cold start is not its steady state);
        returns the seconds each DC took. By default there is nothing to wait for."""
        return {}

    def storm_routes(self, target: Target, options: StormOptions) -> StormRoutes:
        """Where a join storm's arrivals go (``storms`` adapters only)."""
        raise ConfigError(f"the {self.name} adapter has no join "
                          "storm client: leave join storms and arriving audiences (rate) out")

    def storm_client(self, spec: StormSpec) -> StormClient:
        """One load worker's client (``storms`` adapters only)."""
        raise ConfigError(f"the {self.name} adapter has no join "
                          "storm client: leave join storms and arriving audiences (rate) out")


@runtime_checkable
class Adapter(SpeakerSide, ListenerSide, Protocol):
    """One audio protocol's adapter: both halves, its name (what a target's ``adapter:``
    names), what its SLIs cannot measure on a target, and its SLO defaults."""

    def slo_notes(self, target: Target) -> dict[str, str]:
        """Why some SLIs will be inconclusive on this target, by SLI name (passed as the
        objectives' notes); by default none."""
        return {}

    def slo_defaults(self) -> Mapping[str, Objective]:
        """The default objective of each SLI for this protocol (an HLS player's live delay
        is seconds, not G.114's 0.4 s); by default the SLO registry's."""
        from chaos.core.slo import DEFAULTS
        return DEFAULTS
