"""Mechanisms ``toxic`` and ``proxy``: toxiproxy toxics on a link, and links taken down.

Action params (everything a revert needs, from the ledger alone):

- ``toxic``: ``{"proxy": "<link>", "toxic": "<toxiproxy type>", "stream", "toxicity",
  "attributes": {...}, "undo": {"toxics": [{"name", "stream"}, ...]}}``: one toxic per
  entry of ``undo.toxics`` (two for stream "both"). Inject adds each (one already there
  under its name counts as done); revert removes each by name (one already gone counts as
  done).
- ``proxy``: ``{"proxy": "<link>"}`` or ``{"proxies": ["<link>", ...]}``, and optionally
  ``"enabled"`` (what inject sets; default False). Revert enables them.

toxiproxy is reached at the stack's published API address, only through chaos.toxi (every
call has a deadline).
"""

from __future__ import annotations

import time

from ..targets.state import StackState
from ..toxi import Toxiproxy, ToxiproxyError
from .base import Action

TOXI_TIMEOUT_S = 1.5   # per call; an action's two calls stay inside the engine's 10 s deadline
DRAIN_MAX_S = 4.0      # a removal that waits for held data: polled at most this long


def _proxies(a: Action) -> list[str]:
    return list(a.params.get("proxies") or [a.params.get("proxy") or a.target])


class ToxiExecutor:
    mechanism = "toxic"

    def __init__(self, toxi: Toxiproxy, state: StackState | None = None) -> None:
        self.toxi, self.state = toxi, state

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
            from .reset import restart_toxiproxy
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


def make(state: StackState) -> ToxiExecutor:
    return ToxiExecutor(Toxiproxy(state.topology.toxiproxy,
                                  timeout_s=TOXI_TIMEOUT_S), state)
