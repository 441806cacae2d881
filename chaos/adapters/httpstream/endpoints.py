"""Where an HTTP audio stream is published and heard: what the adapter needs of a target.

A target (its file or its Python description) gives: the mount, the source address the
framework's speaker publishes to (through the target's speaker->origin link), the source
credentials, and per DC the address a listener there joins at (through that DC's
listener link). ``source=None`` says the mount is fed by something else (an encoder,
ffmpeg, a studio): there is then no speaker of ours, and no known test signal to measure
against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos.core.errors import ConfigError

FORMATS = ("ogg-opus", "ogg-vorbis", "mp3")


@dataclass(frozen=True)
class StreamEndpoints:
    mount: str                                   # e.g. "/live.opus"
    listen: dict[str, str] = field(default_factory=dict)   # dc -> "host:port"
    source: str | None = None                    # "host:port" the speaker PUTs to
    source_user: str = "source"
    source_password: str = ""
    format: str = "ogg-opus"

    def __post_init__(self) -> None:
        if not self.mount.startswith("/"):
            raise ConfigError(f"mount {self.mount!r} must start with '/', e.g. '/live.opus'")
        if self.format not in FORMATS:
            raise ConfigError(f"stream format {self.format!r}: use one of {', '.join(FORMATS)}")
        if not self.listen:
            raise ConfigError("listen is empty: give the address a listener joins at per DC, "
                              "e.g. {'dc-a': '127.0.0.1:21101'}")
        for where in [*self.listen.values(), *([self.source] if self.source else [])]:
            _split(where)
        if self.source is not None and self.format != "ogg-opus":
            raise ConfigError(f"the speaker publishes ogg-opus only; format is {self.format!r} "
                              "(set source=None for a stream fed by something else)")

    @property
    def ours(self) -> bool:
        """Whether the framework's speaker feeds the mount (the known signal is in it)."""
        return self.source is not None

    def listen_url(self, dc: str) -> str:
        if dc not in self.listen:
            raise ConfigError(f"no listen address for DC {dc!r}; have {', '.join(sorted(self.listen))}")
        return f"http://{self.listen[dc]}{self.mount}"

    def source_address(self) -> tuple[str, int]:
        if self.source is None:
            raise ConfigError("this stream is fed by something else (source=None): no speaker")
        return _split(self.source)


def _split(hostport: str) -> tuple[str, int]:
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"address {hostport!r}: write host:port, e.g. 127.0.0.1:21101")
    return host, int(port)
