"""The target: what the framework knows of the system under test, whoever built it.

A target names its data centers, its services (name, kind, DC, where the framework reaches
them, how to find their containers or processes), the links between tiers (toxiproxy
proxies, so a fault can sit on any of them, and the toxiproxy API's address), which service
depends on which, which kinds of service the listeners' join and audio paths and our
speaker go through, and the audio protocol (an adapter of ``chaos.adapters``).

Faults are planned against it, probes reach the stack through it, and the journal keeps a
copy of its shape, so that the report can say "joins failed in every DC because redis
lives in dc-a" for any target: the failing SLI's path (``paths``) in the DCs that broke
depends (``depends``, transitively) on a service the fault hit.

The reference stack is described by the same model (``chaos.adapters.space.reference``);
a user's stack by a target file (``chaos.targets.file``) or in Python.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from chaos.core.retry import RetryPolicy

CLIENTS = ("listener", "speaker")   # our own clients: a link's src may be one of them
RUNTIMES = ("local", "docker")


@dataclass(frozen=True)
class Service:
    name: str                    # "edge-a"
    kind: str                    # "edge", "relay", "redis", ...: what faults select by
    dc: str | None               # None: in no DC (toxiproxy on the backbone)
    bind: str = ""               # host:port the process listens on (our own launcher only)
    address: str = ""            # host:port the other services reach it at
    public: str | None = None    # host:port the framework, on the host, reaches it at
    role: str = ""               # e.g. "primary" | "standby"
    labels: tuple[tuple[str, str], ...] = ()   # docker: its containers carry all of these
    health: str = ""             # a URL that answers 2xx when healthy ("" : the runtime's own check)

    @property
    def port(self) -> int:
        return int((self.bind or self.address).rsplit(":", 1)[1])

    @property
    def label_filter(self) -> list[str]:
        """The docker SDK's label filter that finds this service's containers."""
        return [f"{k}={v}" for k, v in self.labels]


@dataclass(frozen=True)
class Link:
    name: str                    # the toxiproxy proxy's name, "listener.edge-a"
    kind: str                    # "listener_edge", ...: what faults select by
    src: str                     # a service name, or one of CLIENTS
    dst: str                     # a service name
    listen: str = ""             # host:port toxiproxy listens on
    upstream: str = ""           # host:port toxiproxy forwards to
    connect: str = ""            # host:port src connects to, to reach dst through the proxy
    index: int = 0               # stable position (orders reverts and listings)


@dataclass(frozen=True)
class Paths:
    """Kinds of service our clients go through: the narrative's "path" of each SLI."""
    join: tuple[str, ...] = ()       # a listener's join (join_time, audience_retained)
    audio: tuple[str, ...] = ()      # what it hears (audio_delivered, mouth_to_ear, ...)
    speaker: tuple[str, ...] = ()    # where our speaker publishes


@dataclass(frozen=True)
class Target:
    name: str
    runtime: str                                 # "local" | "docker"
    dcs: tuple[str, ...]
    services: dict[str, Service] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    toxiproxy: str | None = None                 # the toxiproxy API, host:port
    depends: dict[str, tuple[str, ...]] = field(default_factory=dict)
    paths: Paths = field(default_factory=Paths)
    adapter: str = "space"                       # the audio protocol (chaos.adapters)
    adapter_options: dict = field(default_factory=dict)
    client_retry: RetryPolicy = field(default_factory=RetryPolicy)  # our clients' default
    profile: str = ""                            # the reference stack's profile, if it is one
    base_port: int = 0                           # the reference stack's base port
    source: str = ""                             # the file it came from, or "reference"
    nouns: dict = field(default_factory=dict)    # kind -> how a sentence names it ("the origin")
    commands: dict = field(default_factory=dict)  # optional "up", "down" (argv), "cwd", "up_timeout_s"

    # -- lookups --------------------------------------------------------------------------
    def of_kind(self, kind: str) -> list[Service]:
        return [s for s in self.services.values() if s.kind == kind]

    def in_dc(self, dc: str) -> list[Service]:
        return [s for s in self.services.values() if s.dc == dc]

    def link(self, src: str, dst: str) -> Link:
        return self.links[f"{src}.{dst}"]

    def links_from(self, src: str) -> list[Link]:
        return [lk for lk in self.links.values() if lk.src == src]

    def is_reference(self) -> bool:
        return self.source == "reference"

    def dependencies(self, name: str) -> list[str]:
        """Every service ``name`` depends on, directly or not (breadth first, no repeats)."""
        seen: list[str] = []
        todo = list(self.depends.get(name, ()))
        while todo:
            s = todo.pop(0)
            if s not in seen and s != name:
                seen.append(s)
                todo += self.depends.get(s, ())
        return seen

    def on_path(self, path: Iterable[str], dc: str) -> list[Service]:
        """The services of a path's kinds that clients of ``dc`` use: the DC's own, else
        every one of that kind (a kind with no service in the DC is shared)."""
        out: list[Service] = []
        for kind in path:
            pool = self.of_kind(kind)
            out += [s for s in pool if s.dc == dc] or pool
        return out

    # -- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["client_retry"] = self.client_retry.to_dict()
        for s in d["services"].values():
            s["labels"] = dict(s["labels"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Target:
        services = {k: Service(**{**v, "labels": tuple(sorted((v.get("labels") or {}).items()))})
                    for k, v in d["services"].items()}
        return cls(name=d["name"], runtime=d["runtime"], dcs=tuple(d["dcs"]), services=services,
                   links={k: Link(**v) for k, v in d["links"].items()},
                   toxiproxy=d.get("toxiproxy"),
                   depends={k: tuple(v) for k, v in (d.get("depends") or {}).items()},
                   paths=Paths(**{k: tuple(v) for k, v in (d.get("paths") or {}).items()}),
                   adapter=d.get("adapter", "space"), adapter_options=dict(d.get("adapter_options") or {}),
                   client_retry=RetryPolicy.from_dict(d["client_retry"]) if d.get("client_retry") else RetryPolicy(),
                   profile=d.get("profile", ""), base_port=int(d.get("base_port") or 0),
                   source=d.get("source", ""), nouns=dict(d.get("nouns") or {}),
                   commands=dict(d.get("commands") or {}))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Target:
        return cls.from_dict(json.loads(text))

    def shape(self) -> dict:
        """What the journal keeps of the target: enough for the report to explain a breach."""
        return {"name": self.name, "adapter": self.adapter, "dcs": list(self.dcs),
                "services": [{"name": s.name, "kind": s.kind, "dc": s.dc}
                             for s in sorted(self.services.values(), key=lambda s: s.name)],
                "depends": {k: list(v) for k, v in sorted(self.depends.items())},
                "paths": {k: list(v) for k, v in asdict(self.paths).items()},
                "nouns": dict(self.nouns)}

    def fingerprint(self) -> str:
        """A short hash of the target's configuration (what a result rests on)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
