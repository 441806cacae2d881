"""One line per experiment run of a session: verdict, why, where the report is."""

from __future__ import annotations

import io

from chaos.core.journal import Journal
from chaos.report import fmt
from chaos.report.terminal import COLOURS


def runs_table(results: list[tuple[str, Journal, dict]], width: int = 120, color: bool = False) -> str:
    """Rendered text (with colour codes) for the terminal: (test id, journal, files) per run."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("experiment", "verdict", "why", "report"):
        table.add_column(col, overflow="fold")
    for nodeid, j, files in results:
        v = fmt.verdict_of(j)
        # a reason's "[during]" is words, not markup
        table.add_row(escape(str(j.experiment.name or "experiment")), f"[{COLOURS[v]}]{v}[/]",
                      escape((j.reason or "")[:160]),
                      escape(str(files.get("html", files.get("journal.json", "")))))
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=color, no_color=not color, highlight=False).print(table)
    return buf.getvalue()
