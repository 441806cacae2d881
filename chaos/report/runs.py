"""One line per experiment run of a session: verdict, why, where the report is."""

from __future__ import annotations

import io

COLOURS = {"passed": "green", "failed": "red", "aborted": "magenta", "inconclusive": "yellow"}


def runs_table(results: list[tuple[str, dict, dict]], width: int = 120, color: bool = False) -> str:
    """Rendered text (with colour codes) for the terminal: (test id, journal, files) per run."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("experiment", "verdict", "why", "report"):
        table.add_column(col, overflow="fold")
    for nodeid, j, files in results:
        v = j["verdict"]
        table.add_row(j["experiment"]["name"], f"[{COLOURS.get(v, 'white')}]{v}[/]",
                      j.get("reason", "")[:160], str(files.get("html", files.get("journal.json", ""))))
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=color, no_color=not color, highlight=False).print(table)
    return buf.getvalue()
