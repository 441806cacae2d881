"""What this adapter takes from the framework's probes: the listener record (the shape
``chaos.sli`` judges) and the thick listener's report and run cache (the shape the
session's SLI series read). One place, so that moving them moves one import."""

from __future__ import annotations

from ...probes.listener import ListenerRecord
from ...probes.thick import (
    CODEC_DELAY_MS, CODEC_DELAY_SAMPLES, ECHO_LEAD_FRAMES, ECHO_RESOLVE_DB, PLAYOUT_DEADLINE_S,
    EchoWindow, RunCache, ThickReport, _decisive, _unheard, _windows,
)

__all__ = ["CODEC_DELAY_MS", "CODEC_DELAY_SAMPLES", "ECHO_LEAD_FRAMES", "ECHO_RESOLVE_DB",
           "PLAYOUT_DEADLINE_S", "EchoWindow", "ListenerRecord", "RunCache", "ThickReport",
           "_decisive", "_unheard", "_windows"]
