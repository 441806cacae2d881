"""What the benchmarks that judge every frame share: a listener's reception that keeps each
frame's (seq, latency ns) too. A probe only aggregates (``chaos.audio.reception``); a
benchmark judges each frame in its own measurement window, so this grows with the frames
(a benchmark's steps are short).

Imported by the benchmark scripts beside it (``python bench/<script>.py`` puts this
folder first on the path).
"""

from __future__ import annotations

from chaos.audio.reception import Reception


class RecordingReception(Reception):
    def __init__(self) -> None:
        super().__init__()
        self.seqs: list[int] = []
        self.latency_ns: list[int] = []

    def heard(self, seq, capture_ns, recv_ns, bins) -> bool:
        if not super().heard(seq, capture_ns, recv_ns, bins):
            return False
        self.seqs.append(seq)
        self.latency_ns.append(recv_ns - capture_ns)
        return True
