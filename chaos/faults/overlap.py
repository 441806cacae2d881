"""Faults that would fight over one target: refused at planning, before anything is injected.

Some mechanisms hold one on/off state per target: a proxy is enabled or not (``link_down``,
``dc_partition``, ``slow_state`` refused), a service runs or not (``dc_loss``), a container
is on a network or not, a service has one CPU limit, the speaker plays one echo. Two faults
of such a mechanism on the same target at the same time do not compose: the first revert
would bring the target back while the journal says the second still holds it. So they are
refused, naming both faults, the target and the times, with what to write instead.

Toxics (``latency``, ``bandwidth``, ...) and packet-drop rules are named per fault, so
faults of those kinds on one link or service stack up and are reverted one by one: they
are not refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaos.core.errors import ConfigError
from chaos.faults.base import Action

EXCLUSIVE = {"proxy": "disable", "lifecycle": "take down", "network": "disconnect",
             "cpu": "limit the CPU of"}


def held(a: Action) -> list[tuple[str, str]]:
    """The (mechanism, target) pairs an action holds exclusively (none for stackable ones)."""
    if a.mechanism == "proxy":
        names = a.params.get("proxies") or [a.params.get("proxy") or a.target]
        return [("proxy", str(n)) for n in names]
    if a.mechanism in EXCLUSIVE:
        return [(a.mechanism, str(a.target))]
    if a.mechanism == "client" and a.fault == "echo":
        return [("echo", "speaker")]
    return []


@dataclass(frozen=True)
class Scheduled:
    """A planned fault on the method's clock: on from start_s to end_s (seconds)."""
    label: str
    start_s: float
    end_s: float
    actions: Sequence[Action]


def _verb(mechanism: str) -> str:
    return EXCLUSIVE.get(mechanism, "play")


def check(faults: Iterable[Scheduled]) -> None:
    """ConfigError if two faults hold one target exclusively at overlapping times (touching
    is fine: a revert at t runs before an inject at t)."""
    items = sorted(faults, key=lambda f: (f.start_s, f.end_s))
    for i, a in enumerate(items):
        mine = {k for act in a.actions for k in held(act)}
        if not mine:
            continue
        for b in items[i + 1:]:
            if b.start_s >= a.end_s:
                break
            shared = sorted(mine & {k for act in b.actions for k in held(act)})
            if shared:
                mech, target = shared[0]
                more = f" (and {len(shared) - 1} more)" if len(shared) > 1 else ""
                raise ConfigError(
                    f"{a.label} (t={a.start_s:g}-{a.end_s:g} s of the method) and {b.label} "
                    f"(t={b.start_s:g}-{b.end_s:g} s) both {_verb(mech)} {target}{more} at the "
                    f"same time: the first revert would bring it back while the second still "
                    f"holds it. Overlapping faults on one target are not composed: start the "
                    f"second once the first ends (at_s >= {a.end_s:g}), or declare one fault "
                    "that covers both windows")


def check_active(actions: Iterable[Action], active: Iterable[Action], label: str) -> None:
    """ConfigError if a fault about to be injected holds a target that a fault already
    active on the stack (in the ledger, from any process) holds."""
    theirs: dict[tuple[str, str], Action] = {}
    for a in active:
        for k in held(a):
            theirs.setdefault(k, a)
    for a in actions:
        for k in held(a):
            other = theirs.get(k)
            if other is not None and other.fault_id != a.fault_id:
                raise ConfigError(
                    f"{label} would {_verb(k[0])} {k[1]}, which {other.fault} ({other.fault_id}) "
                    "already holds on this stack: the first revert would bring it back while "
                    "the other still holds it. Wait until it is reverted, or `chaos stack "
                    "reset` to put everything back first")
