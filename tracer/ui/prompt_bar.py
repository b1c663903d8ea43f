"""``PromptBar``: the one-line prompt for a display filter (``/``), a packet number (``:``) or an export path.

Submitting posts ``PromptBar.Submitted``; the app answers with ``show_error`` (the bar stays open with the
error under the input and a caret at the offending position) or ``close``. Esc closes without changes.

In the filter prompt Tab completes the field name or value under the cursor (``tracer.ui.completion``): one
candidate is taken, several extend the word by what they share and are listed on the line under the input (where
errors show). As the user types, the certain part of a completion shows as Textual's grey suggestion, which →
accepts at the end of the line. In the go-to and export prompts Tab only keeps the focus in the prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, Label, Static

from tracer.ui.completion import Vocabulary, complete, filter_vocabulary, suggestion
from tracer.ui.safe import clean

PROMPTS = {"filter": "filter /", "goto": "go to :", "export": "export to"}


class PromptBar(Vertical):
    """Hidden until ``open``; ``mode`` says what the submitted value means."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="prompt.close", tooltip="Close the prompt", show=False),
        # Tab and Shift+Tab must not carry the focus (and the half-typed value) away from an open prompt: the
        # app's pane cycling stands aside while the prompt has the focus, and these keep the key from reaching
        # the screen's own focus-next. Tab completes in the filter prompt and stays in the others; "→ accepts"
        # is Input's own key for the grey suggestion (at the end of the line), listed here as nowhere else.
        Binding("tab", "complete", "Complete", id="prompt.complete",
                tooltip="Complete a filter field or value (→ accepts)",
                show=False),
        Binding("shift+tab", "stay", "Stay", id="prompt.stay", tooltip="Shift+Tab keeps the focus in the prompt",
                show=False),
    ]

    class Submitted(Message):
        def __init__(self, mode: str, value: str) -> None:
            super().__init__()
            self.mode = mode
            self.value = value

    class Closed(Message):
        """The prompt was closed without a value."""

    def __init__(self, *, cluster: Callable[[], Any] | None = None, id: str | None = None) -> None:
        """``cluster`` returns the loaded cluster (or None), whose namespaces, pods and nodes the filter
        completes; it is asked on each completion because the cluster loads after the app starts."""
        super().__init__(id=id)
        self.mode = "filter"
        self._cluster = cluster
        self._vocabulary: tuple[Any, Vocabulary] | None = None
        self._hint_for: str | None = None  # the value the completion hint under the input was shown for

    def compose(self) -> ComposeResult:
        with Horizontal(classes="prompt-bar--line"):
            yield Label(Text("filter /"), id="prompt-label")
            yield Input(id="prompt-input", select_on_focus=False)
        yield Static(Text(""), id="prompt-error")

    def open(self, mode: str, value: str = "", *, placeholder: str = "") -> None:
        self.mode = mode
        self.query_one("#prompt-label", Label).update(Text(PROMPTS.get(mode, mode) + " "))
        field = self.query_one("#prompt-input", Input)
        field.suggester = FilterSuggester(self.vocabulary) if mode == "filter" else None
        field.value = value
        field.placeholder = placeholder
        field.cursor_position = len(value)
        self.query_one("#prompt-error", Static).update(Text(""))
        self.remove_class("-error")
        self._hint_for = None
        self.display = True
        field.focus()

    def vocabulary(self) -> Vocabulary:
        """What the filter prompt completes, rebuilt only when the cluster changed (it loads in the background)."""
        cluster = self._cluster() if self._cluster is not None else None
        if self._vocabulary is None or self._vocabulary[0] is not cluster:
            self._vocabulary = (cluster, filter_vocabulary(cluster))
        return self._vocabulary[1]

    def show_hint(self, message: str) -> None:
        """A line under the input that is not an error (completion candidates): one line, cut with "…"."""
        field = self.query_one("#prompt-input", Input)
        # The line's CSS colour is the error colour; candidates take the input's own text colour, dimmed.
        style = Style(color=field.rich_style.color, dim=True)
        line = self.query_one("#prompt-error", Static)
        text = Text(clean(message), style=style, no_wrap=True)
        width = line.size.width or self.size.width
        if width:  # one line whatever the number of candidates (the count leads it): the panes keep their room
            text.truncate(width, overflow="ellipsis")
        line.update(text)
        self.remove_class("-error")
        self._hint_for = field.value

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
        self._hint_for = None
        self.display = True

    @property
    def error(self) -> str:
        """The error under the input ("" while it shows completion candidates instead)."""
        return "" if self._hint_for is not None else self._line()

    @property
    def hint(self) -> str:
        """The completion candidates under the input ("" when none are shown)."""
        return self._line() if self._hint_for is not None else ""

    def _line(self) -> str:
        body = self.query_one("#prompt-error", Static).content
        return body.plain if isinstance(body, Text) else str(body)

    def close(self) -> None:
        self.display = False
        self.remove_class("-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted(self.mode, event.value))

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._hint_for is not None and event.value != self._hint_for:
            self._hint_for = None  # the candidates were for a word no longer there
            self.query_one("#prompt-error", Static).update(Text(""))

    def action_complete(self) -> None:
        """Tab: in the filter prompt, complete the word at the cursor; elsewhere keep the focus here."""
        field = self.query_one("#prompt-input", Input)
        field.focus()
        if self.mode != "filter":
            return
        found = complete(field.value, field.cursor_position, self.vocabulary())
        if not found.candidates:
            return
        value, cursor = found.apply()
        field.value = value
        field.cursor_position = cursor
        if len(found.candidates) > 1:
            kind = f"{found.field} values" if found.field else "fields"
            self.show_hint(f"{len(found.candidates)} {kind}: " + "  ".join(found.candidates))

    def action_stay(self) -> None:
        """Shift+Tab in the prompt (and Tab outside the filter prompt): the focus stays on the input."""
        self.query_one("#prompt-input", Input).focus()

    def action_close(self) -> None:
        self.close()
        self.post_message(self.Closed())


class FilterSuggester(Suggester):
    """Textual's grey suggestion for the filter prompt: the last word completed as far as it is certain."""

    def __init__(self, vocabulary: Callable[[], Vocabulary]) -> None:
        # No cache: the answer changes when the cluster loads. Case kept: candidates have their own spelling.
        super().__init__(use_cache=False, case_sensitive=True)
        self._vocabulary = vocabulary

    async def get_suggestion(self, value: str) -> str | None:
        return suggestion(value, self._vocabulary())
