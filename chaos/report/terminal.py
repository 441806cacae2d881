"""The short summary in the terminal (rich): verdict, SLO table, where it broke, the report's path."""

from __future__ import annotations

from pathlib import Path

from chaos.report import fmt, narrative

_COLOUR = {"passed": "green", "failed": "red", "aborted": "magenta", "inconclusive": "yellow"}
MAX_ROWS = 10
MAX_SENTENCES = 5


def summary(journal: dict, console=None, report_path: Path | str | None = None) -> None:
    """Print a summary of about 25 lines at most to `console` (a rich Console; stdout by default)."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console(highlight=False)
    verdict = fmt.verdict_of(journal)
    exp = journal.get("experiment") or {}
    tg = journal.get("target") or {}
    colour = _COLOUR[verdict]
    where = (f"{tg.get('runtime', '?')} runtime, {tg.get('profile', '?')} profile, "
             f"{fmt.dur(journal.get('duration_s'))}")
    console.print(f"[bold {colour}]{verdict.upper()}[/] [bold]{escape(str(exp.get('name', 'experiment')))}[/] "
                  f"({escape(where)})")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("SLO", "phase", "value", "objective", "verdict"):
        table.add_column(col)
    rows = _rows(journal.get("slos") or [])
    for s in rows:
        v = str(s.get("verdict"))
        name = str(s.get("name")) + ("" if s.get("required", True) else " (observed)")
        table.add_row(escape(name), escape(str(s.get("phase", ""))),
                      escape(fmt.entry_value(s)),
                      escape(str(s.get("objective", ""))), f"[{_COLOUR.get(v, 'yellow')}]{escape(v)}[/]")
    hidden = len(journal.get("slos") or []) - len(rows)
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


def _rows(slos: list[dict]) -> list[dict]:
    """Every entry that did not pass, then passed ones, up to MAX_ROWS, in journal order."""
    if len(slos) <= MAX_ROWS:
        return list(slos)
    keep = {i for i, s in enumerate(slos) if s.get("verdict") != "passed"}
    for i in range(len(slos)):
        if len(keep) >= MAX_ROWS:
            break
        keep.add(i)
    return [s for i, s in enumerate(slos) if i in keep]
