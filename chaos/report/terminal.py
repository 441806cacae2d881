"""The short summary in the terminal (rich): verdict, SLO table, where it broke, the report's path."""

from __future__ import annotations

from pathlib import Path

from chaos.core import journal as jm
from chaos.core.journal import Journal
from chaos.core.model import Verdict
from chaos.report import fmt, narrative
from chaos.report.schema import typed

COLOURS = {Verdict.PASSED: "green", Verdict.FAILED: "red", Verdict.ABORTED: "magenta",
           Verdict.INCONCLUSIVE: "yellow"}
MAX_ROWS = 10
MAX_SENTENCES = 5


def summary(journal: Journal | dict, console=None, report_path: Path | str | None = None) -> None:
    """Print a summary of about 25 lines at most to `console` (a rich Console; stdout by default)."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    journal = typed(journal)
    console = console or Console(highlight=False)
    verdict = fmt.verdict_of(journal)
    exp, tg = journal.experiment, journal.target
    colour = COLOURS[verdict]
    where = (f"{tg.runtime or '?'} runtime, {tg.profile or '?'} profile, "
             f"{fmt.dur(journal.duration_s)}")
    console.print(f"[bold {colour}]{verdict.upper()}[/] [bold]{escape(str(exp.name or 'experiment'))}[/] "
                  f"({escape(where)})")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("SLO", "phase", "value", "objective", "verdict"):
        table.add_column(col)
    rows = _rows(journal.slos)
    for s in rows:
        v = str(s.verdict)
        name = str(s.name) + ("" if narrative.decides(s) else " (observed)")
        table.add_row(escape(name), escape("" if s.phase is None else str(s.phase)),
                      escape(fmt.entry_value(s)),
                      escape(str(s.objective or "")), f"[{COLOURS.get(s.verdict, 'yellow')}]{escape(v)}[/]")
    hidden = len(journal.slos) - len(rows)
    if hidden:
        table.add_row(f"[dim]… {hidden} more passed[/]", "", "", "", "")
    if rows:
        console.print(table)
    said = narrative.sentences(journal)
    for s in said[:MAX_SENTENCES]:
        console.print(f"[{colour}]•[/] {escape(s)}")
    if len(said) > MAX_SENTENCES:
        console.print(f"[dim]… {len(said) - MAX_SENTENCES} more in the report[/]")
    if report_path is not None:
        console.print(f"report: {escape(str(report_path))}", soft_wrap=True)  # a path stays copyable


def _rows(slos: list[jm.Slo]) -> list[jm.Slo]:
    """Every entry that did not pass, then passed ones, up to MAX_ROWS, in journal order."""
    if len(slos) <= MAX_ROWS:
        return list(slos)
    keep = {i for i, s in enumerate(slos) if s.verdict is not Verdict.PASSED}
    for i in range(len(slos)):
        if len(keep) >= MAX_ROWS:
            break
        keep.add(i)
    return [s for i, s in enumerate(slos) if i in keep]
