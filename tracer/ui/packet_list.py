"""``PacketList``: the virtual packet list over the columnar index (Textual Line API).

The last column marks the NetworkPolicy verdict: ✓ allow, ✗ deny, ? unknown, and ! for a packet the hop
analysis saw die although no policy denies it (a datapath problem).

Only the rows in view are formatted and painted (``render_line`` reads the numpy columns through the
session), so a million-packet capture costs the same to scroll as a hundred-packet one. The first line is a
sticky column header. The cursor is a list position; the widget posts ``PacketList.Selected`` with the index
row under it, and the app (its parent) updates the other panes.
"""

from __future__ import annotations

import time

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tracer.ui.columns import ColumnWidths, conversation, fit
from tracer.ui.safe import clean
from tracer.ui.session import Session

VERDICT_MARKS = {"allow": "✓", "deny": "✗", "unknown": "?"}


class PacketList(ScrollView, can_focus=True):
    """One line per packet shown; ``cursor`` is the highlighted list position."""

    BINDINGS = [
        Binding("j,down", "move(1)", "Down", id="list.down", tooltip="Next packet", show=False),
        Binding("k,up", "move(-1)", "Up", id="list.up", tooltip="Previous packet", show=False),
        Binding("g,home", "first", "First", id="list.first", tooltip="First packet", show=False),
        Binding("G,end", "last", "Last", id="list.last", tooltip="Last packet", show=False),
        Binding("pagedown,ctrl+f", "page(1)", "PgDn", id="list.page_down", tooltip="One page down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "PgUp", id="list.page_up", tooltip="One page up", show=False),
    ]

    COMPONENT_CLASSES = {
        "packet-list--header",
        "packet-list--cursor",
        "packet-list--dim",
        "packet-list--deny",
        "packet-list--allow",
        "packet-list--unknown",
        "packet-list--mark",
    }

    DEFAULT_CSS = """
    PacketList { overflow-x: hidden; }
    PacketList > .packet-list--header { text-style: bold; background: $panel; }
    PacketList > .packet-list--cursor { background: $accent 40%; }
    PacketList:focus > .packet-list--cursor { background: $accent; color: $text; }
    PacketList > .packet-list--dim { color: $text-muted; }
    PacketList > .packet-list--deny { color: $error; text-style: bold; }
    PacketList > .packet-list--allow { color: $success; }
    PacketList > .packet-list--unknown { color: $warning; }
    PacketList > .packet-list--mark { color: $warning; text-style: bold; }
    """

    class Selected(Message):
        """The cursor moved onto index row ``row`` (None when the list is empty)."""

        def __init__(self, row: int | None) -> None:
            super().__init__()
            self.row = row

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.cursor = 0
        self._selected_row: int | None = None
        self.first_row_painted_at: float | None = None  # time.monotonic() of the first packet row painted

    # ----- data changes (called by the app) -----------------------------------------------------------------
    def rows_changed(self, *, keep_row: int | None = None) -> None:
        """The index grew or the view changed: resize the virtual canvas, keep ``keep_row`` under the cursor."""
        shown = self.session.shown
        self.virtual_size = Size(self.size.width, shown + 1)
        if keep_row is not None:
            pos = self.session.view_pos(keep_row)
            if pos is None:  # hidden by the new view: stay at the nearest row shown
                pos = self._nearest_pos(keep_row)
            self.cursor = pos
        self.cursor = max(0, min(self.cursor, shown - 1))
        self._scroll_to_cursor()
        self.refresh()
        self._announce()

    def _nearest_pos(self, row: int) -> int:
        view = self.session.view
        if view is None:
            return row
        import numpy as np

        return int(min(np.searchsorted(view, row), max(len(view) - 1, 0)))

    # ----- cursor -------------------------------------------------------------------------------------------
    @property
    def selected_row(self) -> int | None:
        return self._selected_row

    def select_pos(self, pos: int) -> None:
        shown = self.session.shown
        if shown == 0:
            return
        self.cursor = max(0, min(int(pos), shown - 1))
        self._scroll_to_cursor()
        self.refresh()
        self._announce()

    def select_row(self, row: int) -> bool:
        """Put the cursor on index row ``row``; False when the active filter hides it."""
        pos = self.session.view_pos(row)
        if pos is None:
            return False
        self.select_pos(pos)
        return True

    def _announce(self) -> None:
        row = self.session.view_row(self.cursor) if self.session.shown else None
        if row != self._selected_row:
            self._selected_row = row
            self.post_message(self.Selected(row))

    @property
    def _page(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_y)
        if self.cursor < top:
            top = self.cursor
        elif self.cursor >= top + self._page:
            top = self.cursor - self._page + 1
        self.scroll_to(y=top, animate=False, immediate=True)

    def action_move(self, step: int) -> None:
        self.select_pos(self.cursor + step)

    def action_first(self) -> None:
        self.select_pos(0)

    def action_last(self) -> None:
        self.select_pos(self.session.shown - 1)

    def action_page(self, direction: int) -> None:
        self.select_pos(self.cursor + direction * self._page)

    def on_click(self, event: events.Click) -> None:
        pos = int(self.scroll_y) + event.y - 1
        if event.y >= 1 and pos < self.session.shown:  # not the header, not the blank below the last row
            self.select_pos(pos)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.session.shown + 1)
        self._scroll_to_cursor()

    # ----- painting -----------------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        widths = ColumnWidths.fit(width, self.session.total, self.session.time_format)
        if y == 0:
            return self._header(widths, width)
        pos = int(self.scroll_y) + y - 1
        if pos >= self.session.shown:
            return Strip.blank(width, self.rich_style)
        if self.first_row_painted_at is None:
            self.first_row_painted_at = time.monotonic()
        try:
            return self._row(pos, widths, width)
        except Exception as exc:  # noqa: BLE001 - one unrenderable row must not take the list down
            style = self.rich_style + self.get_component_rich_style("packet-list--deny")
            text = f"  row {pos + 1}: cannot render ({type(exc).__name__}: {exc})"
            return Strip([Segment(clean(text), style)]).adjust_cell_length(width, self.rich_style)

    def _header(self, w: ColumnWidths, width: int) -> Strip:
        style = self.get_component_rich_style("packet-list--header")
        cells = ["  " + fit("No", w.no), fit("Time", w.time), fit("Point", w.point),
                 fit("Source → Destination", w.conv), fit("Proto", w.proto), fit("Encap", w.encap),
                 fit("Info", w.info), fit("V", w.verdict)]
        return Strip([Segment(" ".join(cells), style)]).adjust_cell_length(width, style)

    def _row(self, pos: int, w: ColumnWidths, width: int) -> Strip:
        cells = self.session.cells(pos)
        base = self.rich_style
        if pos == self.cursor:
            base = base + self.get_component_rich_style("packet-list--cursor")
        dim = base + Style.from_color(self.get_component_rich_style("packet-list--dim").color)
        marked = cells.row in self.session.marks
        mark_style = base + self.get_component_rich_style("packet-list--mark")
        conv = conversation(cells.src, cells.dst, w.conv)
        outer = f" ({cells.outer})" if cells.outer else ""
        conv_text = fit(conv, w.conv)
        if outer and len(conv) < w.conv:
            # The inner (pod) conversation first; the outer node pair dimmed in what room is left.
            conv_text = conv
            outer = fit(outer, w.conv - len(conv))
        else:
            outer = ""
        segments = [
            Segment("● " if marked else "  ", mark_style),
            Segment(fit(cells.no, w.no) + " ", base),
            Segment(fit(cells.time, w.time) + " ", base),
            Segment(fit(cells.point, w.point) + " ", base),
            Segment(conv_text, base),
            Segment(outer + " ", dim),
            Segment(fit(cells.proto, w.proto) + " ", base),
            Segment(fit(cells.encap, w.encap) + " ", dim if cells.encap == "–" else base),
            Segment(fit(cells.info, w.info) + " ", base),
        ]
        if cells.dropped and cells.verdict != "deny":
            # Lost although no policy denies it: the datapath's fault — the mark an engineer hunts for.
            segments.append(Segment("!", base + self.get_component_rich_style("packet-list--unknown")))
        elif cells.verdict:
            vstyle = base + self.get_component_rich_style(f"packet-list--{cells.verdict}"
                                                          if cells.verdict in VERDICT_MARKS else
                                                          "packet-list--unknown")
            segments.append(Segment(VERDICT_MARKS.get(cells.verdict, "?"), vstyle))
        return Strip(segments).adjust_cell_length(width, base)
