"""``HelpScreen``: every key binding (with the user's keymap applied), its id for remapping, and what it does."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tracer.ui.safe import plain


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
            table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("Pane", "Keys", "Action", "Binding id")
            for pane, binding_id, keys, description in self.rows:
                table.add_row(plain(pane), plain(keys, "bold"), plain(description), plain(binding_id, "dim"))
            yield table
            note = Text("Remap any binding by id in ", style="")
            # The documented default location, not this machine's expanded path (screenshots stay portable).
            note.append("~/.config/tracer/keymap.yaml", style="bold")
            note.append(" (or $TRACER_KEYMAP), e.g.  app.filter: \"slash,ctrl+f\"")
            yield Static(note, classes="help-screen--note")

    def action_table(self, action: str) -> None:
        """j/k (vim habits) drive the table like the arrow keys."""
        getattr(self.query_one(DataTable), f"action_{action}")()
