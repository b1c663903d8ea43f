"""The packet list: virtual rows from the index, keys that move the cursor, time formats, marks, go-to, cancel."""

from __future__ import annotations

import pytest

from tracer.ui.app import create_app
from tracer.ui.packet_list import PacketList
from tracer.ui.status_bar import StatusBar
from ui_scenario import run_async, scenario_packets, screen_text, settle, write_scenario

pytest.importorskip("tracer.capture.index", reason="the capture index is not written yet")

SIZE = (120, 36)


@pytest.fixture()
def scenario(tmp_path):
    return write_scenario(tmp_path)


def status(app) -> str:
    return app.query_one(StatusBar).render().plain


@run_async
async def test_rows_come_from_the_capture(scenario) -> None:
    """Every packet of the file is listed, numbered from 1, with its capture point and inner conversation."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.session.total == len(scenario_packets())
        text = screen_text(app)
        assert "node1/veth9e8d7c6b" in text and "10.244.1.9:41000 → 10.244.2.7:8080" in text
        assert f"{len(scenario_packets())}/{len(scenario_packets())} pkts" in status(app)


@run_async
async def test_first_rows_show_before_indexing_finishes(scenario, monkeypatch) -> None:
    """The loader posts rows batch by batch; the list shows the first ones while the rest is still loading."""
    import tracer.ui.loading as app_module

    monkeypatch.setattr(app_module, "FIRST_BATCH", 4)
    monkeypatch.setattr(app_module, "BATCH", 4)
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
    counts = [count for _, count, _ in app.load_log]
    assert counts and counts[0] < len(scenario_packets()), counts
    assert all(shown == count for _, count, shown in app.load_log)


@pytest.mark.parametrize(("keys", "row"), [
    (["j", "j", "down"], 3), (["G"], -1), (["G", "k", "up"], -3), (["G", "g"], 0), (["pagedown"], None),
])
@run_async
async def test_cursor_keys(scenario, keys, row) -> None:
    """j/k/arrows step, g/G jump to the ends, PgDn moves a page; the selected row follows."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press(*keys)
        packets = app.query_one(PacketList)
        total = app.session.total
        if row is None:
            assert packets.selected_row == packets._page  # noqa: SLF001
        else:
            assert packets.selected_row == row % total


@run_async
async def test_goto_packet_number(scenario) -> None:
    """``:`` then a number selects that packet; an out-of-range number is an inline error."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", "1", "2", "enter")
        assert app.query_one(PacketList).selected_row == 11
        await pilot.press("colon", "9", "9", "9", "enter")
        assert "no packet 999" in app.query_one("#prompt").error
        assert app.query_one(PacketList).selected_row == 11


@run_async
async def test_time_format_toggle(scenario) -> None:
    """``t`` cycles relative → absolute (UTC) → delta in the Time column."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert " 0.000000 " in screen_text(app)
        await pilot.press("t")
        await pilot.pause()
        assert "22:13:20.000000" in screen_text(app)  # T0 = 1_700_000_000 s = 2023-11-14 22:13:20 UTC
        await pilot.press("t")
        await pilot.pause()
        assert "0.000020" in screen_text(app)  # the hop gap between consecutive rows


@run_async
async def test_mark_toggles(scenario) -> None:
    """``m`` marks the packet under the cursor (a dot in the list, a count in the status); again unmarks."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("m", "j", "m")
        assert app.session.marks == {0, 1}
        assert "2 marked" in status(app)
        await pilot.press("m")
        assert app.session.marks == {0}


def test_missing_file_is_one_line_error(tmp_path, capsys) -> None:
    """``tracer open`` on a missing file prints one line and exits 2 without starting the TUI."""
    from tracer.cli import main

    assert main(["open", str(tmp_path / "nope.pcap")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.pcap" in err


@run_async
async def test_keymap_remaps_a_binding(scenario) -> None:
    """A user keymap entry (binding id → keys) replaces that binding's keys."""
    capture, _ = scenario
    app = create_app([str(capture)], keymap={"list.down": "x"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("x", "x")
        assert app.query_one(PacketList).selected_row == 2
        await pilot.press("j")
        assert app.query_one(PacketList).selected_row == 2


@run_async
async def test_escape_stops_a_load_and_keeps_the_packets(scenario) -> None:
    """Esc during a load that has not finished (a growing file being followed) stops it, keeps every packet
    indexed so far, says so in the status line and runs the hop analysis on them."""
    capture, _ = scenario
    app = create_app([str(capture)], follow=True)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if app.session.total == len(scenario_packets()):
                break
        assert app.session.loading  # still following the file
        await pilot.press("escape")
        await settle(app, pilot)
        assert not app.session.loading and app.session.cancelled
        assert app.session.total == len(scenario_packets())
        assert "load cancelled" in status(app)


@run_async
async def test_unreadable_capture_exits_with_the_error(tmp_path) -> None:
    """A file with no readable packet ends the app with exit status 2 and the capture core's message."""
    bad = tmp_path / "garbage.pcap"
    bad.write_bytes(b"this is not a capture file at all" * 10)
    app = create_app([str(bad)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
    assert app.return_code == 2 and app.fatal_error and "garbage.pcap" in app.fatal_error


@run_async
async def test_truncated_capture_keeps_the_packets_before_the_cut(scenario) -> None:
    """A capture cut mid-record shows every complete packet before the cut and warns once."""
    capture, _ = scenario
    data = capture.read_bytes()
    cut = capture.with_name("cut.pcapng")
    cut.write_bytes(data[: len(data) - 30])
    app = create_app([str(cut)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.session.total == len(scenario_packets()) - 1
        assert app.session.index.warnings
        assert app.return_code is None


class _Counters:
    """The part of ``LiveCapture`` the UI reads: ``totals()`` and whether the capture has ended."""

    def __init__(self) -> None:
        self.done = False

    def totals(self) -> tuple[int, int, int]:
        return (38, 40, 2)


@run_async
async def test_live_capture_counters_and_end(scenario) -> None:
    """With ``live=``, the status line shows the capture's counters and following stops once it has ended."""
    capture, _ = scenario
    live = _Counters()
    app = create_app([str(capture)], live=live)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if "live: 38 captured, 2 dropped" in status(app):
                break
        assert "live: 38 captured, 2 dropped" in status(app) and app.session.loading
        live.done = True
        for _ in range(100):
            await pilot.pause(0.05)
            if not app.session.loading:
                break
        await settle(app, pilot)
        assert not app.session.loading and app.session.total == len(scenario_packets())


@run_async
async def test_non_ip_rows_name_their_link_protocol(tmp_path) -> None:
    """An ARP frame is listed as ARP (from its EtherType, as `tracer show` says), not as an anonymous frame."""
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import wrpcap

    path = tmp_path / "arp.pcap"
    wrpcap(str(path), [Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.244.0.2", pdst="10.244.0.3")])
    app = create_app([str(path)], analyse=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "ARP, 42 bytes" in screen_text(app)
