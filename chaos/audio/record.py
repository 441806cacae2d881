"""What a listener of any adapter records.

The SLIs (``chaos.audio.sli``) are computed from these records whatever the audio protocol:
an adapter's listeners map what they receive to the speaker's sequence numbers and
capture times (the reference stack's frames carry them; an HTTP stream's Ogg granule
positions give them) and aggregate each frame at once (``chaos.audio.reception``: a
counter per second, per-second latency bins), so memory does not grow with the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos.audio.reception import Reception


@dataclass
class ListenerRecord:
    index: int
    home_dc: str
    started_ns: int = 0                     # wall clock of the first join request
    join_s: float | None = None             # None: the join failed or timed out
    join_error: str = ""
    joined_ns: int | None = None            # wall clock of the first frame
    edge: str = ""
    dc: str = ""
    reconnects: int = 0
    edges_seen: list[str] = field(default_factory=list)
    rx: Reception = field(default_factory=Reception)   # what it heard, per second

    @property
    def first_seq(self) -> int | None:
        return self.rx.first_seq

    @property
    def last_seq(self) -> int | None:
        return None if self.rx.first_seq is None else self.rx.last_seq

    @property
    def frames_heard(self) -> int:
        """Frames of the followed speaker received in order."""
        return self.rx.frames

    @property
    def out_of_order(self) -> int:
        return self.rx.out_of_order

    def summary(self) -> dict:
        """Picklable, to cross from a listener process."""
        return {"index": self.index, "home_dc": self.home_dc, "started_ns": self.started_ns,
                "join_s": self.join_s, "join_error": self.join_error,
                "joined_ns": self.joined_ns, "edge": self.edge, "dc": self.dc,
                "reconnects": self.reconnects, "edges_seen": self.edges_seen[-5:],
                "rx": self.rx.summary()}

    @classmethod
    def from_summary(cls, d: dict) -> ListenerRecord:
        d = dict(d)
        rx = Reception.from_summary(d.pop("rx"))
        return cls(**d, rx=rx)
