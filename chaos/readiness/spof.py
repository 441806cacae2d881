"""Single points of failure, read from the target: a service in one DC that clients of
the other DCs cannot do without.

A service's ``depends`` lists what it needs; several services of one kind are read as
alternatives (a primary and its replica). So a DC is a single point of failure for a
service elsewhere when every alternative of some kind it depends on (transitively) lives
in that DC. The candidates are then measured: a ``dc_loss`` run of that DC under load.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.core.target import Target


@dataclass(frozen=True)
class Spof:
    service: str            # "redis-a"
    kind: str
    dc: str
    needed_by: tuple[str, ...]      # services in other DCs that have no alternative

    def describe(self, target: Target) -> str:
        noun = target.nouns.get(self.kind, self.kind)
        return (f"{noun} ({self.service}) lives only in {self.dc}, and "
                f"{', '.join(self.needed_by)} in the other DCs need it")

    def to_dict(self) -> dict:
        return {"service": self.service, "kind": self.kind, "dc": self.dc,
                "needed_by": list(self.needed_by)}


def _needs(target: Target, name: str) -> dict[str, set[str]]:
    """kind -> the alternatives of that kind ``name`` needs, directly or not."""
    out: dict[str, set[str]] = {}
    for dep in target.dependencies(name):
        s = target.services.get(dep)
        if s is not None:
            out.setdefault(s.kind, set()).add(dep)
    return out


def find(target: Target) -> list[Spof]:
    """Every service whose DC's loss leaves clients of another DC without any alternative,
    on the listeners' join and audio paths."""
    path_kinds = set(target.paths.join) | set(target.paths.audio)
    users = [s for s in target.services.values() if s.kind in path_kinds and s.dc]
    found: dict[str, list[str]] = {}
    for user in users:
        for kind, alternatives in _needs(target, user.name).items():
            dcs = {target.services[a].dc for a in alternatives}
            if len(dcs) != 1:
                continue
            dc = next(iter(dcs))
            if dc is None or dc == user.dc:
                continue
            for a in alternatives:
                found.setdefault(a, []).append(user.name)
    return [Spof(name, target.services[name].kind, target.services[name].dc or "",
                 tuple(sorted(set(users_))))
            for name, users_ in sorted(found.items())]


def dc_to_lose(target: Target, spofs: list[Spof]) -> str:
    """The DC a survivability run loses: the one holding single points of failure, else the
    one that the most services of other DCs depend on."""
    if spofs:
        return max(target.dcs, key=lambda dc: sum(s.dc == dc for s in spofs))

    def weight(dc: str) -> int:
        return sum(1 for s in target.services.values() if s.dc and s.dc != dc
                   for d in target.dependencies(s.name)
                   if target.services.get(d) is not None and target.services[d].dc == dc)
    return max(target.dcs, key=lambda dc: (weight(dc), -target.dcs.index(dc)))
