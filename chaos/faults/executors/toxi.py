"""Mechanisms ``toxic`` and ``proxy``: toxiproxy toxics on a link, and links taken down.

Action params (everything a revert needs, from the ledger alone):

- ``toxic``: ``{"proxy": "<link>", "toxic": "<toxiproxy type>", "stream", "toxicity",
  "attributes": {...}, "undo": {"toxics": [{"name", "stream"}, ...]}}``: one toxic per
  entry of ``undo.toxics`` (two for stream "both"). Inject adds each (one already there
  under its name counts as done); revert removes each by name (one already gone counts as
  done).
- ``proxy``: ``{"proxy": "<link>"}`` or ``{"proxies": ["<link>", ...]}``, and optionally
  ``"enabled"`` (what inject sets; default False). Revert enables them.

toxiproxy is reached at the stack's published API address, only through chaos.targets.toxi (every
call has a deadline).

Sweep (`chaos stack reset`, without the ledger): toxiproxy's own reset (every toxic
removed, every proxy enabled), before anything waits for a service to be healthy. A
toxiproxy of the reference stack that runs but does not answer is restarted: the DELETE of
a latency toxic under traffic can hang its whole API (Shopify/toxiproxy#412, #558), and it
comes back clean from its config (its links' connections are cut once). One that was down
(or a described target's, which is not restarted) is reset again once the stack runs again.
"""

from __future__ import annotations

import time

from chaos.core.errors import StackError
from chaos.targets.runtimes import runtime_of
from chaos.targets.state import StackState
from chaos.targets.toxi import Toxiproxy, ToxiproxyError
from chaos.faults.base import Action, Step, SweepStage, Swept

TOXI_TIMEOUT_S = 1.5   # per call; an action's two calls stay inside the engine's 10 s deadline
DRAIN_MAX_S = 4.0      # a removal that waits for held data: polled at most this long
SWEEP_TIMEOUT_S = 2.0  # per call of a reset's sweep
RESTART_ANSWER_S = 20.0


def _proxies(a: Action) -> list[str]:
    return list(a.params.get("proxies") or [a.params.get("proxy") or a.target])


class ToxiExecutor:
    mechanism = "toxic"

    def __init__(self, toxi: Toxiproxy, state: StackState | None = None) -> None:
        self.toxi, self.state = toxi, state
        self._answered: bool | None = None      # did the sweep's first reset get through?

    def sweep(self, stage: SweepStage, step: Step) -> None:
        if self.state is None:
            return
        if stage is SweepStage.CLEAR:
            step("resetting toxiproxy", lambda: self._reset(quiet_failure=True))
            if not self._answered and self.state.topology.is_reference():
                # down, or running with its API hung: restart it clean (a described
                # target's toxiproxy is the user's)
                step("restarting a toxiproxy that does not answer",
                     lambda: Swept(did=restart_toxiproxy(self.state)))
        elif stage is SweepStage.CLEAR_AGAIN and not self._answered:
            step("resetting toxiproxy", lambda: self._reset(quiet_failure=False))

    def _reset(self, quiet_failure: bool) -> Swept | None:
        swept = reset_toxiproxy(self.state, quiet_failure)
        self._answered = swept is not None
        return swept

    def inject(self, a: Action) -> None:
        if a.mechanism == "proxy":
            for name in _proxies(a):
                self.toxi.set_enabled(name, bool(a.params.get("enabled", False)))
            return
        p = a.params
        proxy = p["proxy"]
        for t in p["undo"]["toxics"]:
            try:
                self.toxi.add_toxic(proxy, p["toxic"], p["attributes"], stream=t["stream"],
                                    toxicity=p["toxicity"], name=t["name"])
            except ToxiproxyError:
                if not self._has_toxic(proxy, t["name"]):
                    raise  # refused for another reason than "already there"

    def revert(self, a: Action) -> None:
        try:
            if a.mechanism == "proxy":
                for name in _proxies(a):
                    self.toxi.set_enabled(name, True)
                return
            for t in a.params["undo"]["toxics"]:
                try:
                    self.toxi.remove_toxic(a.params["proxy"], t["name"])
                except ToxiproxyError:
                    self._wait_gone(a, t["name"])
        except ToxiproxyError:
            if self.state is None:
                raise
            # toxiproxy runs but its API hangs (the DELETE of a latency toxic under traffic
            # can wedge it for good: Shopify/toxiproxy#412, #558): the last resort is a
            # restart, clean from its config; every link's connections are cut once
            restart_toxiproxy(self.state)

    def _wait_gone(self, a: Action, name: str) -> None:
        """toxiproxy answers a toxic's removal only once the data it holds has drained (a
        3 s latency toxic: ~3 s), and its API waits meanwhile: past the call's timeout the
        removal goes on. Poll until the toxic is gone, bounded by what it can hold."""
        attrs = a.params.get("attributes") or {}
        hold_s = (float(attrs.get("latency", 0)) + float(attrs.get("jitter", 0))
                  + float(attrs.get("timeout", 0))) / 1000.0
        deadline = time.monotonic() + min(DRAIN_MAX_S, hold_s + 2.0)
        while True:
            try:
                if not self._has_toxic(a.params["proxy"], name):
                    return
                self.toxi.remove_toxic(a.params["proxy"], name)
                return
            except ToxiproxyError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def _has_toxic(self, proxy: str, name: str) -> bool:
        p = self.toxi.proxies().get(proxy) or {}
        return any(t.get("name") == name for t in p.get("toxics") or [])


def restart_toxiproxy(state: StackState) -> list[str]:
    """The last resort for a toxiproxy that runs but does not answer: kill it and start it
    again, clean from its config (every proxy enabled, no toxic), and wait until it answers.
    Every connection through it is cut once. A toxiproxy that is down is only started."""
    did = runtime_of(state).restart_clean(state, "toxiproxy")
    toxi, end = Toxiproxy(state.topology.toxiproxy, timeout_s=1.0), time.monotonic() + RESTART_ANSWER_S
    while True:
        try:
            toxi.version()
            return did
        except ToxiproxyError:
            if time.monotonic() > end:
                raise StackError(f"toxiproxy did not answer within {RESTART_ANSWER_S:g} s of "
                                 "its restart") from None
            time.sleep(0.2)


def reset_toxiproxy(state: StackState, quiet_failure: bool = False) -> Swept | None:
    """toxiproxy's reset: every toxic removed, every proxy enabled, and said what it was.
    None if toxiproxy does not answer and quiet_failure (else ToxiproxyError)."""
    toxi = Toxiproxy(state.topology.toxiproxy, timeout_s=SWEEP_TIMEOUT_S)
    try:
        before = toxi.proxies()
    except ToxiproxyError:
        if quiet_failure:
            return None
        raise
    toxics = [f"{t.get('name')} on {name}" for name, p in before.items() for t in p.get("toxics") or []]
    disabled = [name for name, p in before.items() if not p.get("enabled", True)]
    missing = sorted(set(state.topology.links) - set(before))
    toxi.reset()
    swept = Swept()
    still = _still_disabled(toxi)
    if still:
        addresses = ", ".join(f"{n} ({state.topology.links[n].listen})" if n in state.topology.links
                              else n for n in still)
        swept.problems.append(
            f"toxiproxy could not listen again for {addresses}: a disabled proxy frees its "
            "port, and a client connection can take it as its ephemeral source port (ports "
            "32768-60999 on Linux) and hold it in TIME_WAIT for up to 60 s. `chaos stack "
            "reset` again in a minute; a base port below 32768 avoids it")
    if toxics:
        swept.did.append(f"removed {len(toxics)} toxic(s): {', '.join(sorted(toxics))}")
    if disabled:
        swept.did.append(f"enabled {len(disabled)} proxy(ies): {', '.join(sorted(disabled))}")
    if missing:
        swept.problems.append(f"toxiproxy has no proxy for {', '.join(missing)} (restarted "
                              "without its config?)")
    return swept


def _still_disabled(toxi: Toxiproxy, within_s: float = 3.0) -> list[str]:
    """Proxies that stay disabled after a reset (toxiproxy answers 200 even when it cannot
    listen again), retried for a few seconds."""
    deadline = time.monotonic() + within_s
    while True:
        off = sorted(n for n, p in toxi.proxies().items() if not p.get("enabled", True))
        if not off or time.monotonic() > deadline:
            return off
        time.sleep(0.5)
        for name in off:
            toxi.set_enabled(name, True)


def make(state: StackState) -> ToxiExecutor:
    return ToxiExecutor(Toxiproxy(state.topology.toxiproxy,
                                  timeout_s=TOXI_TIMEOUT_S), state)
