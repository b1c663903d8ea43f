"""The layers and bytes panes: the dissection of the selected packet, and the hex view following the tree."""

from __future__ import annotations

import pytest

from tracer.ui.app import create_app
from tracer.ui.hex_view import HexView
from tracer.ui.layer_tree import LayerTree
from tracer.ui.packet_list import PacketList
from tracer.ui.session import core_function
from ui_scenario import run_async, scenario_packets, settle, write_scenario

pytest.importorskip("tracer.capture.index", reason="the capture index is not written yet")
if core_function("tracer.decode.dissect:dissect")[0] is None:
    pytest.skip("tracer.decode.dissect is not written yet", allow_module_level=True)

POINTS = [point for _, point, _ in scenario_packets()]


@run_async
async def test_tree_cursor_highlights_the_field_bytes(tmp_path) -> None:
    """Moving the tree cursor onto a layer or field highlights exactly its bytes in the hex view."""
    capture, _ = write_scenario(tmp_path)
    app = create_app([str(capture)])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        app.query_one(PacketList).select_row(POINTS.index("node1/eth0"))
        await settle(app, pilot)
        tree = app.query_one(LayerTree)
        hexview = app.query_one(HexView)
        frame = bytes(scenario_packets()[POINTS.index("node1/eth0")][2])
        assert hexview.data == frame
        tree.focus()
        names = [str(node.label).split("  ")[0] for node in tree.root.children]
        vxlan_line = names.index("VXLAN")
        for _ in range(vxlan_line):
            await pilot.press("j")
        await pilot.pause()
        offset, length = tree.root.children[vxlan_line].data
        assert (offset, length) == (42, 8)  # after 14 Ethernet + 20 IP + 8 UDP: the 8-byte VXLAN header
        assert hexview.highlight == (offset, length)
        await pilot.press("space", "j")  # expand VXLAN and step onto its first field
        await pilot.pause()
        field = tree.cursor_node
        assert field.parent is tree.root.children[vxlan_line]
        assert hexview.highlight == field.data and 42 <= field.data[0] < 50


@run_async
async def test_layers_show_the_packet_as_it_was_at_each_point(tmp_path) -> None:
    """The same TCP SYN is VXLAN-encapsulated at node1/eth0 and plain Ethernet/IP/TCP at node1/flannel.1."""
    capture, _ = write_scenario(tmp_path)
    app = create_app([str(capture)])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        tree = app.query_one(LayerTree)
        app.query_one(PacketList).select_row(POINTS.index("node1/eth0"))
        await settle(app, pilot)
        assert tree.layer_names() == ["Ethernet", "IP", "UDP", "VXLAN", "Ethernet", "IP", "TCP"]
        app.query_one(PacketList).select_row(POINTS.index("node1/flannel.1"))
        await settle(app, pilot)
        assert tree.layer_names() == ["Ethernet", "IP", "TCP"]
