"""The live game-day board in the terminal (Textual): a view over the player's state.

    show(player, core_thread)      # blocks until the run was judged (or the board closed)

It reads ``player.view`` (a frozen snapshot the player replaces) four times a second and
sends people's actions back as ``player.command(...)``; it owns nothing of the run.

    n  note         p  pause / resume     r  revert one fault     a  abort (with a reason)
    1-9  answer the open prompt           ctrl+c  abort at once   q  close once finished
"""

from __future__ import annotations

import math
import threading

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from chaos.report import fmt
from chaos.gameday.player import BoardView, Player

REFRESH_S = 0.25
CLOSE_AFTER_S = 2.0
SPARKS = "▁▂▃▄▅▆▇█"
COLOUR = {"passed": "green", "failed": "bold red", "inconclusive": "yellow"}
STATUS = {"pending": "dim", "running": "bold cyan", "done": "green", "failed": "bold red",
          "cut short": "yellow", "not run": "dim", "inconclusive": "yellow"}
EVENT_COLOUR = {"note": "cyan", "prompt": "magenta", "answer": "magenta", "pause": "yellow",
                "resume": "yellow", "abort": "bold red", "halt": "bold red", "inject": "red",
                "revert": "green", "error": "bold red", "check": "blue", "gate": "blue"}


# -- renderables from a view (pure: tested without a terminal) ---------------------------

def spark(values: tuple[float | None, ...], higher_is_better: bool) -> Text:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    out = Text()
    for v in values[-12:]:
        if v is None:
            out.append(" ")
        elif not math.isfinite(v):
            out.append("█", "red")
        else:
            k = 0 if hi - lo < 1e-12 else round((v - lo) / (hi - lo) * (len(SPARKS) - 1))
            out.append(SPARKS[k])
    return out


def sli_table(view: BoardView) -> Table:
    t = Table(title="SLIs, last 5 s", expand=True, box=None, title_justify="left")
    t.add_column("SLI", min_width=22, no_wrap=True)
    scopes = list(dict.fromkeys(["all"] + [s.scope for s in view.slis]))   # all, then the DCs
    for scope in scopes:
        t.add_column(scope, min_width=13, no_wrap=True)
    if not view.slis:
        t.add_row("measuring ...", *["" for _ in scopes])
        return t
    by = {(s.sli, s.scope): s for s in view.slis}
    for sli in dict.fromkeys(s.sli for s in view.slis):
        first = by.get((sli, "all"))
        cells = [Text.assemble((sli, "bold"), "\n", (first.objective if first else "", "dim"))]
        for scope in scopes:
            s = by.get((sli, scope))
            if s is None:
                cells.append(Text(""))
                continue
            shown = "n/a" if s.value is None else fmt.value(sli, s.unit, s.value)
            cell = Text(shown, COLOUR.get(s.verdict, ""))
            cell.append("\n")
            cell.append_text(spark(s.trend, sli == "audio_delivered"))
            cells.append(cell)
        t.add_row(*cells)
    return t


def faults_panel(view: BoardView) -> Table:
    t = Table(title="Active faults", expand=True, box=None, title_justify="left")
    t.add_column("#", width=2)
    t.add_column("fault", ratio=1, no_wrap=True, overflow="ellipsis")
    t.add_column("since", no_wrap=True)
    t.add_column("left", no_wrap=True)
    if not view.faults:
        t.add_row("", Text("none", "dim"), "", "")
    for i, f in enumerate(view.faults, 1):
        left = "until reverted" if f.left_s is None else f"{f.left_s:.0f} s"
        t.add_row(str(i), Text(f"{f.label} [{f.id}]", "red"), f"t={f.started_s:.0f} s", left)
    return t


def steps_panel(view: BoardView) -> Table:
    t = Table(title="Steps", expand=True, box=None, title_justify="left")
    t.add_column("", width=4, no_wrap=True)
    t.add_column("step", ratio=1, no_wrap=True, overflow="ellipsis")
    t.add_column("status", no_wrap=True)
    nxt = None if view.current is None else view.current + 1
    for n, s in enumerate(view.steps):
        mark = "▶" if n == view.current else ("next" if n == nxt else "")
        t.add_row(mark, Text(f"{s.index}. [{s.id}] {s.summary}", "bold" if n == view.current else ""),
                  Text(s.status, STATUS.get(s.status, "")))
    return t


def prompt_panel(view: BoardView) -> Text:
    p = view.prompt
    if p is None:
        return Text("")
    out = Text.assemble(("PROMPT", "bold reverse magenta"), " ",
                        (f"to {p.role}: " if p.role else "", "magenta"), (p.question, "bold"),
                        f"   ({p.left_s:.0f} s left" + (f", default {p.default})" if p.default else ")"),
                        "\n")
    for i, c in enumerate(p.choices, 1):
        out.append(f"  [{i}] {c}", "bold magenta")
    return out


def timeline(view: BoardView, rows: int = 10) -> Text:
    out = Text()
    for e in view.events[-rows:]:
        who = f"{e['who']}: " if e.get("who") else ""
        out.append(f"{e['t_s']:7.1f} s  ", "dim")
        out.append(f"{e['kind']:<7} ", EVENT_COLOUR.get(e["kind"], ""))
        out.append(f"{who}{e['message']}\n")
    return out


def header(view: BoardView) -> Text:
    state = ("PAUSED" if view.paused else view.phase.upper())
    out = Text.assemble((f" {view.title} ", "bold reverse"), "  ", f"t={view.t_s:.1f} s  ",
                        (state, "bold yellow" if view.paused else "bold cyan"))
    if view.paused:
        out.append(f"  (pause budget {view.pause_left_s:.0f} s)")
    if view.finished:
        out.append("  verdict: ")
        out.append(view.verdict.upper(), COLOUR.get(view.verdict, "bold red"))
        out.append(f" - {view.reason}")
    return out


# -- modal screens -------------------------------------------------------------------------

class Ask(ModalScreen[str | None]):
    """One line of text (a note, an abort's reason); Enter sends, Escape cancels."""
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, question: str, placeholder: str = "") -> None:
        super().__init__()
        self.question, self.placeholder = question, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="ask"):
            yield Static(self.question)
            yield Input(placeholder=self.placeholder, id="answer")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Pick(ModalScreen[int | None]):
    """Choose one of a few things by its number; Escape cancels."""
    BINDINGS = [Binding("escape", "cancel", "cancel")] + [
        Binding(str(i), f"pick({i})", show=False) for i in range(1, 10)]

    def __init__(self, question: str, options: list[str]) -> None:
        super().__init__()
        self.question, self.options = question, options

    def compose(self) -> ComposeResult:
        lines = [self.question] + [f"  [{i}] {o}" for i, o in enumerate(self.options, 1)]
        yield Static("\n".join(lines) + "\n(number to choose, Escape to cancel)", id="pick")

    def action_pick(self, n: int) -> None:
        if 1 <= n <= len(self.options):
            self.dismiss(n - 1)

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- the app -------------------------------------------------------------------------------

class Board(App):
    CSS = """
    #header { height: 1; }
    #prompt { height: auto; margin: 0 0 1 0; }
    #top { height: auto; max-height: 65%; }
    #slis { width: 3fr; height: auto; }
    #side { width: 2fr; height: auto; }
    #timeline { height: 1fr; min-height: 5; border-top: solid $accent; }
    #ask, #pick { width: 70; height: auto; padding: 1 2; background: $panel; border: thick $accent; }
    Ask, Pick { align: center middle; }
    """
    BINDINGS = [
        Binding("n", "note", "note"),
        Binding("p", "pause", "pause/resume"),
        Binding("r", "revert", "revert one"),
        Binding("a", "abort", "abort"),
        Binding("ctrl+c", "abort_now", "abort now", priority=True),
        Binding("q", "close", "close (when finished)"),
    ] + [Binding(str(i), f"answer({i})", show=False) for i in range(1, 10)]

    view: reactive[BoardView | None] = reactive(None, always_update=True)

    def __init__(self, player: Player, core: threading.Thread | None = None,
                 close_after_s: float = CLOSE_AFTER_S) -> None:
        super().__init__()
        self.player, self.core, self.close_after_s = player, core, close_after_s
        self._board_closing = False

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="prompt")
        with Horizontal(id="top"):
            yield Static(id="slis")
            with Vertical(id="side"):
                yield Static(id="faults")
                yield Static(id="steps")
        yield Static(id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        self.title = self.player.gp.book.title
        self.set_interval(REFRESH_S, self._poll)
        self._poll()

    def _poll(self) -> None:
        self.view = self.player.view
        if self.view.finished and not self._board_closing and (self.core is None or not self.core.is_alive()):
            self._board_closing = True
            self.set_timer(self.close_after_s, self.exit)

    def watch_view(self, view: BoardView | None) -> None:
        if view is None or not self.is_mounted:
            return
        try:
            self._draw(view)
        except NoMatches:
            pass                        # the board is closing: nothing left to draw on

    def _draw(self, view: BoardView) -> None:
        self.query_one("#header", Static).update(header(view))
        self.query_one("#slis", Static).update(sli_table(view))
        self.query_one("#faults", Static).update(Group(faults_panel(view)))
        self.query_one("#steps", Static).update(steps_panel(view))
        self.query_one("#prompt", Static).update(prompt_panel(view))
        self.query_one("#timeline", Static).update(timeline(view, rows=max(4, self.query_one('#timeline').size.height)))

    # -- actions -------------------------------------------------------------------------
    def action_note(self) -> None:
        def send(text: str | None) -> None:
            if text and text.strip():
                self.player.command("note", text=text.strip(), who=self.player.who)
        self.push_screen(Ask(f"Note for the timeline (as {self.player.who}):", "what happened"), send)

    def action_pause(self) -> None:
        self.player.command("resume" if self.player.view.paused else "pause", who=self.player.who)

    def action_revert(self) -> None:
        faults = list(self.player.view.faults)
        if not faults:
            self.notify("no fault is active")
            return

        def send(i: int | None) -> None:
            if i is not None:
                self.player.command("revert", step=faults[i].id, who=self.player.who)
        self.push_screen(Pick("Revert which fault now?", [f"{f.label} [{f.id}]" for f in faults]), send)

    def action_abort(self) -> None:
        def send(reason: str | None) -> None:
            if reason is not None:
                self.player.command("abort", reason=reason.strip() or "no reason given",
                                    who=self.player.who)
        self.push_screen(Ask("Abort the game day? Every fault is reverted. Reason (Enter to "
                             "abort, Escape to go on):", "why"), send)

    def action_abort_now(self) -> None:
        self.player.command("abort", reason="Ctrl-C on the board", who=self.player.who)

    def action_answer(self, n: int) -> None:
        p = self.player.view.prompt
        if p is not None and 1 <= n <= len(p.choices):
            self.player.command("answer", choice=p.choices[n - 1], who=self.player.who)

    def action_close(self) -> None:
        if self.player.view.finished:
            self.exit()
        else:
            self.notify("the game day is still running: `a` aborts it")


def show(player: Player, core: threading.Thread | None = None) -> None:
    Board(player, core).run()
