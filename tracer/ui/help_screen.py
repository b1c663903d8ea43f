"""``HelpScreen``: every key binding (with the user's keymap applied), its id for remapping, and what it does."""

from __future__ import annotations

import textwrap

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tracer.ui.safe import plain


BOX_WIDTH = 112  # the help box's width on a terminal wide enough (HelpScreen > Vertical in DEFAULT_CSS)


class HelpScreen(ModalScreen[None]):
    """A table of (pane, keys, action, binding id); any of q, Esc or ? closes it."""

    BINDINGS = [
        Binding("j", "table('cursor_down')", "Down", id="help.down", tooltip="Next row", show=False),
        Binding("k", "table('cursor_up')", "Up", id="help.up", tooltip="Previous row", show=False),
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close", tooltip="Close the help"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 112; max-width: 100%; height: 90%; border: round $accent;
                            background: $surface; padding: 0 1; }
    HelpScreen DataTable { height: 1fr; }
    HelpScreen .help-screen--note { color: $text-muted; height: auto; }
    """

    def __init__(self, rows: list[tuple[str, str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "tracer keys"
            yield DataTable(cursor_type="row", zebra_stripes=True)
            note = Text("Remap any binding by id in ", style="")
            # The documented default location, not this machine's expanded path (screenshots stay portable).
            note.append("~/.config/tracer/keymap.yaml", style="bold")
            note.append(" (or $TRACER_KEYMAP), e.g.  app.filter: \"slash,ctrl+f\"")
            yield Static(note, classes="help-screen--note")

    def on_mount(self) -> None:
        self._fill(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._fill(self.app.size.width)

    def _fill(self, screen_width: int) -> None:
        """The table for this terminal width. The binding ids (what a keymap file needs) always stay in view:
        when the descriptions do not fit beside them (80 columns), they wrap within a narrower Action column."""
        table = self.query_one(DataTable)
        if screen_width == getattr(self, "_filled_for", None):
            return
        self._filled_for = screen_width
        cursor = table.cursor_row
        widths = [max([len(head), *(len(row[i]) for row in self.rows)])
                  for head, i in (("Pane", 0), ("Keys", 2), ("Binding id", 1))]
        inner = min(BOX_WIDTH, screen_width) - 4 - 2  # border and padding, the table's scrollbar
        room = inner - sum(w + 2 for w in widths) - 2  # each column has one cell of padding on either side
        natural = max([len("Action"), *(len(row[3]) for row in self.rows)])
        action = natural if room >= natural else max(room, 12)
        table.clear(columns=True)
        table.add_column("Pane")
        table.add_column("Keys")
        table.add_column("Action", width=action if action < natural else None)
        table.add_column("Binding id")
        for pane, binding_id, keys, description in self.rows:
            lines = textwrap.wrap(description, action) if len(description) > action else [description]
            action_text = Text("\n").join(plain(line) for line in lines)  # (plain() would show "\n" as ␊)
            table.add_row(plain(pane), plain(keys, "bold"), action_text, plain(binding_id, "dim"),
                          height=len(lines))
        table.move_cursor(row=min(cursor, table.row_count - 1))

    def action_table(self, action: str) -> None:
        """j/k (vim habits) drive the table like the arrow keys."""
        getattr(self.query_one(DataTable), f"action_{action}")()
