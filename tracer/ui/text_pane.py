"""``TextPane``: a focusable, scrollable pane that shows one inert ``Text`` (base of the hop and verdict panes)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tracer.ui.safe import plain


class TextPane(VerticalScroll):
    """Scrolls its content; callers pass ``Text`` built with ``tracer.ui.safe`` (never markup strings)."""

    def compose(self) -> ComposeResult:
        yield Static(Text(""), classes="text-pane--body")

    def show(self, text: Text) -> None:
        self.query_one(".text-pane--body", Static).update(text)

    def show_message(self, message: str) -> None:
        self.show(plain(message, "italic"))

    @property
    def text(self) -> str:
        """What the pane shows, as plain text (tests and screen readers)."""
        body = self.query_one(".text-pane--body", Static)
        content = body.content if hasattr(body, "content") else body.renderable
        return content.plain if isinstance(content, Text) else str(content)
