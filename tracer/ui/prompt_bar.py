"""``PromptBar``: the one-line prompt for a display filter (``/``), a packet number (``:``) or an export path.

Submitting posts ``PromptBar.Submitted``; the app answers with ``show_error`` (the bar stays open with the
error under the input and a caret at the offending position) or ``close``. Esc closes without changes.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static

from tracer.ui.safe import clean

PROMPTS = {"filter": "filter /", "goto": "go to :", "export": "export to"}


class PromptBar(Vertical):
    """Hidden until ``open``; ``mode`` says what the submitted value means."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="prompt.close", tooltip="Close the prompt", show=False),
        # Tab must not carry the focus (and the half-typed value) away from an open prompt: the app's pane
        # cycling stands aside while the prompt has the focus, and this keeps the key from reaching the
        # screen's own focus-next.
        Binding("tab,shift+tab", "stay", "Stay", id="prompt.stay", tooltip="Tab keeps the focus in the prompt",
                show=False),
    ]

    class Submitted(Message):
        def __init__(self, mode: str, value: str) -> None:
            super().__init__()
            self.mode = mode
            self.value = value

    class Closed(Message):
        """The prompt was closed without a value."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode = "filter"

    def compose(self) -> ComposeResult:
        with Horizontal(classes="prompt-bar--line"):
            yield Label(Text("filter /"), id="prompt-label")
            yield Input(id="prompt-input", select_on_focus=False)
        yield Static(Text(""), id="prompt-error")

    def open(self, mode: str, value: str = "", *, placeholder: str = "") -> None:
        self.mode = mode
        self.query_one("#prompt-label", Label).update(Text(PROMPTS.get(mode, mode) + " "))
        field = self.query_one("#prompt-input", Input)
        field.value = value
        field.placeholder = placeholder
        field.cursor_position = len(value)
        self.query_one("#prompt-error", Static).update(Text(""))
        self.remove_class("-error")
        self.display = True
        field.focus()

    def show_error(self, message: str, position: int | None = None) -> None:
        text = Text(no_wrap=False)
        if position is not None:
            value = self.query_one("#prompt-input", Input).value
            pos = max(0, min(int(position), len(value)))
            text.append(clean(value) + "\n", style="dim")
            text.append(" " * pos + "^ ", style="bold red")
        text.append(clean(message), style="bold red")
        self.query_one("#prompt-error", Static).update(text)
        self.add_class("-error")
        self.display = True

    @property
    def error(self) -> str:
        body = self.query_one("#prompt-error", Static).content
        return body.plain if isinstance(body, Text) else str(body)

    def close(self) -> None:
        self.display = False
        self.remove_class("-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted(self.mode, event.value))

    def action_stay(self) -> None:
        """Tab in the prompt: the focus stays on the input."""
        self.query_one("#prompt-input", Input).focus()

    def action_close(self) -> None:
        self.close()
        self.post_message(self.Closed())
