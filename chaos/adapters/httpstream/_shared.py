"""What this adapter takes from the framework's probes: the listener record (the shape
``chaos.sli`` judges), the thick listener's report and run cache (the shape the
session's SLI series read), and the speaker's voice and echo state (the echo fault).
One place, so that moving them moves one import."""

from __future__ import annotations

from ...probes.listener import ListenerRecord
from ...probes.speaker import HISTORY_FRAMES, MAX_ECHO_S, EchoState, Voice, hot_mic
from ...probes.thick import (
    CODEC_DELAY_MS, CODEC_DELAY_SAMPLES, ECHO_LEAD_FRAMES, ECHO_RESOLVE_DB, PLAYOUT_DEADLINE_S,
    EchoWindow, RunCache, ThickReport, _decisive, _unheard, _windows,
)

__all__ = ["HISTORY_FRAMES", "MAX_ECHO_S", "EchoState", "Voice", "hot_mic", "CODEC_DELAY_MS", "CODEC_DELAY_SAMPLES", "ECHO_LEAD_FRAMES", "ECHO_RESOLVE_DB",
           "PLAYOUT_DEADLINE_S", "EchoWindow", "ListenerRecord", "RunCache", "ThickReport",
           "_decisive", "_unheard", "_windows"]
