"""``ReachScreen``: the pod × pod reachability matrix, policy verdict joined with what the captures show.

The matrix comes from the hop analysis (``tracer reach`` prints the same); this screen lays it out and
highlights the two mismatches an engineer cares about: "policy allows but the packets die" and "policy
denies but the packets are delivered".
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tracer.ui.hop_ladder import attr
from tracer.ui.safe import clean, plain
from tracer.ui.session import Session, optional_import

OBSERVED_MARK = {"delivered": "→", "dropped": "✗", "seen": "~", "not observed": "·", None: "·"}


def reach_matrix(session: Session) -> tuple[Any | None, str | None]:
    """(matrix, None) from the hop analysis, or (None, why it is not available)."""
    analysis = session.analysis
    for name in ("reach", "reachability", "reach_matrix"):
        method = getattr(analysis, name, None)
        if callable(method):
            try:
                return method(), None
            except Exception as exc:  # noqa: BLE001
                return None, f"reachability: {type(exc).__name__}: {exc}"
    module, why = optional_import("tracer.hops.reach")
    if module is not None:
        for name in ("reach", "reach_matrix", "build"):
            func = getattr(module, name, None)
            if callable(func):
                try:
                    return func(analysis, session.cluster), None
                except Exception as exc:  # noqa: BLE001
                    return None, f"reachability: {type(exc).__name__}: {exc}"
    return None, why or "the reachability matrix is not available yet in tracer.hops"


def _cell_text(cell: Any) -> Text:
    if cell is None:
        return Text("")
    policy = attr(cell, "policy") or attr(cell, "verdict") or "?"
    observed = attr(cell, "observed")
    mismatch = attr(cell, "mismatch")
    label = f"{clean(policy)} {OBSERVED_MARK.get(observed, clean(observed or ''))}"
    style = "green" if policy == "allow" else ("red" if policy == "deny" else "yellow")
    if mismatch:
        style = "bold reverse yellow"
        label += " !"
    return Text(label, style=style)


class ReachScreen(Screen[None]):
    """Rows are sources, columns destinations; the highlighted cell's explanation is shown underneath."""

    BINDINGS = [
        Binding("escape,q,r", "close", "Back", id="reach.close", tooltip="Back to the packet list"),
        Binding("j", "table('cursor_down')", "Down", id="reach.down", tooltip="Next row", show=False),
        Binding("k", "table('cursor_up')", "Up", id="reach.up", tooltip="Previous row", show=False),
        Binding("h", "table('cursor_left')", "Left", id="reach.left", tooltip="Previous column", show=False),
        Binding("l", "table('cursor_right')", "Right", id="reach.right", tooltip="Next column", show=False),
    ]

    DEFAULT_CSS = """
    ReachScreen DataTable { height: 1fr; }
    ReachScreen #reach-title { height: 1; padding: 0 1; background: $panel; }
    ReachScreen #reach-detail { height: auto; max-height: 8; border-top: solid $panel-lighten-2; padding: 0 1; }
    """

    def __init__(self, session: Session, matrix: Any = None, problem: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.matrix, self.problem = (matrix, problem) if matrix is not None or problem else reach_matrix(session)
        self.pods: list[str] = [str(p) for p in (attr(self.matrix, "pods") or [])] if self.matrix else []

    def cell(self, src: str, dst: str) -> Any:
        cells = attr(self.matrix, "cells")
        if isinstance(cells, dict):
            return cells.get((src, dst))
        getter = getattr(self.matrix, "cell", None)
        return getter(src, dst) if callable(getter) else None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Reachability: NetworkPolicy verdict × what the captures show", style="bold"),
                         id="reach-title")
            table: DataTable = DataTable(cursor_type="cell", id="reach-table")
            if self.matrix is not None:
                table.add_column(Text("from \\ to", style="bold"), key="src")
                for dst in self.pods:
                    table.add_column(plain(dst, "bold"), key=dst)
                for src in self.pods:
                    table.add_row(plain(src, "bold"), *[_cell_text(self.cell(src, dst)) for dst in self.pods],
                                  key=src)
            yield table
            yield Static(plain(self.problem or "cell: policy verdict, then observed: → delivered, ✗ dropped,"
                               " ~ seen (delivery not visible), · not observed; ! marks a mismatch", "italic"),
                         id="reach-detail")
        yield Footer()

    def on_mount(self) -> None:
        """Start on the first mismatch (else the first dropped cell, else the first cell): its explanation is
        shown at once, and a mismatch is what the view exists to point at."""
        if self.matrix is None or not self.pods:
            return
        cells = [(r, c, self.cell(src, dst)) for r, src in enumerate(self.pods) for c, dst in enumerate(self.pods)]
        target = (next(((r, c) for r, c, cell in cells if attr(cell, "mismatch")), None)
                  or next(((r, c) for r, c, cell in cells if attr(cell, "observed") == "dropped"), None)
                  or (0, 0))
        self.query_one(DataTable).move_cursor(row=target[0], column=target[1] + 1)  # column 0: the row labels

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        row, col = event.coordinate.row, event.coordinate.column
        if self.matrix is None or col == 0 or row >= len(self.pods) or col - 1 >= len(self.pods):
            return
        src, dst = self.pods[row], self.pods[col - 1]
        cell = self.cell(src, dst)
        text = Text(f"{clean(src)} → {clean(dst)}\n", style="bold")
        if cell is not None:
            for name in ("policy", "observed", "dropped_after", "mismatch"):
                value = attr(cell, name)
                if value:
                    text.append(f"{name}: {clean(value)}\n")
            for line in str(attr(cell, "explanation") or "").splitlines():
                text.append(clean(line) + "\n")
        self.query_one("#reach-detail", Static).update(text)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_table(self, action: str) -> None:
        """j/k (vim habits) drive the table like the arrow keys."""
        getattr(self.query_one(DataTable), f"action_{action}")()
