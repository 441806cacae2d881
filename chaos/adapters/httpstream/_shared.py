"""What this adapter takes from the rest of the framework: the listener record and the
per-second bins (the shapes ``chaos.sli`` judges), the thick listener's report and run
cache (the shape the session's SLI series read), the speaker's voice, echo state and
real-rate clock (the echo fault), and the listener's rejoin loop. One place, so that
moving them moves one import. None of it is the reference stack's: loading this adapter
loads no other stack's package.
"""

from __future__ import annotations

from ...probes.hearing import (
    CODEC_DELAY_MS, CODEC_DELAY_SAMPLES, ECHO_LEAD_FRAMES, EchoWindow, RunCache, ThickReport,
    _decisive, _unheard, _windows,
)
from ...probes.pacing import EchoPlaying, EchoSwitch, echo_state, paced
from ...probes.reception import Produced, SecondBins
from ...probes.record import ListenerRecord
from ...probes.rejoin import gone_or_stopped, sleep_or_stop, stay_joined
from ...probes.voice import HISTORY_FRAMES, MAX_ECHO_S, EchoState, Voice, hot_mic
from ...sli import ECHO_RESOLVE_DB, PLAYOUT_DEADLINE_S

__all__ = ["CODEC_DELAY_MS", "CODEC_DELAY_SAMPLES", "ECHO_LEAD_FRAMES", "ECHO_RESOLVE_DB",
           "HISTORY_FRAMES", "MAX_ECHO_S", "PLAYOUT_DEADLINE_S", "EchoPlaying", "EchoState",
           "EchoSwitch", "EchoWindow", "ListenerRecord", "Produced", "RunCache", "SecondBins",
           "ThickReport", "Voice", "_decisive", "_unheard", "_windows", "echo_state",
           "gone_or_stopped", "hot_mic", "paced", "sleep_or_stop", "stay_joined"]
