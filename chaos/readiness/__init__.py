"""Pre-event readiness: a go / no-go verdict with measured headroom.

    from chaos.readiness import Demand, assess
    a = assess(Demand.of(600_000, "50000/min"), chaos.targets.stack.current(), survive="dc_loss")
    a.verdict.verdict        # Readiness.GO | GO_AT_RISK | NO_GO | INCONCLUSIVE
    a.exit_code, a.files["readiness.html"]

Modules: demand (the event and the fleet), measure (capacity sweeps and the dc_loss run,
each an ordinary run), usl (the scalability fit), spof (single points of failure from the
target), verdict (the pure decision), evidence (readiness.json and readiness.html),
assess (the whole assessment).
"""

from chaos.readiness.assess import Assessment, assess
from chaos.readiness.demand import Demand, Fleet, load_fleet
from chaos.readiness.measure import Plan
from chaos.readiness.verdict import EXIT_CODES, Readiness, Verdict, decide

__all__ = ["Assessment", "Demand", "EXIT_CODES", "Fleet", "Plan", "Readiness", "Verdict", "assess",
           "decide", "load_fleet"]
