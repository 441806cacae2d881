"""How a stack says no to a join (admission control), whatever its protocol: the status,
its reason and its retry hint, for a client's retry policy to honour."""

from __future__ import annotations


class Refused(Exception):
    """The stack said no: carries its reason and retry hint."""

    def __init__(self, status: int, error: str, message: str, retry_after_s: float | None):
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.retry_after_s = retry_after_s
