"""Faults: declarations, targets, and the concrete steps that inject and revert them.

A fault is declared by name with parameters against a selector (`FaultSpec`). Planning
turns it, against a topology, into `Action`s: concrete, serialisable steps that name their
target and carry everything needed to inject AND to revert them. The dry run prints the
actions; the ledger stores them before injection, so that the watchdog or a reset can
revert them from disk after the runner died. Each fault kind lives in its own module and
registers itself by name (`register`); each mechanism (toxiproxy, signals, docker,
iptables, ...) is an executor with idempotent ``inject`` and ``revert``.
"""

from __future__ import annotations

import fnmatch
import math
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from chaos.core.target import Link, Service, Target

from chaos.core import validate as v
from chaos.core.errors import ConfigError
from chaos.targets.base import Swept  # noqa: F401 - re-exported: what a sweep step reports
from chaos.targets.runtimes import runtime_of

RADIUS_WORDS = ("one", "all")
MAX_COUNT = 10_000
_COUNT_RE = re.compile(r"[0-9]{1,5}")                  # ASCII digits: int("²") is an error
_SHARE_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,6})?")


@dataclass(frozen=True)
class Selector:
    """Which part of the stack a fault hits.

    service: a service name ("edge-b") or kind ("edge"); dc: "dc-a"...; link: a link name
    with * globs ("listener.edge-b", "edge-*.origin-a"); count: the blast radius among the
    matches: "all", "one", a number "2", or a share "50%". Only services and links of the
    target stack can be selected; anything else is refused.
    """
    service: str | None = None
    dc: str | None = None
    link: str | None = None
    count: str = "all"
    seed: int = 0          # which matches "one"/"N"/"P%" picks, reproducibly

    def __post_init__(self) -> None:
        for what in ("service", "dc", "link"):
            v.optional(v.text, what, getattr(self, what), one_line=True, max_len=200, empty=False)
        c = self.count
        ok = (isinstance(c, int) and not isinstance(c, bool) and 0 < c <= MAX_COUNT) or (
            isinstance(c, str) and (c in RADIUS_WORDS or (_COUNT_RE.fullmatch(c) is not None
                                                          and 0 < int(c) <= MAX_COUNT)
                                    or (c.endswith("%") and _is_share(c[:-1]))))
        if not ok:
            v.fail("count", c, "is not a blast radius",
                   f"all, one, a count from 1 to {MAX_COUNT} like 2, or a share like 50%")
        v.integer("seed", self.seed, lo=0, hi=v.SEED_MAX)

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("service", self.service), ("dc", self.dc),
                                          ("link", self.link)) if v]
        return ", ".join(parts + ([f"count={self.count}"] if self.count != "all" else [])) or "everything"

    def _pick(self, matches: list) -> list:
        c = str(self.count)
        if c == "all":
            n = len(matches)
        elif c == "one":
            n = 1
        elif c.endswith("%"):
            n = max(1, math.ceil(len(matches) * float(c[:-1]) / 100))
        else:
            n = int(c)
        if n > len(matches):
            raise ConfigError(f"blast radius {c} but only {len(matches)} match {self.describe()}")
        return sorted(random.Random(self.seed).sample(matches, n), key=lambda x: x.name)

    def services(self, topo: Target, kinds: tuple[str, ...] | None = None) -> list[Service]:
        pool = [s for s in topo.services.values() if kinds is None or s.kind in kinds]
        matches = [s for s in pool
                   if (self.service is None or self.service in (s.name, s.kind))
                   and (self.dc is None or s.dc == self.dc)]
        if not matches:
            names = sorted({s.name for s in pool} | {s.kind for s in pool})
            dcs = sorted({s.dc for s in pool if s.dc})
            raise ConfigError(f"no service of the stack matches {self.describe()}; services are "
                              f"{', '.join(names)} in {', '.join(dcs)}")
        return self._pick(matches)

    def links(self, topo: Target, kinds: tuple[str, ...] | None = None) -> list[Link]:
        pool = [lk for lk in topo.links.values() if kinds is None or lk.kind in kinds]
        matches = []
        for lk in pool:
            if self.link is not None and not fnmatch.fnmatchcase(lk.name, self.link):
                continue
            ends = [topo.services.get(lk.src), topo.services[lk.dst]]
            if self.service is not None and not any(
                    e is not None and self.service in (e.name, e.kind) for e in ends):
                continue
            if self.dc is not None and not any(e is not None and e.dc == self.dc for e in ends):
                continue
            matches.append(lk)
        if not matches:
            raise ConfigError(f"no link of the stack matches {self.describe()}; links are "
                              f"{', '.join(sorted(lk.name for lk in pool))}")
        return self._pick(matches)


def _is_share(text: str) -> bool:
    return _SHARE_RE.fullmatch(text) is not None and 0 < float(text) <= 100


@dataclass(frozen=True)
class Param:
    """One parameter of a fault kind: type, accepted range, default, unit."""
    kind: type
    lo: float | None = None
    hi: float | None = None
    default: Any = None
    unit: str = ""
    choices: tuple[str, ...] = ()
    required: bool = False

    def check(self, fault: str, name: str, value: Any) -> Any:
        what = f"{fault}: {name}"
        if self.kind is str:
            return v.choice(what, value, self.choices)
        if self.kind is int:
            return v.integer(what, value, lo=self.lo, hi=self.hi, unit=self.unit)
        return self.kind(v.number(what, value, lo=self.lo, hi=self.hi, unit=self.unit))

    def accepted(self) -> str:
        if self.kind is str:
            return ", ".join(self.choices)
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.lo:g} to {self.hi:g}{unit}"


@dataclass(frozen=True)
class FaultSpec:
    """A fault as declared: its kind's name, where, with what."""
    name: str
    target: Selector = field(default_factory=Selector)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    """One concrete, revertible step, as the dry run shows it and the ledger keeps it."""
    fault: str            # the fault kind, e.g. "latency"
    fault_id: str         # one declared fault may need several actions
    mechanism: str        # the executor: "toxic", "proxy", "signal", "docker", "iptables", ...
    target: str           # a service or link name
    dc: str | None
    params: dict          # everything inject and revert need

    def describe(self) -> str:
        where = f"{self.target}" + (f" ({self.dc})" if self.dc else "")
        detail = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "undo")
        return f"{self.fault}: {self.mechanism} on {where}" + (f" [{detail}]" if detail else "")

    @property
    def key(self) -> str:
        return f"{self.fault_id}/{self.mechanism}/{self.target}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Action:
        return cls(**d)


class FaultKind(Protocol):
    name: ClassVar[str]
    params: ClassVar[dict[str, Param]]
    runtimes: ClassVar[tuple[str, ...]]

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        """The concrete steps, against this topology. Raise ConfigError if it cannot be done."""


class Executor(Protocol):
    """Carries out one mechanism. Both methods are idempotent and bounded in time.

    The executors registered in executors.py also sweep (``Sweeper``): `chaos stack reset`
    asks each one to put back whatever its mechanism can leave on a stack, without the
    ledger."""
    mechanism: ClassVar[str]

    def inject(self, action: Action) -> None: ...

    def revert(self, action: Action) -> None: ...


class SweepStage(StrEnum):
    """The stages of `chaos stack reset`, in the order it runs them (reset.py). Within a
    stage the executors' sweeps do not depend on one another; they run in registry order."""
    HELPERS = "helpers"           # stop what would put a fault back behind the reset's back
    RUN = "run"                   # every process and container runs again, attached, unthrottled
    CLEAR = "clear"               # nothing left in the traffic's way (rules, toxics, proxies)
    START = "start"               # after the ledger's first revert: what is still down starts
    CLEAR_AGAIN = "clear-again"   # what could not be cleared while its service was down


Step = Callable[[str, Callable[[], Swept | None]], bool]
"""reset's runner of one sweep step: ``step(what, fn)`` shows ``what`` as progress, runs fn
and adds what it swept to the report; an exception of fn becomes the problem ``"what:
error"`` and the reset goes on. Returns whether fn ran through."""


class Sweeper(Protocol):
    def sweep(self, stage: SweepStage, step: Step) -> None:
        """Put back what this mechanism can leave on the stack at this stage, whoever left
        it (a crashed run, an older run, a person), through ``step``; nothing to do at a
        stage: return. Idempotent and bounded in time, like revert."""


REGISTRY: dict[str, FaultKind] = {}


def register(kind_cls: type) -> type:
    REGISTRY[kind_cls.name] = kind_cls()
    return kind_cls


def catalogue() -> dict[str, FaultKind]:
    """Every fault kind by name (importing chaos.faults.kinds registers them all)."""
    import chaos.faults.kinds  # noqa: F401
    return REGISTRY


def check_params(kind: FaultKind, given: Mapping[str, Any]) -> dict:
    given = v.mapping(f"{kind.name}: params", given, f"fault('{kind.name}', name=value, ...)")
    unknown = set(given) - set(kind.params)
    if unknown:
        accepted = (", ".join(f"{k} ({p.accepted()})" for k, p in kind.params.items())
                    or f"none: {kind.name} takes no parameters")
        raise ConfigError(f"{kind.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                          f"accepted: {accepted}")
    out = {}
    for name, p in kind.params.items():
        if name in given:
            out[name] = p.check(kind.name, name, given[name])
        elif p.required:
            raise ConfigError(f"{kind.name}: parameter {name} is required ({p.accepted()})")
        else:
            out[name] = p.default
    return out


def plan(spec: FaultSpec, topo: Target, fault_id: str | None = None) -> list[Action]:
    """Validate a declaration and resolve it into actions; nothing is touched."""
    registry = catalogue()
    v.instance("fault", spec, FaultSpec, "FaultSpec('latency', Selector(link='listener.edge-b'), "
               "{'latency_ms': 200})")
    v.instance(f"{v.show(spec.name)}: target", spec.target, Selector, "Selector(service='edge-b')")
    kind = registry.get(spec.name) if isinstance(spec.name, str) else None
    if kind is None:
        raise ConfigError(f"unknown fault {v.show(spec.name)}; use one of: {', '.join(sorted(registry))}")
    refused = runtime_of(topo).refusal(spec.name, kind.runtimes)
    if refused:
        raise ConfigError(refused)
    params = check_params(kind, spec.params)
    actions = kind.actions(topo, spec.target, params, fault_id or f"{spec.name}-{uuid.uuid4().hex[:6]}")
    supported(spec.name, actions, topo)
    return actions


SERVICE_MECHANISMS = ("lifecycle", "cpu", "iptables", "network")   # act on a service's processes


def supported(fault: str, actions: list[Action], topo: Target) -> None:
    """What the target's description allows: a fault that needs to find a service's
    containers or processes, or toxiproxy, is refused when the description does not say how
    (the runtime says why)."""
    runtime = runtime_of(topo)
    for a in actions:
        if a.mechanism in ("toxic", "proxy") and not topo.toxiproxy:
            raise ConfigError(f"{fault}: target {topo.name} declares no toxiproxy API (toxiproxy: "
                              "host:port), so its links cannot be faulted")
        if a.mechanism not in SERVICE_MECHANISMS:
            continue
        refused = runtime.service_fault_refusal(fault, a.target, topo)
        if refused:
            raise ConfigError(refused)


ExecutorFactory = Callable[[str], Executor]
