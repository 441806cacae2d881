"""What a listener of any adapter records, and how a stack says no to a join.

The SLIs (``chaos.sli``) are computed from these records whatever the audio protocol:
an adapter's listeners map what they receive to the speaker's sequence numbers and
capture times (the reference stack's frames carry them; an HTTP stream's Ogg granule
positions give them) and fill the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Refused(Exception):
    """The stack said no: carries its reason and retry hint."""

    def __init__(self, status: int, error: str, message: str, retry_after_s: float | None):
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.retry_after_s = retry_after_s


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
    seqs: list[int] = field(default_factory=list)          # in-order speaker seqs received
    latency_ns: list[int] = field(default_factory=list)    # receive - capture, per frame
    out_of_order: int = 0
    reconnects: int = 0
    edges_seen: list[str] = field(default_factory=list)
