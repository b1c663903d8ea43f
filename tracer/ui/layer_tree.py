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
# Fields worth seeing on a collapsed layer's line (the rest is one Space away).
SUMMARY_FIELDS = {"Ethernet": ("src", "dst"), "IP": ("src", "dst", "ttl", "id"), "IPv6": ("src", "dst", "hlim"),
                  "UDP": ("sport", "dport"), "TCP": ("sport", "dport", "flags"), "VXLAN": ("vni",),
                  "GENEVE": ("vni",), "ICMP": ("type", "code"), "ARP": ("op", "psrc", "pdst"),
                  "DNS": ("qd",)}


def layer_label(layer) -> Text:
    """``IP  src=10.244.1.9 dst=10.244.2.7 ttl=63``: the layer name and its telling fields, inert."""
    label = Text(clean(layer.name), style="bold", end="")
    wanted = SUMMARY_FIELDS.get(layer.name, ())
    values = {f.name: f.value for f in layer.fields}
    parts = [f"{name}={values[name]}" for name in wanted if name in values]
    if parts:
        label.append("  " + clean(" ".join(parts)))
    return label


class LayerTree(Tree[tuple[int, int]]):
    """Layers of one packet; node data is the ``(offset, length)`` of the bytes it describes."""

    BINDINGS = [
        Binding("space", "toggle_node", "Expand", id="layers.toggle", tooltip="Expand or collapse a layer",
                show=False),
        Binding("j", "cursor_down", "Down", id="layers.down", tooltip="Next line", show=False),
        Binding("k", "cursor_up", "Up", id="layers.up", tooltip="Previous line", show=False),
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
            node = self.root.add(layer_label(layer), data=(layer.offset, layer.length), expand=False)
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
        return [str(node.label).split("  ")[0] for node in self.root.children if node.children]
