"""What this adapter takes from the rest of the framework: the listener record and the
per-second bins (the shapes ``chaos.audio.sli`` judges), the thick listener's report, run cache
and playout judgement (the shape the session's SLI series read), the speaker's voice,
echo state and real-rate clock (the echo fault), and the listener's rejoin loop. One
place, so that moving them moves one import. None of it is the reference stack's:
loading this adapter loads no other stack's package.
"""

from __future__ import annotations

from chaos.audio.hearing import CODEC_DELAY_SAMPLES, RunCache, ThickReport, _unheard
from chaos.audio.pacing import EchoPlaying, EchoSwitch, echo_state, paced
from chaos.audio.playout import Heard, against_signal, check, last_slot, play
from chaos.audio.reception import Produced, SecondBins
from chaos.audio.record import ListenerRecord
from chaos.audio.rejoin import gone_or_stopped, sleep_or_stop, stay_joined
from chaos.audio.voice import Voice, hot_mic
from chaos.audio.sli import ECHO_RESOLVE_DB, PLAYOUT_DEADLINE_S

__all__ = ["CODEC_DELAY_SAMPLES", "ECHO_RESOLVE_DB", "PLAYOUT_DEADLINE_S", "EchoPlaying",
           "EchoSwitch", "Heard", "ListenerRecord", "Produced", "RunCache", "SecondBins",
           "ThickReport", "Voice", "_unheard", "against_signal", "check", "echo_state",
           "gone_or_stopped", "hot_mic", "last_slot", "paced", "play", "sleep_or_stop",
           "stay_joined"]
