"""``cpu_starve``: a service gets only a share of one CPU.

- docker: the container's CFS quota (``cpu_period`` 100 ms, ``cpu_quota`` share x 100 ms).
  Revert lifts the limit (quota -1), which is how the stack's containers run: inject
  refuses a container that already has a limit, so there is never an earlier value to
  restore.
- local: a SIGSTOP/SIGCONT duty cycle on the service's process over the same 100 ms
  period (``python -m chaos.faults.executors.dutycycle``): it runs for share x period, then is
  stopped for the rest.

The two are not the same fault for a service that needs less than its share. A CFS quota
throttles only in the periods where the container used up its quota; the duty cycle stops
the process for (1 - share) of every period whatever it needs. Measured with an edge
serving 3 listeners per DC (it needs ~3 % of a CPU here): local 0.05 puts dc-c's median
mouth-to-ear ~60 ms above the other DCs'; docker 0.05 only shows in the tail (throttled
~1 s in 5 s, when docker's health check runs inside the container), docker 0.02 puts it
~1.2 s behind and 0.01 ~3 s. Below the need, both runtimes make the service fall further
behind every period.
"""

from __future__ import annotations

from typing import ClassVar

from chaos.core.target import Target

from chaos.faults.base import Action, Param, Selector, register
from chaos.targets.runtimes import runtime_of

PERIOD_US = 100_000


@register
class CpuStarve:
    name = "cpu_starve"
    params: ClassVar[dict[str, Param]] = {
        "share": Param(float, 0.01, 1.0, required=True, unit="CPU"),
    }
    runtimes: ClassVar[tuple[str, ...]] = ("local", "docker")

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        share = params["share"]
        runtime = runtime_of(topo)
        out = []
        for svc in target.services(topo):
            p = {"service": svc.name, "runtime": topo.runtime, "share": share,
                 "period_us": PERIOD_US}
            if runtime.caps_cpu_by_quota:
                p["cpu_quota"] = runtime.cpu_quota_us(share, PERIOD_US)
            out.append(Action(self.name, fault_id, "cpu", svc.name, svc.dc, p))
        return out
