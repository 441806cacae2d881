"""The ``http-stream`` audio adapter: Icecast-compatible HTTP audio streams.

``HttpStreamAdapter`` implements ``chaos.adapters.base.Adapter``:

- speaker: publishes the framework's test signal as Ogg/Opus (48 kHz mono, 20 ms, one
  packet per page) at real rate with the Icecast source protocol (HTTP PUT of the mount).
- thin listener: a GET of the mount; Ogg pages split on the real-time path, each Opus
  packet mapped to the speaker's seq through its granule position; records a
  ``ListenerRecord`` that ``chaos.audio.sli`` judges like any other.
- thick listener: the same, keeping the bytes (bounded); ``analyse`` decodes after the
  run and returns the reference thick listener's ``ThickReport``. Thin listeners run in
  this process (``crowd_in_processes`` False): they take capture times from our speaker.

Join storms (``join_storm``, ``chaos probe --rate``): ``storm_routes`` and ``storm_client``
(``storm``): each arrival is a GET of the mount at its DC's listen address, joined at its
first audio packet, then held, reading and dropping the stream.

Where the mount is fed by something else (adapter option ``feed: external``), there is
no speaker of ours: ``new_speaker()`` returns an ``ExternalFeed`` (publishes nothing,
produces no frame), and the SLIs that need the known signal come out inconclusive, with
``slo_notes(target)``'s reason; join_time, freeze and dead air are still measured.

``warm_up(session, target, room)`` waits until the mount is served in every DC (a relay
pulls a mount only once its source is up): call it after the speaker connected.

Options (a target's ``adapter.options``): ``mount`` (required), ``source_user``
(default "source"), ``source_password``, ``format`` (ogg-opus | ogg-vorbis | mp3),
``feed`` (speaker | external). Addresses come from the target's links: ``speaker.*``
(the speaker's, through toxiproxy) and ``listener.*`` (one per DC, by the DC of the
service it reaches).
"""

from __future__ import annotations

from collections.abc import Sequence

from chaos.adapters.base import Adapter, StormRoutes
from chaos.core.errors import ConfigError
from chaos.adapters.httpstream._shared import RunCache
from chaos.adapters.httpstream.endpoints import StreamEndpoints
from chaos.adapters.httpstream.listener import StreamListener, StreamRecord, ThickStreamListener, ThickStreamRecord
from chaos.adapters.httpstream.report import analyse, inconclusive_why
from chaos.adapters.httpstream.speaker import ExternalFeed, StreamSpeaker, by_id

FEEDS = ("speaker", "external")

__all__ = ["Analyst", "ExternalFeed", "HttpStreamAdapter", "StreamEndpoints", "StreamListener",
           "StreamRecord", "StreamSpeaker", "ThickStreamListener", "ThickStreamRecord",
           "analyse", "endpoints", "inconclusive_why", "run_cache"]


def endpoints(target) -> StreamEndpoints:
    """The stream's endpoints from a target description (or a StreamEndpoints, as is).

    Reads ``target.adapter_options`` and the target's links: the first link from
    ``speaker`` gives the source address (unless ``feed: external``); each link from
    ``listener`` gives the listen address of the DC of the service it reaches."""
    if isinstance(target, StreamEndpoints):
        return target
    opts = dict(target.adapter_options or {})
    feed = opts.pop("feed", "speaker")
    if feed not in FEEDS:
        raise ConfigError(f"adapter option feed={feed!r}: use one of {', '.join(FEEDS)}")
    if "mount" not in opts:
        raise ConfigError("the http-stream adapter needs the option mount, e.g. "
                          "adapter: {protocol: http-stream, options: {mount: /live.opus}}")
    listen = {}
    for link in target.links_from("listener"):
        svc = target.services.get(link.dst)
        if svc is not None and svc.dc and link.connect and svc.dc not in listen:
            listen[svc.dc] = link.connect
    source = None
    if feed == "speaker":
        spk = [link for link in target.links_from("speaker") if link.connect]
        if not spk:
            raise ConfigError("the target has no link from speaker with a connect address: "
                              "declare one (e.g. speaker.origin) or set the adapter option "
                              "feed: external for a stream fed by something else")
        source = spk[0].connect
    return StreamEndpoints(mount=opts["mount"], listen=listen, source=source,
                           source_user=opts.get("source_user", "source"),
                           source_password=str(opts.get("source_password", "")),
                           format=opts.get("format", "ogg-opus"))


def run_cache(seed: int) -> RunCache:
    """What the analyses of one run's thick listeners share (the test signal, echo results)."""
    return RunCache(seed)


class Analyst:
    """What one run's thick listeners' analyses share; they run after the listening, on a
    thread of their own (``ThickStreamListener.finish``)."""

    def __init__(self, produced, seed: int, run_start_ns: int) -> None:
        from concurrent.futures import ThreadPoolExecutor
        self.produced, self.seed, self.run_start_ns = produced, seed, run_start_ns
        self.cache = RunCache(seed)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="stream-analysis")

    async def judge(self, record):
        """Decode and judge one thick listener's kept stream, off the event loop."""
        import asyncio
        from chaos.adapters.httpstream.report import analyse
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: analyse(
            record, self.produced, seed=self.seed, run_start_ns=self.run_start_ns,
            cache=self.cache))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class HttpStreamAdapter(Adapter):
    """Icecast-compatible HTTP audio streams. ``target`` may also be a ``StreamEndpoints``
    (a stream without a target description)."""

    name = "http-stream"
    storms = True                 # join storms: GETs of the mount (.storm)
    crowd_in_processes = False    # listeners read capture times from our speaker, in this process

    async def open_room(self, session, target, room: str | None = None) -> str:
        """An Icecast mount is the room: nothing to create. Returns the mount."""
        return endpoints(target).mount

    def new_speaker(self, session, target, room: str | None, retry,
                    seed: int = 0) -> StreamSpeaker | ExternalFeed:
        """Our speaker for the mount; when the target's stream is fed by something else, an
        ``ExternalFeed`` that publishes and produces nothing (same interface)."""
        ep = endpoints(target)
        return StreamSpeaker(ep, retry, seed) if ep.ours else ExternalFeed(ep)

    def slo_notes(self, target) -> dict[str, str]:
        """Why SLIs will be inconclusive on this target, by SLI name (empty when our speaker
        feeds the mount): pass as the objectives' notes."""
        return inconclusive_why(endpoints(target).ours)

    def new_listener(self, session, index: int, dc: str, target, room: str | None,
                     speaker_id: str | StreamSpeaker | ExternalFeed | None, retry,
                     join_timeout_s: float = 5.0, thick: bool = False, bins=None,
                     analyst=None, capture=None):
        """A thin (or thick) listener in ``dc``, following the speaker ``speaker_id`` (its id,
        or the speaker itself): it takes that speaker's capture times (``capture_ns``) to
        time each frame. ``speaker_id=None``: the mount is fed by something else."""
        if isinstance(speaker_id, ExternalFeed):
            speaker_id = None
        if capture is None and speaker_id is not None:
            spk = speaker_id if isinstance(speaker_id, StreamSpeaker) else by_id(speaker_id)
            if spk is None:
                raise ConfigError(f"no live speaker {speaker_id!r} in this process: start the "
                                  "speaker (new_speaker()) before its listeners")
            capture = spk.capture_ns
        if thick:
            return ThickStreamListener(session, index, dc, endpoints(target), capture, retry,
                                       join_timeout_s, bins=bins, analyst=analyst)
        return StreamListener(session, index, dc, endpoints(target), capture, retry,
                              join_timeout_s, bins=bins)

    def new_analyst(self, produced: Sequence[tuple[int, int]], seed: int,
                    run_start_ns: int) -> Analyst:
        return Analyst(produced, seed, run_start_ns)

    async def warm_up(self, session, target, room: str | None,
                      timeout_s: float = 15.0) -> dict[str, float]:
        """Wait until the mount is served in every DC (a GET there hears audio); returns the
        seconds each DC took. Icecast relays pull a mount only once its source is up, and
        recheck every so often: a listener joining in that first second or two gets a 404.
        That is the target's cold start, not its steady state; call this after the speaker
        connected and before the listeners start. ProbeError if a DC does not serve it in
        time."""
        import asyncio
        import time

        from chaos.core.errors import ProbeError
        ep = endpoints(target)
        t0 = time.monotonic()
        took: dict[str, float] = {}
        for dc in sorted(ep.listen):
            last = ""
            while dc not in took:
                left = t0 + timeout_s - time.monotonic()
                if left <= 0:
                    raise ProbeError(f"the mount {ep.mount} is not served in {dc} within "
                                     f"{timeout_s:g} s of the speaker publishing: "
                                     f"{last or 'no answer'}")
                stop = asyncio.Event()
                probe = StreamListener(session, -1, dc, ep, None, None, min(left, 3.0))
                task = asyncio.create_task(probe.run(stop))
                while probe.rec.join_s is None and not task.done():
                    await asyncio.sleep(0.05)
                stop.set()
                await task
                if probe.rec.join_s is not None:
                    took[dc] = round(time.monotonic() - t0, 3)
                else:
                    last = probe.rec.join_error
                    await asyncio.sleep(0.2)
        return took

    def storm_routes(self, target, options) -> StormRoutes:
        """Where a join storm's arrivals go: per home DC the listen addresses, its own first."""
        from chaos.adapters.httpstream.storm import routes
        return routes(target, options)

    def storm_client(self, spec):
        """One load worker's client (``chaos.load.worker``): GETs of the mount."""
        from chaos.adapters.httpstream.storm import storm_client as make
        return make(spec)
