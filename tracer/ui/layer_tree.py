"""``LayerTree``: the dissection of the selected packet as a tree, outer and inner headers separated.

Labels are built from the dissection's plain strings as inert ``Text`` (packet bytes never reach markup).
Every node carries the byte span it covers; highlighting one posts ``LayerTree.SpanHighlighted`` so the app
can show those bytes in the hex view.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree

from tracer.ui.safe import clean, plain

LEVEL_TITLES = {0: "outer (underlay)", 1: "inner (pod traffic)"}


class LayerTree(Tree[tuple[int, int]]):
    """Layers of one packet; node data is the ``(offset, length)`` of the bytes it describes."""

    BINDINGS = [
        Binding("space", "toggle_node", "Expand", id="layers.toggle", tooltip="Expand or collapse a layer",
                show=False),
    ]

    class SpanHighlighted(Message):
        """The highlighted node covers frame bytes ``offset`` .. ``offset + length``."""

        def __init__(self, offset: int, length: int) -> None:
            super().__init__()
            self.offset = offset
            self.length = length

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(Text("Layers"), id=id, classes=classes)
        self.show_root = False
        self.guide_depth = 2

    def show_message(self, message: str) -> None:
        """Replace the tree by one line of explanation (no packet, loading, not available…)."""
        self.clear()
        self.root.add_leaf(plain(message, "italic"), data=(0, 0))

    def show_dissection(self, dissection: Any, *, title: str = "") -> None:
        """Show ``dissection.layers``; a header line per encapsulation level keeps outer and inner apart."""
        self.clear()
        level = None
        if title:
            self.root.add_leaf(plain(title, "bold"), data=(0, 0))
        for layer in dissection.layers:
            if layer.level != level and len({lay.level for lay in dissection.layers}) > 1:
                level = layer.level
                name = LEVEL_TITLES.get(level, f"inner level {level}")
                self.root.add_leaf(Text(f"── {name} ──", style="bold"),
                                   data=(layer.offset, 0))
            node = self.root.add(plain(f"{layer.name}"), data=(layer.offset, layer.length), expand=True)
            for fld in layer.fields:
                label = Text(clean(fld.name), style="bold", end="")
                label.append(": ")
                label.append(clean(fld.value))
                node.add_leaf(label, data=(fld.offset, fld.length))
        self.cursor_line = 0

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        offset, length = event.node.data or (0, 0)
        self.post_message(self.SpanHighlighted(offset, length))

    def layer_names(self) -> list[str]:
        """The names of the layer nodes shown (for tests and the non-interactive twin)."""
        return [str(node.label) for node in self.root.children if node.children]
