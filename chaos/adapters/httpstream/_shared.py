"""What this adapter takes from the rest of the framework: the listener record and the
per-second bins (the shapes ``chaos.sli`` judges), the thick listener's report and run
cache (the shape the session's SLI series read), and the speaker's voice and echo state
(the echo fault). One place, so that moving them moves one import.

The report, the run cache and the voice are protocol-independent but still live beside
the reference stack's clients (importing them loads the reference stack's package).
"""

from __future__ import annotations

from ...probes.reception import Produced, SecondBins
from ...probes.record import ListenerRecord
from ...sli import ECHO_RESOLVE_DB, PLAYOUT_DEADLINE_S
from ..space.speaker import HISTORY_FRAMES, MAX_ECHO_S, EchoState, Voice, hot_mic
from ..space.thick import (
    CODEC_DELAY_MS, CODEC_DELAY_SAMPLES, ECHO_LEAD_FRAMES, EchoWindow, RunCache, ThickReport,
    _decisive, _unheard, _windows,
)

__all__ = ["CODEC_DELAY_MS", "CODEC_DELAY_SAMPLES", "ECHO_LEAD_FRAMES", "ECHO_RESOLVE_DB",
           "HISTORY_FRAMES", "MAX_ECHO_S", "PLAYOUT_DEADLINE_S", "EchoState", "EchoWindow",
           "ListenerRecord", "Produced", "RunCache", "SecondBins", "ThickReport", "Voice",
           "_decisive", "_unheard", "_windows", "hot_mic"]
