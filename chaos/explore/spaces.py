"""The catalogue a search draws from: which fault kinds, where, and within which bounds.

    space("dc_loss")                                 # every DC of the target, whole or one kind
    space("dc_loss", dcs=("dc-c",))                  # only dc-c
    space("latency", latency_ms=(10, 99))            # every link, 10-99 ms
    space("packet_drop", services=("edge-b",), share=(0.05, 0.3))

A name alone (``"latency"``) is the kind with its default bounds. Each kind knows its
targets in the topology (DCs, services or links) and its magnitudes, every one on a grid
and in ascending order, so that Hypothesis shrinks towards the first (smallest) value.
Bounds are checked against the fault kind's own accepted range when the space is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chaos.core.errors import ConfigError
from chaos.faults.base import catalogue as fault_kinds
from chaos.faults.kinds.packet_drop import service_kinds
from chaos.core.target import Target

# kind -> {param: (lo, hi, grid)}: the magnitudes a search draws by default
MAGNITUDES: dict[str, dict[str, tuple[float, float, float]]] = {
    "dc_loss": {},
    "dc_partition": {},
    "latency": {"latency_ms": (50, 1000, 50)},
    "packet_drop": {"share": (0.05, 0.5, 0.05)},
    "bandwidth": {"rate_kbps": (16, 256, 16)},
    "link_down": {},
    "slow_state": {"latency_ms": (100, 2000, 100)},
    "cpu_starve": {"share": (0.05, 0.5, 0.05)},
    "join_storm": {"rate": (20, 200, 20)},
}
# what each kind is drawn against in the topology
WHERE = {"dc_loss": "dc", "dc_partition": "dc", "latency": "link", "packet_drop": "service",
         "bandwidth": "link", "link_down": "link", "slow_state": "link", "cpu_starve": "service",
         "join_storm": "audience"}


@dataclass(frozen=True)
class Space:
    """One fault kind of the catalogue: its targets and magnitude bounds ``(lo, hi, grid)``.

    Empty ``dcs``/``services``/``links`` mean every one the target has that fits the kind.
    ``narrow`` (dc_loss): a DC may also lose a single kind of service, a smaller fault that
    the shrink prefers to the whole DC."""
    kind: str
    dcs: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    bounds: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    narrow: bool = True

    def magnitudes(self) -> dict[str, tuple[float, ...]]:
        """Every magnitude a draw may take, per parameter, ascending."""
        out = {}
        for p, (lo, hi, grid) in {**MAGNITUDES[self.kind], **self.bounds}.items():
            n = int(round((hi - lo) / grid)) if grid else 0
            out[p] = tuple(_tidy(lo + i * grid) for i in range(n + 1))
        return out

    def resolve(self, target: Target) -> Resolved:
        """The space against a target's topology: concrete DCs, services, links."""
        where = WHERE[self.kind]
        if where == "dc":
            all_dcs = tuple(d for d in target.dcs if target.in_dc(d))
            chosen = self.dcs or all_dcs
            _known("dcs", chosen, all_dcs, self.kind)
            kinds = {d: depended_first(target, d) for d in chosen}
            return Resolved(self, dcs=chosen, dc_kinds=kinds if self.kind == "dc_loss" and self.narrow else {})
        if where == "service":
            pool = tuple(sorted(s.name for s in target.services.values() if s.kind in service_kinds(target)))
            chosen = self.services or pool
            _known("services", chosen, pool, self.kind)
            return Resolved(self, services=chosen)
        if where == "link":
            pool = tuple(sorted((lk for lk in target.links.values()
                                 if self.kind != "slow_state" or lk.kind == "gateway_redis"),
                                key=lambda lk: lk.index))
            names = tuple(lk.name for lk in pool)
            chosen = self.links or names
            _known("links", chosen, names, self.kind)
            return Resolved(self, links=chosen)
        return Resolved(self)


def depended_first(target: Target, dc: str) -> tuple[str, ...]:
    """The kinds of service in ``dc``, the one most others depend on (directly or not)
    first: losing it alone is the simplest explanation of a breach, so the shrink and the
    reduction try it first (redis and the origin before the gateways and edges)."""
    def dependents(kind: str) -> int:
        names = {s.name for s in target.in_dc(dc) if s.kind == kind}
        return sum(1 for s in target.services if names & set(target.dependencies(s)))
    return tuple(sorted({s.kind for s in target.in_dc(dc)}, key=lambda k: (-dependents(k), k)))


@dataclass(frozen=True)
class Resolved:
    space: Space
    dcs: tuple[str, ...] = ()
    dc_kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    services: tuple[str, ...] = ()
    links: tuple[str, ...] = ()


def _tidy(x: float) -> float | int:
    r = round(x, 6)
    return int(r) if float(r).is_integer() else r


def _known(what: str, chosen: Sequence[str], pool: Sequence[str], kind: str) -> None:
    bad = [c for c in chosen if c not in pool]
    if bad:
        raise ConfigError(f"space({kind!r}): {what} {', '.join(bad)} not in the target; "
                          f"it has {', '.join(pool) or 'none'}")


def space(kind: str, *, dcs: Sequence[str] = (), services: Sequence[str] = (),
          links: Sequence[str] = (), narrow: bool = True, **bounds: Sequence[float]) -> Space:
    """A fault kind of the catalogue, with its targets and bounds: ``latency_ms=(10, 99)``
    or ``(lo, hi, grid)``."""
    if kind not in MAGNITUDES:
        raise ConfigError(f"space({kind!r}): the search draws {', '.join(MAGNITUDES)}; "
                          "pick one of them")
    params = fault_kinds()[kind].params
    checked: dict[str, tuple[float, float, float]] = {}
    for name, b in bounds.items():
        if name not in MAGNITUDES[kind]:
            raise ConfigError(f"space({kind!r}): {name} is not a magnitude the search draws; "
                              f"it draws {', '.join(MAGNITUDES[kind]) or 'none for this kind'}")
        if not isinstance(b, (tuple, list)) or len(b) not in (2, 3) or \
                any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in b):
            raise ConfigError(f"space({kind!r}): {name}={b!r}; give (lo, hi) or (lo, hi, grid), "
                              f"e.g. {name}={MAGNITUDES[kind][name][:2]}")
        lo, hi = float(b[0]), float(b[1])
        grid = float(b[2]) if len(b) == 3 else min(MAGNITUDES[kind][name][2], (hi - lo) or 1.0)
        p = params[name]
        if lo > hi or grid <= 0 or (p.lo is not None and lo < p.lo) or (p.hi is not None and hi > p.hi):
            raise ConfigError(f"space({kind!r}): {name}=({lo:g}, {hi:g}) must be lo <= hi within "
                              f"{p.accepted()}, with a grid > 0 (got {grid:g})")
        checked[name] = (lo, hi, grid)
    return Space(kind, tuple(dcs), tuple(services), tuple(links), checked, narrow)


def as_spaces(faults: Sequence[str | Space]) -> tuple[Space, ...]:
    """Names or Spaces -> Spaces (a name is its kind with default bounds)."""
    if isinstance(faults, (str, Space)):
        faults = (faults,)
    out = tuple(f if isinstance(f, Space) else space(f) for f in faults)
    if not out:
        raise ConfigError("the catalogue is empty; name at least one fault kind, e.g. "
                          "faults=('dc_loss', 'latency')")
    return out
