"""Issue 5's keys, panes and status line, item by item, where no other Pilot test covers them yet.

Each test drives the app with ``App.run_test`` on the scenario capture of ``ui_scenario`` (built with scapy,
expectations computed from how it was built) or on the bundled demo, and asserts on what the app shows. The
items already covered elsewhere are listed in the final report of the audit, not repeated here.
"""

from __future__ import annotations

import pytest
from textual import events

from tracer.ui.app import create_app
from tracer.ui.hex_view import HexView
from tracer.ui.packet_list import PacketList
from ui_scenario import PODS, inner_ip, run_async, scenario_packets, screen_text, settle, write_scenario

pytest.importorskip("tracer.capture.index", reason="the capture index is not written yet")
pytest.importorskip("tracer.capture.filter", reason="the display filter is not written yet")

SIZE, SMALL, WIDE = (120, 36), (80, 24), (200, 50)
PACKETS = scenario_packets()
POINTS = [point for _, point, _ in PACKETS]
DETAIL = ("layers", "hex", "hops", "verdict")


@pytest.fixture()
def scenario(tmp_path):
    return write_scenario(tmp_path)


def rows_where(predicate) -> list[int]:
    return [i for i, (_, point, frame) in enumerate(PACKETS) if predicate(point, frame)]


def involves(pod: str):
    ip = PODS[pod][1]
    return lambda point, frame: ip in (inner_ip(frame).src, inner_ip(frame).dst)


def status_line(app) -> str:
    """The status line as the terminal shows it (second line from the bottom, above the footer)."""
    return screen_text(app).splitlines()[-2]


def list_rows(app) -> list[str]:
    """The packet rows the list shows on screen (below its header line)."""
    region = app.query_one(PacketList).region
    lines = screen_text(app).splitlines()[region.y + 1: region.bottom]
    return [line[region.x: region.right] for line in lines if line[region.x: region.right].strip()]


def shown_panes(app) -> list[str]:
    return [p for p in DETAIL if app.query_one(f"#{p}").region.area]


def pane_of(app) -> str | None:
    focused = app.focused
    chain = [focused, *focused.ancestors] if focused is not None else []
    return next((node.id for node in chain if node.id in ("packets", "prompt", *DETAIL)), None)


async def type_filter(pilot, expr: str) -> None:
    await pilot.press("slash")
    pilot.app.query_one("#prompt-input").value = expr
    await pilot.press("enter")
    await settle(pilot.app, pilot)


# ----- list keys ----------------------------------------------------------------------------------------------
@run_async
async def test_page_down_and_page_up(scenario) -> None:
    """PgDn moves the cursor one page (the list scrolls with it), PgUp one page back; Ctrl+F/B do the same."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        packets = app.query_one(PacketList)
        page = packets._page  # noqa: SLF001 - rows in view below the header
        assert 2 * page < len(PACKETS), "the scenario must span more than two pages for this test"
        for down, up in (("pagedown", "pageup"), ("ctrl+f", "ctrl+b")):
            await pilot.press(down, down)
            assert packets.selected_row == 2 * page
            assert packets.scroll_y > 0  # the list scrolled to keep the cursor in view
            assert f"  {2 * page + 1}  " in screen_text(app)
            await pilot.press(up)
            assert packets.selected_row == page
            await pilot.press(up, up)  # clamps at the first packet
            assert packets.selected_row == 0 and packets.scroll_y == 0


@run_async
async def test_mouse_wheel_scrolls_the_list(scenario) -> None:
    """The mouse wheel scrolls the packet list; a click then selects the row under the pointer."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        packets = app.query_one(PacketList)
        for _ in range(3):
            await pilot._post_mouse_events([events.MouseScrollDown], PacketList, offset=(10, 5))  # noqa: SLF001
        await pilot.pause()
        top = int(packets.scroll_y)
        assert top > 0
        await pilot.click(PacketList, offset=(10, 2))  # the second packet row on screen
        await pilot.pause()
        assert packets.selected_row == top + 1


# ----- filter -------------------------------------------------------------------------------------------------
@run_async
async def test_verdict_filter_with_and_without_quotes(scenario) -> None:
    """`verdict == deny` takes its value bare or quoted: the list shows nginx's denied SYNs only, each marked ✗,
    and the status line counts them."""
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.session.cluster is not None, app.session.missing
        want = rows_where(involves("nginx"))
        for expr in ("verdict == deny", 'verdict == "deny"', "verdict == 'deny'", "verdict != allow"):
            await type_filter(pilot, "")
            await type_filter(pilot, expr)
            assert app.query_one("#prompt").error == "", expr
            assert list(app.session.view) == want, expr
            assert f"{len(want)}/{len(PACKETS)} pkts" in status_line(app) and f"filter: {expr}" in status_line(app)
            rows = list_rows(app)
            assert len(rows) == min(len(want), app.query_one(PacketList)._page)  # noqa: SLF001
            assert all("linux/nginx:52000" in r and r.rstrip(" ▁▂▃▄▅▆▇█").endswith("✗") for r in rows), rows


@run_async
async def test_verdict_filter_without_cluster_says_why(scenario) -> None:
    """Without cluster state `verdict == deny` is an inline error naming what is missing, not an empty list."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, "verdict == deny")
        assert "cluster" in app.query_one("#prompt").error
        assert app.session.view is None


@run_async
async def test_k8s_node_filter_without_cluster_is_the_capture_node(scenario) -> None:
    """With no cluster state, `k8s.node == node2` keeps the packets captured on node2's interfaces."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, "k8s.node == node2")
        assert app.query_one("#prompt").error == ""
        assert list(app.session.view) == rows_where(lambda point, frame: point.startswith("node2/"))


@run_async
async def test_bad_filter_error_is_shown_inline_and_old_filter_stays(scenario) -> None:
    """A bad filter's error is on screen under the prompt (with a caret at the position when the filter
    core gives one) while the list and the status line keep the previous filter and its rows."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, "udp")
        udp_rows = rows_where(lambda point, frame: point.endswith("/eth0"))
        for bad, error in (("udp &&& (", "^"), ("k8s.namespace == linux", "k8s.namespace")):
            await type_filter(pilot, bad)
            screen = screen_text(app)
            prompt = app.query_one("#prompt")
            assert prompt.display and prompt.error and prompt.error.splitlines()[-1].strip() in screen
            assert error in prompt.error
            assert list(app.session.view) == udp_rows and app.session.filter_expr == "udp"
            assert f"{len(udp_rows)}/{len(PACKETS)} pkts" in status_line(app) and "filter: udp " in status_line(app)
            await pilot.press("escape")
            assert not prompt.display and app.session.filter_expr == "udp" and pane_of(app) == "packets"


# ----- quit ---------------------------------------------------------------------------------------------------
@run_async
async def test_q_quits_but_is_text_in_a_prompt(scenario) -> None:
    """In the filter prompt `q` is typed (the app keeps running); on the list `q` quits with status 0."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", "q")
        assert app.is_running and app.query_one("#prompt-input").value == "q"
        await pilot.press("escape", "q")
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


@run_async
async def test_ctrl_c_quits_even_from_a_prompt(scenario) -> None:
    """Ctrl+C quits from anywhere, including with the go-to prompt open and focused."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", "1")
        assert pane_of(app) == "prompt"
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


# ----- panes: zoom, hide, layout ------------------------------------------------------------------------------
@run_async
async def test_zoom_a_detail_pane_and_escape_restores(scenario) -> None:
    """`z` on the focused layers pane fills the screen with it (the list is gone); Esc restores the layout."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("tab")
        assert pane_of(app) == "layers"
        width = app.query_one("#layers").region.width
        await pilot.press("z")
        await pilot.pause()
        layers = app.query_one("#layers")
        assert app.screen.maximized is layers and layers.region.width > width
        assert app.query_one(PacketList).region.area == 0
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.maximized is None and app.query_one(PacketList).region.area > 0


@run_async
async def test_each_detail_pane_hides_and_tab_skips_it(scenario) -> None:
    """1–4 hide the layers, bytes, hop path and verdict panes (the others stay); Tab then skips the hidden
    one; the same key shows it again."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert shown_panes(app) == list(DETAIL)
        for key, pane in zip("1234", DETAIL):
            await pilot.press(key)
            await pilot.pause()
            assert shown_panes(app) == [p for p in DETAIL if p != pane]
            if pane == "hex":  # Tab order with one pane hidden (the same code path for any of them)
                visited = []
                for _ in range(len(DETAIL)):
                    await pilot.press("tab")
                    visited.append(pane_of(app))
                assert visited == ["layers", "hops", "verdict", "packets"]
            await pilot.press(key)
            await pilot.pause()
            assert shown_panes(app) == list(DETAIL)


def hex_offsets(app) -> list[str]:
    """The offset column of the bytes pane as shown on screen."""
    region = app.query_one(HexView).content_region
    lines = screen_text(app).splitlines()[region.y: region.y + region.height]
    return [line[region.x: region.x + 4] for line in lines if line[region.x: region.x + 4].strip()]


@run_async
async def test_bytes_pane_adapts_to_the_terminal_width(scenario) -> None:
    """A wide terminal (≥ 170 columns) gets 16 bytes a hex line, a 120-column one 8; every detail pane is
    shown side by side in both, and a resize switches between them."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.query_one(PacketList).select_row(POINTS.index("node1/eth0"))
        await settle(app, pilot)
        frame_len = len(bytes(PACKETS[POINTS.index("node1/eth0")][2]))
        for size, per_line in ((SIZE, 8), (WIDE, 16), (SIZE, 8)):
            await pilot.resize_terminal(*size)
            await settle(app, pilot)
            offsets = hex_offsets(app)
            assert offsets[:2] == ["0000", f"{per_line:04x}"], size
            assert len(offsets) == -(-frame_len // per_line), size
            assert shown_panes(app) == list(DETAIL)


@run_async
async def test_clicked_pane_stays_current_when_the_terminal_narrows(scenario) -> None:
    """A pane focused with the mouse is the one an 80-column terminal then shows (one detail pane at a time)."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.click("#hex", offset=(5, 2))
        await pilot.pause()
        assert pane_of(app) == "hex"
        await pilot.resize_terminal(*SMALL)
        await pilot.pause()
        assert shown_panes(app) == ["hex"]


# ----- keymap file --------------------------------------------------------------------------------------------
@run_async
async def test_keymap_file_remaps_a_binding_by_id(scenario, tmp_path, monkeypatch) -> None:
    """`run_app` reads $TRACER_KEYMAP: `app.mark: M` makes M mark (m no longer does) and help shows M."""
    from textual.widgets import DataTable

    from tracer.ui import app as app_module

    keymap = tmp_path / "keymap.yaml"
    keymap.write_text('app.mark: "M"\nlist.down: "x,down"\n')
    monkeypatch.setenv("TRACER_KEYMAP", str(keymap))
    started = []
    monkeypatch.setattr(app_module.TracerApp, "run", lambda self, *a, **k: started.append(self))
    assert app_module.run_app([str(scenario[0])]) == 0
    (app,) = started
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("M", "x", "m", "j")
        assert app.session.marks == {0} and app.query_one(PacketList).selected_row == 1
        await pilot.press("question_mark")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        rows = {str(table.get_row_at(i)[3]): str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        assert rows["app.mark"].strip() == "M" and rows["list.down"].split() == ["x", "↓"]


# ----- status line and list columns ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [SIZE, SMALL])
@run_async
async def test_status_line_shows_files_counts_filter_cni_and_cluster(scenario, size) -> None:
    """The status line shows the file, packets shown/total, the active filter, the detected CNI mode and the
    cluster — all of them still on screen at 80x24, where the longer wording is shortened."""
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        line = status_line(app)
        assert "scenario.pcapng" in line and f"{len(PACKETS)}/{len(PACKETS)}" in line
        assert "flannel-vxlan" in line and ("cluster: cluster.yaml" in line or "cluster ✓" in line)
        if size == SIZE:  # room for the full wording
            assert "CNI: flannel-vxlan (detected)" in line and "cluster: cluster.yaml" in line
        await type_filter(pilot, 'k8s.ns == "linux" && tcp.flags.syn == 1')
        line = status_line(app)
        want = len(rows_where(involves("nginx")))
        assert f"{want}/{len(PACKETS)}" in line and "filter: k8s.ns" in line
        assert "flannel-vxlan" in line and ("cluster: cluster.yaml" in line or "cluster ✓" in line), line


@pytest.mark.parametrize(("kwargs", "cni"), [({"analyse": False}, "CNI: ?"),
                                             ({"cni": "calico-ipip"}, "CNI: calico-ipip (--cni)")])
@run_async
async def test_status_line_without_cluster(scenario, kwargs, cni) -> None:
    """No cluster given: the status line says so; the CNI part says how the mode was set (or that it is not
    known without the hop analysis)."""
    app = create_app([str(scenario[0])], **kwargs)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        line = status_line(app)
        assert "no cluster" in line and cni in line and f"{len(PACKETS)}/{len(PACKETS)} pkts" in line


@run_async
async def test_list_names_pods_and_dims_the_outer_node_pair(scenario) -> None:
    """With the cluster known, rows name pods (`python/curl:41000 → python/tomcat:8080`); on a terminal with
    room for it, an encapsulated row adds the outer node pair `(node1 → node2)` in the dim style, and its Encap
    column says `VXLAN 1`."""
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        packets = app.query_one(PacketList)
        eth0 = POINTS.index("node1/eth0")
        strip = packets.render_line(eth0 + 1 - int(packets.scroll_y))  # line 0 is the header
        text = "".join(seg.text for seg in strip)
        assert "python/curl:41000 → python/tomcat:8080" in text and "VXLAN 1" in text
        outer = next(seg for seg in strip if "(node1 → node2)" in seg.text)
        dim = packets.get_component_rich_style("packet-list--dim").color
        assert outer.style.color == dim
        plain = next(seg for seg in strip if "python/curl:41000" in seg.text)
        assert plain.style.color != dim
        veth = packets.render_line(POINTS.index("node1/veth9e8d7c6b") + 1 - int(packets.scroll_y))
        assert "(node1" not in "".join(seg.text for seg in veth)  # not encapsulated: no outer pair


# ----- the default: the bundled demo --------------------------------------------------------------------------
@run_async
async def test_open_without_files_is_the_demo_with_its_cluster() -> None:
    """`tracer open` with no file opens the bundled demo with its cluster.yaml: the lab's CNI mode and pod names
    on screen, and the flows view leading with the connection the lab's NetworkPolicy drops (traffic.json says
    which: the one flow not expected to get through)."""
    import argparse
    import json

    from tracer.commands.open import demo_dir, resolve
    from tracer.ui.hop_ladder import attr
    from tracer.ui.session import core_function

    if demo_dir() is None:
        pytest.skip("the bundled demo (captures/demo) is not in this checkout")
    if core_function("tracer.hops:analyze", "tracer.hops.analysis:analyze")[0] is None:
        pytest.skip("the hop analysis is not written yet")
    traffic = json.loads((demo_dir() / "traffic.json").read_text())
    (denied,) = [flow for flow in traffic["flows"] if not flow["expect"]]
    files, cluster = resolve(argparse.Namespace(files=[], cluster=None))
    app = create_app(files, cluster=cluster)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        line = status_line(app)
        assert "merged.pcapng" in line and "cluster: cluster.yaml" in line, line
        assert f"CNI: {traffic['mode']} (detected)" in line, line
        assert denied["src"].split("/")[0] + "/" in screen_text(app) or "linux/" in screen_text(app)
        await pilot.press("F")
        await settle(app, pilot)
        first = app.screen.flows[0]
        assert attr(first, "verdict") == "deny" and attr(first, "dropped_after")
        assert attr(first, "src_pod") == denied["src"] and attr(first, "dst_pod") == traffic["policy"]["pod"]
        assert attr(first, "dport") == traffic["policy"]["port"]


@run_async
async def test_reachability_view_starts_on_the_first_mismatch() -> None:
    """`r` on the demo highlights every mismatch cell (reversed, with `!`) and starts with the cursor on the
    first one, its explanation already shown underneath."""
    import argparse

    from textual.widgets import DataTable, Static

    from tracer.commands.open import demo_dir, resolve
    from tracer.ui.hop_ladder import attr
    from tracer.ui.reach_screen import ReachScreen
    from tracer.ui.session import core_function

    if demo_dir() is None:
        pytest.skip("the bundled demo (captures/demo) is not in this checkout")
    if core_function("tracer.hops:analyze", "tracer.hops.analysis:analyze")[0] is None:
        pytest.skip("the hop analysis is not written yet")
    files, cluster = resolve(argparse.Namespace(files=[], cluster=None))
    app = create_app(files, cluster=cluster)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ReachScreen) and screen.matrix is not None, screen
        pods = screen.pods
        table = screen.query_one(DataTable)
        mismatches = [(r, c) for r, src in enumerate(pods) for c, dst in enumerate(pods)
                      if attr(screen.cell(src, dst), "mismatch")]
        assert mismatches, "the demo's unenforced ICMP flow is a mismatch (captures/README.md)"
        for r, src in enumerate(pods):
            for c, dst in enumerate(pods):
                shown = table.get_cell_at((r, c + 1))
                flagged = "reverse" in str(shown.style) and shown.plain.endswith("!")
                assert flagged == ((r, c) in mismatches), (src, dst, shown.plain, shown.style)
        r, c = mismatches[0]
        assert tuple(table.cursor_coordinate) == (r, c + 1)
        detail = str(screen.query_one("#reach-detail", Static).render())
        mismatch = attr(screen.cell(pods[r], pods[c]), "mismatch")
        assert f"{pods[r]} → {pods[c]}" in detail and f"mismatch: {mismatch}" in detail


@run_async
async def test_export_to_a_home_relative_path(scenario, tmp_path, monkeypatch) -> None:
    """`e` then `~/name.pcapng` writes into the home directory, as a shell would read the path."""
    from tracer.capture.index import load_index

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        app.query_one("#prompt-input").value = "~/incident.pcapng"
        await pilot.press("enter")
        await settle(app, pilot)
    exported = load_index([str(home / "incident.pcapng")])
    assert len(exported) == len(PACKETS)
    assert [exported.frame(k) for k in range(len(exported))] == [bytes(frame) for _, _, frame in PACKETS]


@run_async
async def test_progress_is_shown_while_indexing(scenario) -> None:
    """While a capture is still being read (a growing file being followed), the status line shows the
    progress — percentage, packets, packets/s and that Esc cancels — and the progress bar is displayed;
    both go away when the load ends."""
    from textual.widgets import ProgressBar

    app = create_app([str(scenario[0])], follow=True)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if app.session.total == len(PACKETS):
                break
        await pilot.pause()
        line = status_line(app)
        assert f"indexing 100% {len(PACKETS)} pkts" in line and "pkt/s · Esc cancels" in line, line
        assert app.query_one("#progress", ProgressBar).display
        await pilot.press("escape")
        await settle(app, pilot)
        assert "indexing" not in status_line(app) and not app.query_one("#progress", ProgressBar).display


@run_async
async def test_zoom_follows_tab_and_keeps_the_prompt_and_status_visible(scenario) -> None:
    """With the list zoomed, `/` opens a prompt that is on screen (a bad filter's error too) and the status line
    stays; Tab moves the zoom to the next pane rather than the focus to a pane hidden behind the zoom."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is app.query_one(PacketList)
        await type_filter(pilot, "udp &&& (")
        screen = screen_text(app)
        assert "filter / udp &&& (" in screen and app.query_one("#prompt").error.splitlines()[-1].strip() in screen
        assert f"{len(PACKETS)}/{len(PACKETS)} pkts" in status_line(app)
        await pilot.press("escape")  # closes the prompt; the zoom stays
        await pilot.pause()
        assert app.screen.maximized is app.query_one(PacketList) and pane_of(app) == "packets"
        await pilot.press("tab")
        await pilot.pause()
        layers = app.query_one("#layers")
        assert pane_of(app) == "layers" and app.screen.maximized is layers
        assert app.query_one(PacketList).region.area == 0 and layers.region.area > 0


@run_async
async def test_a_filter_matching_nothing_empties_the_panes(scenario) -> None:
    """When the filter matches no packet the detail panes say so (not the last packet, which is no longer in
    the list), and f, m and ] have no packet to act on; clearing the filter brings the packets back."""
    from tracer.ui.hop_ladder import HopLadder
    from tracer.ui.verdict_panel import VerdictPanel

    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, "tcp.port == 9")
        assert app.session.shown == 0 and list_rows(app) == []
        assert "no packet matches the filter" in app.query_one(HopLadder).text
        assert "no packet matches the filter" in app.query_one(VerdictPanel).text
        assert "#1 at" not in screen_text(app)
        await pilot.press("f", "m", "right_square_bracket")
        await settle(app, pilot)
        assert app.session.filter_expr == "tcp.port == 9" and app.session.marks == set()
        await type_filter(pilot, "")
        assert app.session.shown == len(PACKETS)
        assert f"#{app.query_one(PacketList).selected_row + 1} at" in screen_text(app)


@run_async
async def test_help_at_80_columns_keeps_the_binding_ids_in_view(scenario) -> None:
    """At 80x24 `?` fits the whole table in the width — descriptions wrap — so every binding id (what a keymap
    file needs) is readable without scrolling sideways; the full descriptions are still there."""
    from textual.widgets import DataTable

    from tracer.ui.help_screen import HelpScreen

    app = create_app([str(scenario[0])])
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        screen = screen_text(app)
        assert "app.help" in screen and "app.filter" in screen
        wrapped = {str(table.get_row_at(i)[3]): " ".join(str(table.get_row_at(i)[2]).split())
                   for i in range(table.row_count)}
        assert wrapped == {binding_id: description for _, binding_id, _, description in app.binding_table()}


@run_async
async def test_click_below_the_last_row_selects_nothing_new(scenario) -> None:
    """A click on the blank part of a short list (below its last row) leaves the selection where it was."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, "udp")  # the VXLAN frames only: blank lines below them
        packets = app.query_one(PacketList)
        rows = list(app.session.view)
        assert len(rows) + 2 < packets.size.height
        await pilot.click(PacketList, offset=(10, 2))
        await pilot.pause()
        assert packets.selected_row == rows[1]
        await pilot.click(PacketList, offset=(10, len(rows) + 2))
        await pilot.pause()
        assert packets.selected_row == rows[1]


# ----- detail panes -------------------------------------------------------------------------------------------
@run_async
async def test_layers_pane_separates_outer_and_inner_headers(scenario) -> None:
    """An encapsulated packet's layers are shown under an "outer (underlay)" heading (node Ethernet, IP, UDP,
    VXLAN) and an "inner (pod traffic)" heading (the pod's Ethernet, IP, TCP), in that order on screen."""
    from tracer.ui.layer_tree import LayerTree
    from tracer.ui.session import core_function

    if core_function("tracer.decode.dissect:dissect")[0] is None:
        pytest.skip("tracer.decode.dissect is not written yet")
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        eth0 = POINTS.index("node1/eth0")
        app.query_one(PacketList).select_row(eth0)
        await settle(app, pilot)
        region = app.query_one(LayerTree).region
        lines = [line[region.x: region.right] for line in screen_text(app).splitlines()[region.y: region.bottom]]
        text = "\n".join(lines)
        outer, inner = text.index("outer (underlay)"), text.index("inner (pod traffic)")
        frame = PACKETS[eth0][2]
        assert outer < text.index("VXLAN") < inner < text.index("TCP")
        assert frame["IP"].src in text[outer:inner] and inner_ip(frame).src in text[inner:]
        app.query_one(PacketList).select_row(POINTS.index("node1/flannel.1"))
        await settle(app, pilot)
        assert "outer (underlay)" not in screen_text(app)  # decapsulated: one level, no headings


@run_async
async def test_hop_ladder_of_a_denied_packet(scenario) -> None:
    """nginx's denied SYN: every hop up to node2/cni0 is seen (●) with its time since the first hop and the
    Δ from the previous one (the capture's 20 µs hop gap), eth0 hops say VXLAN, node2/cni0 is marked as where
    it was last seen and tomcat's veth as not seen (○)."""
    from tracer.ui.hop_ladder import HopLadder
    from tracer.ui.session import core_function
    from ui_scenario import HOP_GAP

    if core_function("tracer.hops:analyze", "tracer.hops.analysis:analyze")[0] is None:
        pytest.skip("the hop analysis is not written yet")
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        first = POINTS.index("node1/veth1a2b3c4d")
        app.query_one(PacketList).select_row(first)
        await settle(app, pilot)
        ladder = app.query_one(HopLadder).text.splitlines()
        seen = ["node1/veth1a2b3c4d", "node1/cni0", "node1/flannel.1", "node1/eth0", "node2/eth0",
                "node2/flannel.1", "node2/cni0"]
        gap_us = round(HOP_GAP * 1e6)
        for k, point in enumerate(seen):
            line = next(line for line in ladder if f" {point} " in line or line.endswith(f" {point}"))
            assert "●" in line and f"+{k * gap_us}µs" in line, line
            assert (f"Δ{gap_us}" in line) == (k > 0), line
            assert ("VXLAN" in line) == point.endswith("/eth0"), line
            assert ("◀ last" in line) == (point == "node2/cni0"), line
        tomcat_veth = next(line for line in ladder if "node2/veth55aa66bb" in line)
        assert "○" in tomcat_veth and "not seen" in tomcat_veth
        assert any("last seen at node2/cni0" in line for line in ladder)


@run_async
async def test_exporting_nothing_keeps_an_earlier_export(scenario, tmp_path) -> None:
    """`e` with a filter that shows no packet (and none marked) says there is nothing to export and leaves an
    earlier export of the same name as it was, rather than replacing it with an empty file."""
    earlier = tmp_path / "tracer-export.pcapng"
    earlier.write_bytes(b"an earlier export")
    app = create_app([str(scenario[0])])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, "tcp.port == 9")
        await pilot.press("e")
        app.query_one("#prompt-input").value = str(earlier)
        await pilot.press("enter")
        await settle(app, pilot)
        assert any("no packets to export" in str(n.message) for n in app._notifications)  # noqa: SLF001
    assert earlier.read_bytes() == b"an earlier export"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tracer-export-")] == []


@run_async
async def test_keys_needing_the_hop_analysis_say_it_is_switched_off(scenario) -> None:
    """With the hop analysis switched off (`tracer open --no-hops`), ], F and a hop.role filter say so — not
    that the analysis is "still running", which would have the user wait for nothing."""
    app = create_app([str(scenario[0])], analyse=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("right_square_bracket", "F")
        await settle(app, pilot)
        messages = [str(n.message) for n in app._notifications]  # noqa: SLF001
        assert len(messages) == 2 and all("--no-hops" in m and "still running" not in m for m in messages), messages
        await type_filter(pilot, "hop.role == bridge")
        assert "--no-hops" in app.query_one("#prompt").error


@run_async
async def test_mouse_in_the_flows_view(scenario) -> None:
    """In the flows view a click highlights a flow (its explanation follows) and a second click on it opens
    its packets in the list."""
    from textual.widgets import DataTable

    from tracer.ui.flows_screen import FlowsScreen
    from tracer.ui.hop_ladder import attr
    from tracer.ui.session import core_function

    if core_function("tracer.hops:analyze", "tracer.hops.analysis:analyze")[0] is None:
        pytest.skip("the hop analysis is not written yet")
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("F")
        await settle(app, pilot)
        assert isinstance(app.screen, FlowsScreen)
        second = app.screen.flows[1]
        src = attr(second, "src_pod")
        await pilot.click(DataTable, offset=(3, 2))  # header, first flow, second flow
        await pilot.pause()
        assert app.screen.query_one(DataTable).cursor_row == 1
        explanation = str(app.screen.query_one("#flow-explanation").render())
        assert explanation.startswith(f"{attr(second, 'verdict').upper()} {src} → "), explanation
        await pilot.click(DataTable, offset=(3, 2))
        await settle(app, pilot)
        assert not isinstance(app.screen, FlowsScreen)
        assert list(app.session.view) == rows_where(involves(src.split("/")[1]))
