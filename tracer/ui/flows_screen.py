"""``FlowsScreen``: one row per flow, denied and dropped flows first; Enter opens the flow's packets.

Incident triage starts here: the flows come from ``analysis.flows()`` (the core computes verdicts and where
each flow stops); this screen sorts them for a human and shows the highlighted flow's explanation.
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
from tracer.ui.session import Session

VERDICT_STYLE = {"deny": "bold red", "allow": "green", "unknown": "yellow"}


def triage_order(flow: Any) -> tuple:
    """Denied first, then dropped (stopped before the destination), then the busiest."""
    verdict = attr(flow, "verdict")
    dropped = attr(flow, "dropped_after")
    return (verdict != "deny", not dropped, -int(attr(flow, "packets", 0) or 0))


def _endpoint(flow: Any, side: str) -> str:
    pod = attr(flow, f"{side}_pod")
    addr = attr(flow, side)
    return clean(pod or addr or "?")


class FlowsScreen(Screen[Any]):
    """The flows table; dismisses with the chosen flow (Enter) or None (Esc / q)."""

    BINDINGS = [
        Binding("j", "table('cursor_down')", "Down", id="flows.down", tooltip="Next row", show=False),
        Binding("k", "table('cursor_up')", "Up", id="flows.up", tooltip="Previous row", show=False),
        Binding("enter", "open", "Open packets", id="flows.open", tooltip="Show this flow's packets"),
        Binding("escape,q,F", "close", "Back", id="flows.close", tooltip="Back to the packet list"),
    ]

    DEFAULT_CSS = """
    FlowsScreen DataTable { height: 1fr; }
    FlowsScreen #flows-title { height: 1; padding: 0 1; background: $panel; }
    FlowsScreen #flow-explanation { height: auto; max-height: 8; border-top: solid $panel-lighten-2;
                                     padding: 0 1; }
    """

    def __init__(self, flows: list[Any], session: Session) -> None:
        super().__init__()
        self.flows = sorted(flows, key=triage_order)
        self.session = session

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Flows ({len(self.flows)}): denied and dropped first · Enter shows a flow's packets",
                              style="bold"), id="flows-title")
            table: DataTable = DataTable(cursor_type="row", zebra_stripes=True, id="flows-table")
            table.add_columns("Verdict", "Source", "Destination", "Service", "Proto", "Pkts", "Points",
                              "Dropped after")
            for i, flow in enumerate(self.flows):
                verdict = attr(flow, "verdict") or "–"
                proto = f"{clean(attr(flow, 'proto') or '')}/{attr(flow, 'dport') or ''}".strip("/")
                points = attr(flow, "points") or ()
                table.add_row(
                    Text(clean(verdict), style=VERDICT_STYLE.get(verdict, "")),
                    plain(_endpoint(flow, "src")),
                    plain(_endpoint(flow, "dst")),
                    plain(attr(flow, "service") or ""),
                    plain(proto),
                    plain(f"{int(attr(flow, 'packets', 0) or 0):,}"),
                    plain(f"{len(points)}" if not isinstance(points, int) else str(points)),
                    plain(attr(flow, "dropped_after") or "", "bold red"),
                    key=str(i),
                )
            yield table
            yield Static(Text(""), id="flow-explanation")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.focus()
        if not self.flows:
            self.query_one("#flow-explanation", Static).update(plain("no flows in this capture", "italic"))
        else:
            self._explain(0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._explain(event.cursor_row)

    def _explain(self, i: int) -> None:
        if not 0 <= i < len(self.flows):
            return
        flow = self.flows[i]
        text = Text()
        verdict = attr(flow, "verdict") or "unknown"
        text.append(f"{clean(verdict).upper()} ", style=VERDICT_STYLE.get(verdict, "bold"))
        text.append(f"{_endpoint(flow, 'src')} → {_endpoint(flow, 'dst')}\n", style="bold")
        points = attr(flow, "points") or ()
        if points and not isinstance(points, int):
            text.append("seen at: " + ", ".join(clean(p) for p in points) + "\n", style="dim")
        for line in str(attr(flow, "explanation") or "").splitlines():
            text.append(clean(line) + "\n")
        self.query_one("#flow-explanation", Static).update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(self.flows[event.cursor_row])

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if self.flows:
            self.dismiss(self.flows[table.cursor_row])

    def action_close(self) -> None:
        self.dismiss(None)

    def action_table(self, action: str) -> None:
        """j/k (vim habits) drive the table like the arrow keys."""
        getattr(self.query_one(DataTable), f"action_{action}")()
