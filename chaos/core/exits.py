"""The exit-code contract of every command (DESIGN.md section 8): scripts and CI gates rely on it.

Each command maps its outcome to one of these codes; ``EPILOG`` is the text every ``--help``
ends with, and ``for_verdict`` the code of a run's verdict.
"""

from __future__ import annotations

from enum import IntEnum

from chaos.core.model import Verdict


class Exit(IntEnum):
    OK = 0               # success, GO
    NO = 1               # the verdict said no: an SLO failed, NO-GO, a breaking schedule found
    USAGE = 2            # bad arguments or a bad input file
    AT_RISK = 3          # readiness: GO-AT-RISK
    INCONCLUSIVE = 4     # nothing failed, but something required could not be measured
    NOT_READY = 5        # the environment is not ready: no stack up, unhealthy, unreachable, a tool missing
    INTERRUPTED = 130    # Ctrl-C (the shell's convention)


EPILOG = """exit codes:
  0  success (GO)
  1  the verdict said no (an SLO failed, NO-GO, a breaking schedule found)
  2  usage: bad arguments or a bad input file
  3  GO-AT-RISK (readiness)
  4  inconclusive: nothing failed, something required could not be measured
  5  the environment is not ready (no stack up, unhealthy, unreachable, a tool missing)
  130 interrupted (Ctrl-C)"""


def for_verdict(verdict: Verdict | str | None) -> Exit:
    """A run's verdict as an exit code: passed 0, failed or aborted 1, inconclusive (or none) 4."""
    v = Verdict(verdict) if verdict is not None else Verdict.INCONCLUSIVE
    if v is Verdict.PASSED:
        return Exit.OK
    if v is Verdict.INCONCLUSIVE:
        return Exit.INCONCLUSIVE
    return Exit.NO


def for_verdicts(verdicts) -> Exit:
    """Several verdicts (a probe's SLIs): any failure is 1; else any inconclusive is 4; else 0."""
    codes = {for_verdict(v) for v in verdicts}
    if Exit.NO in codes:
        return Exit.NO
    if Exit.INCONCLUSIVE in codes or not codes:
        return Exit.INCONCLUSIVE
    return Exit.OK
