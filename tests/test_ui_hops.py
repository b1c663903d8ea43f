"""Hop stepping and verdicts: ``]``/``[`` walk one packet along its CNI path; denied packets show their policy."""

from __future__ import annotations

import pytest

from tracer.ui.app import create_app
from tracer.ui.hop_ladder import HopLadder, attr
from tracer.ui.layer_tree import LayerTree
from tracer.ui.packet_list import PacketList
from tracer.ui.session import core_function
from tracer.ui.verdict_panel import VerdictPanel
from ui_scenario import run_async, scenario_packets, screen_text, settle, write_scenario

pytest.importorskip("tracer.capture.index", reason="the capture index is not written yet")
if core_function("tracer.hops:analyze", "tracer.hops.analysis:analyze")[0] is None:
    pytest.skip("the hop analysis (tracer.hops analyze) is not written yet", allow_module_level=True)

SIZE = (120, 36)
POINTS = [point for _, point, _ in scenario_packets()]
DENIED_SYN = POINTS.index("node1/veth1a2b3c4d")  # nginx's first SYN, at its own veth


@pytest.fixture()
def scenario(tmp_path):
    return write_scenario(tmp_path)


def layer_text(app) -> str:
    tree = app.query_one(LayerTree)
    return " ".join(str(node.label) for node in tree.root.children).lower()


@run_async
async def test_next_hop_moves_to_the_same_packet_downstream(scenario) -> None:
    """``]`` selects the same packet at the next hop: flannel.1 (no VXLAN) → eth0 (VXLAN); ``[`` goes back."""
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        packets = app.query_one(PacketList)
        flannel = POINTS.index("node1/flannel.1")
        packets.select_row(flannel)
        await settle(app, pilot)
        assert "vxlan" not in layer_text(app)
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert packets.selected_row == POINTS.index("node1/eth0")
        assert "vxlan" in layer_text(app)
        assert "node1/eth0" in screen_text(app)
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert packets.selected_row == POINTS.index("node2/eth0")
        await pilot.press("left_square_bracket", "left_square_bracket")
        await settle(app, pilot)
        assert packets.selected_row == flannel
        assert "vxlan" not in layer_text(app)


@run_async
async def test_hop_ladder_lists_the_path(scenario) -> None:
    """The ladder lists every hop of the flannel VXLAN path with the selected observation marked."""
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.query_one(PacketList).select_row(POINTS.index("node1/cni0"))
        await settle(app, pilot)
        ladder = app.query_one(HopLadder).text
        for point in ("node1/veth9e8d7c6b", "node1/cni0", "node1/flannel.1", "node1/eth0", "node2/eth0",
                      "node2/flannel.1", "node2/cni0", "node2/veth55aa66bb"):
            assert point in ladder, ladder
        assert "▶" in ladder


@run_async
async def test_denied_packet_shows_its_policy(scenario) -> None:
    """nginx → tomcat is denied by tomcat-from-python: the verdict pane says deny and names the policy,
    and the ladder says where the packet was last seen."""
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.query_one(PacketList).select_row(DENIED_SYN)
        await settle(app, pilot)
        verdict = app.query_one(VerdictPanel).text
        assert "DENY" in verdict and "tomcat-from-python" in verdict, verdict
        assert "node2/cni0" in app.query_one(HopLadder).text


@run_async
async def test_flows_view_puts_denied_first_and_opens_packets(scenario) -> None:
    """``F`` lists flows with the denied one first; Enter shows only that flow's packets."""
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("F")
        await pilot.pause()
        from tracer.ui.flows_screen import FlowsScreen

        assert isinstance(app.screen, FlowsScreen)
        first = app.screen.flows[0]
        assert attr(first, "verdict") == "deny"
        await pilot.press("enter")
        await settle(app, pilot)
        nginx_rows = [i for i, p in enumerate(scenario_packets()) if i >= DENIED_SYN]
        assert list(app.session.view) == nginx_rows


@run_async
async def test_reachability_view(scenario) -> None:
    """``r`` shows the pod × pod matrix: nginx → tomcat denied and dropped, curl → tomcat allowed and delivered."""
    from textual.widgets import DataTable

    from tracer.ui.reach_screen import ReachScreen

    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert isinstance(app.screen, ReachScreen), app.screen
        if app.screen.matrix is None:
            pytest.fail(f"no reachability matrix: {app.screen.problem}")
        table = app.screen.query_one(DataTable)
        cells = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)[1:]]
                 for i in range(table.row_count)}
        pods = app.screen.pods
        assert cells["linux/nginx"][pods.index("python/tomcat")].startswith("deny ✗")
        assert cells["python/curl"][pods.index("python/tomcat")].startswith("allow →")
        await pilot.press("escape")
        assert not isinstance(app.screen, ReachScreen)


@run_async
async def test_flows_view_vim_keys(scenario) -> None:
    """j/k move through the flows table like the arrows; the explanation follows the highlighted flow."""
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("F")
        await settle(app, pilot)
        from textual.widgets import DataTable

        table = app.screen.query_one(DataTable)
        await pilot.press("j")
        assert table.cursor_row == 1
        assert "python/curl" in str(app.screen.query_one("#flow-explanation").content)
        await pilot.press("k")
        assert table.cursor_row == 0


@run_async
async def test_allowed_packet_that_dies_is_marked(tmp_path) -> None:
    """A packet the policy allows but the captures show stopping early gets ``!`` (datapath) instead of ✓."""
    from scapy.utils import PcapNgWriter

    from tracer.ui.packet_list import PacketList
    from ui_scenario import T0, _hops, cluster_yaml

    capture = tmp_path / "lost.pcapng"
    writer = PcapNgWriter(str(capture))
    frames = _hops("curl", "tomcat", 41000, 8080, "S", 1000, 0, 0x1001, stop_before="node2/veth55aa66bb")
    for k, (point, frame) in enumerate(frames):
        frame.time = T0 + k * 0.00002
        frame.sniffed_on = point
        writer.write(frame)
    # A later packet seen everywhere on node2, so node2's capture points clearly ran after the loss.
    for k, (point, frame) in enumerate(_hops("tomcat", "curl", 8080, 41001, "S", 5, 0, 0x2001)):
        frame.time = T0 + 1 + k * 0.00002
        frame.sniffed_on = point
        writer.write(frame)
    writer.close()
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(cluster_yaml())
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        session = app.session
        first = session.cells(0)
        assert first.verdict == "allow" and first.dropped, (first.verdict, first.dropped)
        line = app.query_one(PacketList).render_line(1).text.rstrip()
        assert line.endswith("!"), line
