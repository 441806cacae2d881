"""A speaker that publishes the test signal to an Icecast-compatible server, at real rate.

The Icecast source protocol: an HTTP ``PUT`` of the mount with basic auth
(``source:password``), ``Content-Type: application/ogg`` and ``Ice-*`` headers, then the
stream as the request body, unframed, for as long as it lasts (no Content-Length, no
chunked encoding, no ``Expect``: Icecast 2.4 answers ``200 OK`` as soon as it accepts the
source, and reads raw bytes after that). Written on a raw asyncio stream, so that the
speaker controls every byte and flushes every page at once.

The body is Ogg/Opus, one 20 ms packet per page (no muxer buffering: a page leaves as
soon as its frame is captured). The speaker's granule mapping, which listeners rely on:
the packet of frame ``seq`` ends at granule position ``960 * (seq + 1)`` (48 kHz samples
since seq 0's start, the pre-skip included, RFC 7845), whatever the connection: after a
reconnect a new logical stream (new serial, OpusHead, OpusTags) starts "at an offset"
with the same mapping. So ``seq = end_granule // 960 - 1``; the packet decodes to the
frame's samples shifted by the pre-skip (312 samples for libopus).

The ``echo`` fault plays here as on the reference speaker (``set_echo`` / ``clear_echo``,
from a frame boundary, logged in ``echo_log``), in mode ``hot_mic`` only: the published
signal is the frame plus ``gain`` x the signal ``delay_s`` earlier. Mode ``double`` needs a
mixer that adds two publishers, which an Icecast mount has not: asking for it (or for an
echo of a stream fed by something else) is a ConfigError that says what to write.

Every frame is produced on an absolute 20 ms schedule whether or not it can be sent: a
frame produced while cut off counts as produced and not delivered (``produced``). A send
buffer that stops draining (a stalled link) drops frames rather than the schedule.
"""

from __future__ import annotations

import asyncio
import base64
import random
import weakref
from contextlib import aclosing

from chaos.core.errors import ConfigError
from chaos.adapters.httpstream import ogg
from chaos.adapters.httpstream._shared import (EchoPlaying, EchoSwitch, Produced, Voice, echo_state, gone_or_stopped,
                      hot_mic, paced, sleep_or_stop)
from chaos.adapters.httpstream.codec import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Encoder
from chaos.adapters.httpstream.endpoints import StreamEndpoints

MAX_UNSENT_BYTES = 32_768          # ~8 s of audio queued on a stalled socket: drop from there
MAX_ERRORS = 200
NO_ECHO = ("the stream is fed by something else (adapter option feed: external): there is no "
           "speaker of ours to play an echo; leave the echo fault out of this target's runs, or "
           "feed the mount with our speaker (feed: speaker)")


_LIVE: weakref.WeakValueDictionary[str, StreamSpeaker] = weakref.WeakValueDictionary()


def by_id(speaker_id: str) -> StreamSpeaker | None:
    """The live speaker of that id in this process (listeners take its capture times)."""
    return _LIVE.get(speaker_id)


class SourceRefused(Exception):
    """The server answered the PUT with something other than 200."""


class StreamSpeaker(EchoPlaying):
    def __init__(self, endpoints: StreamEndpoints, retry=None, seed: int = 0,
                 speaker_id: str | None = None, timeout_s: float = 3.0) -> None:
        self.endpoints, self.retry, self.seed = endpoints, retry, seed
        self.id = speaker_id or f"spk-{random.getrandbits(32):08x}"
        self.timeout_s = timeout_s
        _LIVE[self.id] = self
        self.produced = Produced()   # (seq, capture_ns) of every frame, 16 bytes each; seq == index
        self.sent = 0
        self.dropped = 0                            # produced while connected, not written (stall)
        self.connections = 0
        self.errors: list[str] = []
        self.connected = asyncio.Event()
        host, port = endpoints.source_address()
        self.origin = f"http://{host}:{port}{endpoints.mount}"
        self._encoder = Encoder()
        self.voice = Voice(seed)
        self.echoes = EchoSwitch()
        self._writer: asyncio.StreamWriter | None = None
        self._serial = 0
        self._page_no = 0

    def _error(self, text: str) -> None:
        self.errors.append(text[:200])
        if len(self.errors) > MAX_ERRORS:   # a long outage: keep the latest, bounded
            del self.errors[:MAX_ERRORS // 2]

    def capture_ns(self, seq: int) -> int | None:
        """When frame ``seq`` was captured (wall clock ns), None if not produced (yet)."""
        return self.produced[seq][1] if 0 <= seq < len(self.produced) else None

    # -- the connection ---------------------------------------------------------------
    def _request(self) -> bytes:
        ep = self.endpoints
        host, port = ep.source_address()
        auth = base64.b64encode(f"{ep.source_user}:{ep.source_password}".encode()).decode()
        lines = [f"PUT {ep.mount} HTTP/1.1", f"Host: {host}:{port}",
                 f"Authorization: Basic {auth}", "User-Agent: chaos-speaker",
                 "Content-Type: application/ogg", "Ice-Public: 0",
                 "Ice-Name: chaos test signal", f"Ice-Description: speaker {self.id}",
                 f"Ice-Audio-Info: channels=1;samplerate={SAMPLE_RATE};bitrate=32"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _connect_once(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.endpoints.source_address()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                self.timeout_s)
        try:
            writer.write(self._request())
            status = await asyncio.wait_for(_read_head(reader), self.timeout_s)
            if " 100 " in status.split("\r\n", 1)[0] + " ":   # tolerated, not asked for
                status = await asyncio.wait_for(_read_head(reader), self.timeout_s)
            first = status.split("\r\n", 1)[0]
            if first.split(" ")[1:2] != ["200"]:
                raise SourceRefused(f"{self.origin} refused the source: {first!r}")
        except BaseException:
            writer.close()
            raise
        return reader, writer

    def _start_stream(self, writer: asyncio.StreamWriter, next_seq: int) -> None:
        """A new logical stream: BOS page with OpusHead, then OpusTags (header pages carry
        granule 0, RFC 7845); the audio pages' granules continue from ``next_seq`` (a
        stream starting at an offset)."""
        self._serial = random.getrandbits(32)
        writer.write(ogg.page([self._encoder.head], serial=self._serial, page_no=0, granule=0,
                              flags=ogg.BOS))
        writer.write(ogg.page([ogg.opus_tags("chaos", (f"SPEAKER={self.id}",))],
                              serial=self._serial, page_no=1, granule=0))
        self._page_no = 2

    async def _maintain(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delays = self.retry.delays() if self.retry is not None else iter(())
            while not stop.is_set():
                try:
                    reader, writer = await self._connect_once()
                    break
                except (OSError, TimeoutError, SourceRefused, EOFError, asyncio.LimitOverrunError) as e:
                    self._error(f"{type(e).__name__}: {e}")
                    delay = next(delays, None)
                    if delay is None:
                        return
                    await sleep_or_stop(stop, max(delay, 0.01))
            else:
                return
            self._start_stream(writer, len(self.produced))
            self._writer = writer
            self.connections += 1
            self.connected.set()
            await gone_or_stopped(reader.read(), stop)   # Icecast says nothing more: b"" = gone
            if stop.is_set():
                return  # keep the socket for the last frame; close() hangs up
            self._writer = None
            self.connected.clear()
            writer.close()
            self._error("the server closed the source connection")

    # -- producing --------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        maintainer = asyncio.create_task(self._maintain(stop))
        try:
            async with aclosing(paced(stop, FRAME_MS, self.echoes)) as frames:
                async for seq, capture_ns in frames:
                    pcm = self.voice.frame(seq)
                    if self.echo is not None:
                        pcm = hot_mic(pcm, self.voice.delayed(self.echo.delay_samples),
                                      self.echo.gain)
                    payload = self._encoder.encode(pcm)
                    self.produced.append((seq, capture_ns))
                    self._send(seq, payload)
        finally:
            maintainer.cancel()
            await asyncio.gather(maintainer, return_exceptions=True)

    # -- the echo fault -----------------------------------------------------------------
    def set_echo(self, delay_s: float, gain: float, mode: str = "hot_mic",
                 copy=None) -> asyncio.Future:
        """Play a hot-mic echo from the next frame on. Returns a future, done with the
        EchoState once a frame carries it. Call from the event loop."""
        if mode != "hot_mic" or copy is not None:
            raise ConfigError(f"echo mode {mode!r}: an Icecast mount mixes nothing, so only "
                              "hot_mic can be played on an http-stream target; write "
                              "mode: hot_mic in the echo fault's params (or leave mode out)")
        try:
            state = echo_state(mode, delay_s, gain)
        except ValueError as e:     # a delay or gain the echo SLI cannot measure
            raise ConfigError(str(e)) from None
        return self.echoes.change(state, len(self.produced))

    def twin(self, speaker_id: str) -> StreamSpeaker:
        """A second publisher, for the echo fault's mode ``double``: not on an Icecast mount."""
        raise ConfigError("echo mode 'double' needs a second publisher mixed into the room; an "
                          "Icecast mount takes one source and mixes nothing: write mode: hot_mic "
                          "in the echo fault's params")

    def clear_echo(self) -> asyncio.Future:
        """Stop the echo from the next frame on. Returns a future done once it is off."""
        return self.echoes.change(None, len(self.produced))

    def _send(self, seq: int, payload: bytes) -> None:
        w = self._writer
        if w is None or w.is_closing():
            return
        if w.transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
            self.dropped += 1
            return
        w.write(ogg.page([payload], serial=self._serial, page_no=self._page_no,
                         granule=FRAME_SAMPLES * (seq + 1)))
        self._page_no += 1
        self.sent += 1

    async def close(self) -> None:
        """Hang up (after the last frames had time to drain)."""
        w, self._writer = self._writer, None
        self.connected.clear()
        if w is not None:
            w.close()
            try:
                await asyncio.wait_for(w.wait_closed(), 2.0)
            except (OSError, TimeoutError):
                pass


async def _read_head(reader: asyncio.StreamReader) -> str:
    """An HTTP response head (status line and headers), up to the blank line."""
    raw = await reader.readuntil(b"\r\n\r\n")
    return raw.decode("latin-1")


class ExternalFeed:
    """Stands where our speaker would when the mount is fed by something else: it
    publishes nothing and produces no frame (so the SLIs that need the known signal have
    nothing to judge), and offers the speaker's interface so a probe runs unchanged."""

    id = None
    sent = 0
    connections = 0

    def __init__(self, endpoints: StreamEndpoints) -> None:
        self.endpoints = endpoints
        self.produced = Produced()
        self.errors: list[str] = []
        self.origin = f"{endpoints.mount} (fed by something else)"
        self.echo = None
        self.connected = asyncio.Event()
        self.connected.set()

    def capture_ns(self, seq: int) -> None:
        return None

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()

    def set_echo(self, delay_s: float, gain: float, mode: str = "hot_mic",
                 copy=None) -> asyncio.Future:
        raise ConfigError(NO_ECHO)

    def clear_echo(self) -> asyncio.Future:
        """Nothing plays: done at once."""
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def twin(self, speaker_id: str) -> StreamSpeaker:
        raise ConfigError(NO_ECHO)

    async def close(self) -> None:
        return None
