"""The audience load generator: open-loop join storms of thin listeners.

    from chaos.load import ArrivalSchedule, StormOptions, run_storm
    result = await run_storm(topology, space, speaker_id, ArrivalSchedule(833, 60))
    result.join_p95_s, result.scale_factor.describe()

arrivals.py (when listeners arrive), histogram.py (mergeable latency histogram),
worker.py (one process's storm; each arrival is the target adapter's storm client, e.g.
chaos.adapters.space.storm or chaos.adapters.httpstream.storm), generator.py (the
processes), result.py (the merged result).
"""

from chaos.core.arrivals import INCIDENT_JOINS_PER_S, ArrivalSchedule, Burst, Ramp, parse_rate
from chaos.load.generator import run_storm
from chaos.audio.histogram import Histogram
from chaos.core.storm import StormOptions
from chaos.load.result import INCIDENT_AUDIENCE, ScaleFactor, StormResult

__all__ = ["INCIDENT_AUDIENCE", "INCIDENT_JOINS_PER_S", "ArrivalSchedule", "Burst", "Histogram",
           "Ramp", "ScaleFactor", "StormOptions", "StormResult", "parse_rate", "run_storm"]
