"""What this adapter takes from the rest of the framework: the listener record (the shape
``chaos.sli`` judges), the thick listener's report and run cache (the shape the session's
SLI series read), and the speaker's voice and echo state (the echo fault). One place, so
that moving them moves one import.

They are protocol-independent, but today they live beside the reference stack's clients;
until they move to a module of their own, the two layouts are both read here.
"""

from __future__ import annotations

try:   # the reference stack's clients in chaos.adapters.space, the record in chaos.probes.record
    from ...probes.record import ListenerRecord
    from ...sli import ECHO_RESOLVE_DB, PLAYOUT_DEADLINE_S
    from ..space.speaker import HISTORY_FRAMES, MAX_ECHO_S, EchoState, Voice, hot_mic
    from ..space.thick import (
        CODEC_DELAY_MS, CODEC_DELAY_SAMPLES, ECHO_LEAD_FRAMES, EchoWindow, RunCache, ThickReport,
        _decisive, _unheard, _windows,
    )
except ImportError:   # the earlier layout: all of them in chaos.probes
    from ...probes.listener import ListenerRecord
    from ...probes.speaker import HISTORY_FRAMES, MAX_ECHO_S, EchoState, Voice, hot_mic
    from ...probes.thick import (
        CODEC_DELAY_MS, CODEC_DELAY_SAMPLES, ECHO_LEAD_FRAMES, ECHO_RESOLVE_DB,
        PLAYOUT_DEADLINE_S, EchoWindow, RunCache, ThickReport, _decisive, _unheard, _windows,
    )

__all__ = ["CODEC_DELAY_MS", "CODEC_DELAY_SAMPLES", "ECHO_LEAD_FRAMES", "ECHO_RESOLVE_DB",
           "HISTORY_FRAMES", "MAX_ECHO_S", "PLAYOUT_DEADLINE_S", "EchoState", "EchoWindow",
           "ListenerRecord", "RunCache", "ThickReport", "Voice", "_decisive", "_unheard",
           "_windows", "hot_mic"]
