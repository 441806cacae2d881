"""Live SLIs as Prometheus metrics: an opt-in ``/metrics`` endpoint while a run (or a game
day, which is a run) goes on, for the dashboards the on-call team already watches.

On when ``CHAOS_METRICS_PORT`` is set (``CHAOS_METRICS_ADDR`` for the address, 127.0.0.1 by
default): one HTTP server for the run, on its own registry, closed when the run ends.
Metrics (base units in the names; ``dc`` is a DC's name or ``all``):

- ``chaos_join_duration_seconds{dc}``: histogram of the probe's completed joins;
  ``chaos_joins_failed_total{dc}``: joins that failed;
- ``chaos_audio_delivered_ratio{dc}``: the share of frames heard in the last settled second;
- ``chaos_mouth_to_ear_seconds{dc}``: the p95 of mouth-to-ear in the last settled second;
- ``chaos_fault_active{fault,kind}``: 1 while a fault is injected, 0 after its revert;
- ``chaos_run_phase{phase}``: 1 for the phase the run is in (before, during, after);
- ``chaos_run_info{experiment,run_id}``: 1, to join the others on.

Needs prometheus-client (a dependency of the framework's test extra and the reference stack).
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from chaos.core.errors import ConfigError

ENV_PORT, ENV_ADDR = "CHAOS_METRICS_PORT", "CHAOS_METRICS_ADDR"
JOIN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
PERIOD_S = 1.0


def configured(env=None) -> tuple[str, int] | None:
    """(address, port) the environment asks for, or None (off). ConfigError on a bad port."""
    env = os.environ if env is None else env
    raw = env.get(ENV_PORT, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{ENV_PORT}={raw!r} is not a port: give a number from 1 to 65535 "
                          f"(or unset it to serve no metrics)")
    return env.get(ENV_ADDR, "").strip() or "127.0.0.1", int(raw)


def current_phase(phases: dict[str, list[float]], t: float) -> str:
    """The phase the run is in at ``t``: the latest one that has started (the method writes
    recovery's and after's spans ahead, when the faults end); none yet is the gate's before."""
    started = [(span[0], k) for k, span in phases.items() if span and span[0] <= t]
    return max(started)[1] if started else "before"


class LiveMetrics:
    """The run's metrics; ``update`` reads the method's timeline and live view."""

    def __init__(self, experiment: str, run_id: str, dcs) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError as e:
            raise ConfigError(f"{ENV_PORT} is set but prometheus-client is not installed: "
                              "pip install prometheus-client (or unset it)") from e
        self.registry = reg = CollectorRegistry()
        self.dcs = tuple(dcs)
        self.joins = Histogram("chaos_join_duration_seconds", "the probe's completed joins",
                               ["dc"], buckets=JOIN_BUCKETS, registry=reg)
        self.failed = Counter("chaos_joins_failed", "joins of the probe that failed", ["dc"], registry=reg)
        self.delivered = Gauge("chaos_audio_delivered_ratio",
                               "share of frames heard in the last settled second", ["dc"], registry=reg)
        self.m2e = Gauge("chaos_mouth_to_ear_seconds", "p95 mouth-to-ear in the last settled second",
                         ["dc"], registry=reg)
        self.fault = Gauge("chaos_fault_active", "1 while the fault is injected", ["fault", "kind"],
                           registry=reg)
        self.phase = Gauge("chaos_run_phase", "1 for the phase the run is in", ["phase"], registry=reg)
        info = Gauge("chaos_run_info", "the run", ["experiment", "run_id"], registry=reg)
        info.labels(experiment, run_id).set(1)
        for dc in ("all", *self.dcs):
            self.joins.labels(dc)
            self.failed.labels(dc)
        self._seen: set[tuple] = set()
        self._server = None

    def serve(self, addr: str, port: int) -> None:
        from prometheus_client import start_http_server
        try:
            self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as e:
            raise ConfigError(f"cannot serve metrics on {addr}:{port} ({e}): free the port or set "
                              f"{ENV_PORT} to another one") from e

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def update(self, tl, live) -> None:
        from chaos.runner.observe import live_horizon, now_s
        for r in live.records():
            # a listener's join counted once: by who it is and when it asked (a crowd's worker
            # hands in a new record object at its end, so an object's id is no key)
            key = (r.index, r.home_dc, r.started_ns)
            if key in self._seen or (r.join_s is None and not r.join_error):
                continue
            self._seen.add(key)
            for dc in ("all", r.home_dc):
                if dc is None:
                    continue
                if r.join_s is not None:
                    self.joins.labels(dc).observe(r.join_s)
                else:
                    self.failed.labels(dc).inc()
        upto = live_horizon(live)
        if upto >= 1:
            from chaos.audio import sli
            from chaos.core.slo import weighted_percentile
            import numpy as np
            for dc in ("all", *self.dcs):
                groups = live.bins(None if dc == "all" else dc)
                got = sli.audio_delivered(groups, live.speaker.produced, upto_s=upto, since_s=upto - 1)
                _, v, w = got.between_weighted(upto - 1, upto)
                if len(v):
                    w = np.ones(len(v)) if w is None else w
                    if w.sum() > 0:
                        self.delivered.labels(dc).set(float((v * w).sum() / w.sum()))
                m = sli.mouth_to_ear(groups, upto_s=upto, since_s=upto - 1)
                _, v, w = m.between_weighted(upto - 1, upto)
                if len(v):
                    p95 = weighted_percentile(v, np.ones(len(v)) if w is None else w, 95)
                    if p95 is not None:
                        self.m2e.labels(dc).set(p95)
        for f in tl.faults:
            if f.started_s is not None:
                self.fault.labels(f.step.describe(), f.step.spec.name).set(1 if f.active else 0)
        self.phase_now = current_phase(tl.phases, now_s(live.t0_ns))
        for k in ("before", "during", "recovery", "after"):
            self.phase.labels(k).set(1 if k == self.phase_now else 0)

    async def follow(self, tl, live, stop: asyncio.Event) -> None:
        """Update once a second until ``stop`` (the last update after it)."""
        while not stop.is_set():
            with contextlib.suppress(Exception):   # a metric never breaks a run
                self.update(tl, live)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PERIOD_S)
        with contextlib.suppress(Exception):
            self.update(tl, live)
