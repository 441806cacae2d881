"""A target description file (``chaos-target.yaml``): the user's own stack, described.

    name: icecast
    runtime: docker                   # docker | local
    toxiproxy: 127.0.0.1:21474        # the toxiproxy API that holds the links' proxies
    dcs: [dc-a, dc-b, dc-c]
    adapter: {protocol: http-stream, options: {mount: /live.opus}}
    services:
      - {name: origin, kind: origin, dc: dc-a, find: {labels: {chaos.service: origin}}}
      - {name: relay-a, kind: relay, dc: dc-a, find: {compose_project: demo, compose_service: relay-a}}
    links:
      - {name: listener.relay-a, src: listener, dst: relay-a, connect: 127.0.0.1:21501}
      - {name: relay-a.origin, src: relay-a, dst: origin}
    depends: {relay-a: [origin]}
    paths: {join: [relay], audio: [relay], speaker: [origin]}

Every field is documented in docs/pages/getting-started/your-stack.md. ``load`` validates the file whole (types, names,
every reference between services, links, DCs, kinds and the protocol) and says where each
problem is, before anything runs; ``check_live`` then checks, against the running stack,
that toxiproxy has every declared link.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chaos import adapters
from chaos.core import yamlfile
from chaos.core.errors import ConfigError, StackError
from chaos.core.retry import KINDS as RETRY_KINDS, RetryPolicy
from chaos.core.target import CLIENTS, Link, Paths, Service, Target

WHAT = "target description"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ADDRESS = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:(\d{1,5})$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _address(v: str | None) -> str | None:
    if v in (None, ""):
        return v
    m = ADDRESS.match(v)
    if not m or not 0 < int(m.group(1)) < 65536:
        raise ValueError(f"{v!r} is not host:port (write e.g. 127.0.0.1:8000)")
    return v


class Find(_Strict):
    """How to find a service's containers: labels they carry, or a compose service."""
    labels: dict[str, str] = Field(default_factory=dict)
    compose_project: str | None = None
    compose_service: str | None = None

    def as_labels(self) -> tuple[tuple[str, str], ...]:
        out = dict(self.labels)
        if self.compose_project:
            out["com.docker.compose.project"] = self.compose_project
        if self.compose_service:
            out["com.docker.compose.service"] = self.compose_service
        return tuple(sorted(out.items()))


class ServiceDecl(_Strict):
    name: str = Field(pattern=NAME)
    kind: str = Field(pattern=NAME)
    dc: str | None = None
    find: Find | None = None
    address: str = ""
    public: str | None = None
    health: str = ""
    role: str = ""

    _addr = field_validator("address", "public")(_address)

    @field_validator("health")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL (write e.g. http://127.0.0.1:8000/health)")
        return v


class LinkDecl(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    src: str
    dst: str
    kind: str = ""
    connect: str = ""
    listen: str = ""
    upstream: str = ""

    _addr = field_validator("connect", "listen", "upstream")(_address)


class AdapterDecl(_Strict):
    protocol: str
    options: dict[str, Any] = Field(default_factory=dict)


class PathsDecl(_Strict):
    join: list[str] = Field(default_factory=list)
    audio: list[str] = Field(default_factory=list)
    speaker: list[str] = Field(default_factory=list)


class RetryDecl(_Strict):
    kind: Literal[RETRY_KINDS] = "exponential_jitter"  # type: ignore[valid-type]
    base_s: float = Field(0.1, ge=0, le=60, allow_inf_nan=False)
    cap_s: float = Field(2.0, ge=0, le=600, allow_inf_nan=False)


class CommandsDecl(_Strict):
    """How a test session may start and stop the stack (argv lists, run in the file's folder)."""
    up: list[str] = Field(default_factory=list, max_length=64)
    down: list[str] = Field(default_factory=list, max_length=64)
    up_timeout_s: float = Field(300.0, gt=0, le=3600, allow_inf_nan=False)


class TargetFile(_Strict):
    name: str = Field(pattern=NAME)
    runtime: Literal["docker", "local"]
    toxiproxy: str | None = None
    dcs: list[str] = Field(min_length=1, max_length=64)
    adapter: AdapterDecl
    services: list[ServiceDecl] = Field(min_length=1, max_length=1000)
    links: list[LinkDecl] = Field(default_factory=list, max_length=5000)
    depends: dict[str, list[str]] = Field(default_factory=dict)
    paths: PathsDecl = Field(default_factory=PathsDecl)
    nouns: dict[str, str] = Field(default_factory=dict)
    client_retry: RetryDecl = Field(default_factory=RetryDecl)
    commands: CommandsDecl = Field(default_factory=CommandsDecl)

    _tp = field_validator("toxiproxy")(_address)


def _cross_check(t: TargetFile) -> list[tuple[tuple, str]]:
    """Every reference between the parts of a description, checked: (location, problem)."""
    problems: list[tuple[tuple, str]] = []
    names = [s.name for s in t.services]
    kinds = sorted({s.kind for s in t.services})
    known = ", ".join(names)
    if t.adapter.protocol not in adapters.names():
        problems.append((("adapter", "protocol"), f"unknown protocol {t.adapter.protocol!r}; "
                         f"use one of {', '.join(adapters.names())}"))
    for i, dc in enumerate(t.dcs):
        if not re.match(NAME, dc):
            problems.append((("dcs", i), f"{dc!r} is not a DC name (letters, digits, - _ .)"))
    if len(set(t.dcs)) != len(t.dcs):
        problems.append((("dcs",), "a DC is listed twice"))
    seen: set[str] = set()
    for i, s in enumerate(t.services):
        if s.name in seen:
            problems.append((("services", i, "name"), f"service {s.name!r} is declared twice"))
        seen.add(s.name)
        if s.name in CLIENTS:
            problems.append((("services", i, "name"), f"{s.name!r} names our own clients; rename the service"))
        if s.dc is not None and s.dc not in t.dcs:
            problems.append((("services", i, "dc"), f"no DC {s.dc!r}; DCs are {', '.join(t.dcs)} "
                             "(add it to dcs, or fix the name)"))
        if t.runtime == "docker" and (s.find is None or not s.find.as_labels()):
            problems.append((("services", i), f"{s.name}: a docker target must say how to find its "
                             "containers: find: {labels: {...}} or find: {compose_project: P, "
                             "compose_service: S}"))
    link_names: set[str] = set()
    for i, lk in enumerate(t.links):
        if lk.name in link_names:
            problems.append((("links", i, "name"), f"link {lk.name!r} is declared twice"))
        link_names.add(lk.name)
        if lk.src not in seen and lk.src not in CLIENTS:
            problems.append((("links", i, "src"), f"unknown service {lk.src!r}; use a service "
                             f"({known}) or one of our clients ({', '.join(CLIENTS)})"))
        if lk.dst not in seen:
            problems.append((("links", i, "dst"), f"unknown service {lk.dst!r}; services are {known}"))
        if lk.src in CLIENTS and not lk.connect:
            problems.append((("links", i, "connect"), f"{lk.name}: our {lk.src} needs the host:port "
                             "to connect to, to go through this proxy"))
    if t.links and not t.toxiproxy:
        problems.append((("toxiproxy",), "links are declared but not the toxiproxy API's host:port "
                         "that holds their proxies (toxiproxy: 127.0.0.1:8474)"))
    for svc, deps in t.depends.items():
        if svc not in seen:
            problems.append((("depends", svc), f"unknown service {svc!r}; services are {known}"))
        for j, d in enumerate(deps):
            if d not in seen:
                problems.append((("depends", svc, j), f"unknown service {d!r}; services are {known}"))
    for path in ("join", "audio", "speaker"):
        for j, kind in enumerate(getattr(t.paths, path)):
            if kind not in kinds:
                problems.append((("paths", path, j), f"no service of kind {kind!r}; kinds are "
                                 f"{', '.join(kinds)}"))
    for kind in t.nouns:
        if kind not in kinds:
            problems.append((("nouns", kind), f"no service of kind {kind!r}; kinds are {', '.join(kinds)}"))
    return problems


def _to_target(t: TargetFile, source: str) -> Target:
    kinds = {s.name: s.kind for s in t.services}
    services = {s.name: Service(s.name, s.kind, s.dc, address=s.address, public=s.public or s.address or None,
                                role=s.role, labels=s.find.as_labels() if s.find else (), health=s.health)
                for s in t.services}
    links = {lk.name: Link(lk.name, lk.kind or f"{kinds.get(lk.src, lk.src)}_{kinds[lk.dst]}", lk.src, lk.dst,
                           lk.listen, lk.upstream, lk.connect, i)
             for i, lk in enumerate(t.links)}
    r = t.client_retry
    return Target(name=t.name, runtime=t.runtime, dcs=tuple(t.dcs), services=services, links=links,
                  toxiproxy=t.toxiproxy, depends={k: tuple(v) for k, v in t.depends.items()},
                  paths=Paths(tuple(t.paths.join), tuple(t.paths.audio), tuple(t.paths.speaker)),
                  adapter=t.adapter.protocol, adapter_options=dict(t.adapter.options),
                  client_retry=RetryPolicy(r.kind, r.base_s, r.cap_s), source=source,
                  nouns=dict(t.nouns), commands=_commands(t.commands, Path(source).parent))


def _commands(c: CommandsDecl, folder: Path) -> dict:
    """argv lists with the folder to run them in; a relative program is the file's folder's."""
    out: dict = {}
    for name in ("up", "down"):
        argv = list(getattr(c, name))
        if argv:
            if "/" in argv[0] and not argv[0].startswith("/"):
                argv[0] = str((folder / argv[0]).resolve())
            out[name] = argv
    if out:
        out.update(cwd=str(folder), up_timeout_s=c.up_timeout_s)
    return out


def load(path: str | Path) -> Target:
    """A target from its description file, checked whole; a ConfigError lists every problem
    with its line."""
    doc = yamlfile.read(path, WHAT)
    decl = yamlfile.validate(doc, TargetFile, WHAT)
    problems = _cross_check(decl)
    if problems:
        raise yamlfile.fail(doc, WHAT, problems)
    return _to_target(decl, str(Path(path).resolve()))


def check_live(target: Target, timeout_s: float = 3.0) -> None:
    """Against the running stack: toxiproxy answers and has a proxy for every declared link."""
    if not target.links:
        return
    from chaos.targets.toxi import Toxiproxy, ToxiproxyError

    try:
        have = set(Toxiproxy(target.toxiproxy, timeout_s=timeout_s).proxies())
    except ToxiproxyError as e:
        raise StackError(f"target {target.name}: toxiproxy at {target.toxiproxy} does not answer ({e}); "
                         "is the stack up, and is `toxiproxy:` in the target file its API address?") from None
    missing = sorted(set(target.links) - have)
    if missing:
        raise ConfigError(f"target {target.name}: toxiproxy at {target.toxiproxy} has no proxy for "
                          f"link(s) {', '.join(missing)}; it has {', '.join(sorted(have)) or 'none'}. "
                          "Name each link as its toxiproxy proxy is named.")
