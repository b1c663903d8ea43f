"""``HexView``: offset, hex and ASCII of the selected frame, with the selected field's bytes highlighted.

A Line API widget: a 64 KiB frame is 4096 lines and only the visible ones are built. The ASCII column shows
printable ASCII only (every other byte is ``.``), so payload bytes can never drive the terminal.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tracer.ui.safe import ascii_byte, clean


class HexView(ScrollView, can_focus=True):
    """The bytes of one frame; ``highlight`` is the ``(offset, length)`` span to emphasise."""

    COMPONENT_CLASSES = {"hex-view--offset", "hex-view--highlight", "hex-view--message"}

    DEFAULT_CSS = """
    HexView > .hex-view--offset { color: $text-muted; }
    HexView > .hex-view--highlight { background: $accent; color: $text; text-style: bold; }
    HexView > .hex-view--message { color: $text-muted; text-style: italic; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.data = b""
        self.highlight = (0, 0)
        self.message = "No packet selected"

    @property
    def per_line(self) -> int:
        """16 bytes a line when there is room for offset + hex + ASCII (73 cells), else 8 (40 cells)."""
        return 16 if self.scrollable_content_region.width >= 73 else 8

    def show_bytes(self, data: bytes) -> None:
        self.data = bytes(data)
        self.message = ""
        self.highlight = (0, 0)
        self._resize()
        self.scroll_to(y=0, animate=False)
        self.refresh()

    def show_message(self, message: str) -> None:
        self.data = b""
        self.message = clean(message)
        self._resize()
        self.refresh()

    def set_highlight(self, offset: int, length: int) -> None:
        self.highlight = (int(offset), int(length))
        if length:
            line = offset // self.per_line
            top = int(self.scroll_y)
            height = self.scrollable_content_region.height
            if not top <= line < top + height:
                self.scroll_to(y=max(line - 1, 0), animate=False)
        self.refresh()

    def _resize(self) -> None:
        lines = 1 if not self.data else (len(self.data) + self.per_line - 1) // self.per_line
        self.virtual_size = Size(self.scrollable_content_region.width, lines)

    def on_resize(self) -> None:
        self._resize()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if not self.data:
            if y == 0:
                style = base + self.get_component_rich_style("hex-view--message")
                return Strip([Segment(self.message, style)]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        per = self.per_line
        line = int(self.scroll_y) + y
        start = line * per
        if start >= len(self.data):
            return Strip.blank(width, base)
        chunk = self.data[start : start + per]
        hl_start, hl_len = self.highlight
        hl = base + self.get_component_rich_style("hex-view--highlight")
        segments = [Segment(f"{start:04x}  ", base + self.get_component_rich_style("hex-view--offset"))]
        ascii_segments = []
        for i in range(per):
            pos = start + i
            inside = hl_len > 0 and hl_start <= pos < hl_start + hl_len
            style = hl if inside else base
            if i < len(chunk):
                segments.append(Segment(f"{chunk[i]:02x}", style))
                ascii_segments.append(Segment(ascii_byte(chunk[i]), style))
            else:
                segments.append(Segment("  ", base))
            next_inside = hl_len > 0 and hl_start <= pos + 1 < hl_start + hl_len and i + 1 < len(chunk)
            gap = " " if i + 1 != per // 2 else "  "
            segments.append(Segment(gap, hl if inside and next_inside and gap == " " else base))
        segments.append(Segment(" ", base))
        segments.extend(ascii_segments)
        return Strip(segments).adjust_cell_length(width, base)
