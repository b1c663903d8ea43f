"""``e`` exports the marked (else the shown) packets to pcapng that the capture core reads back unchanged."""

from __future__ import annotations

import pytest

from tracer.ui.app import create_app
from tracer.ui.packet_list import PacketList
from ui_scenario import run_async, settle, write_scenario

index_module = pytest.importorskip("tracer.capture.index", reason="the capture index is not written yet")

SIZE = (120, 36)


async def export_to(pilot, path) -> None:
    await pilot.press("e")
    pilot.app.query_one("#prompt-input").value = str(path)
    await pilot.press("enter")
    await settle(pilot.app, pilot)


def same_packets(original, rows, exported) -> None:
    assert len(exported) == len(rows)
    for k, row in enumerate(rows):
        assert exported.frame(k) == original.frame(row)
        assert int(exported["ts_ns"][k]) == int(original["ts_ns"][row])
        src_o = original.sources[int(original["source"][row])]
        src_e = exported.sources[int(exported["source"][k])]
        assert (src_e.point or src_e.iface) == (src_o.point or src_o.iface)


@run_async
async def test_export_marked_packets(tmp_path) -> None:
    """Marked packets are written in order with their timestamps and capture-point names."""
    capture, _ = write_scenario(tmp_path)
    out = tmp_path / "marked.pcapng"
    app = create_app([str(capture)])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await pilot.press("m", "j", "j", "j", "m", "G", "m")
        rows = sorted(app.session.marks)
        await export_to(pilot, out)
        original = app.session.index
        exported = index_module.load_index([str(out)])
        same_packets(original, rows, exported)
        assert not list(tmp_path.glob(".tracer-export-*"))  # the temporary file was renamed into place


@run_async
async def test_export_all_shown_packets(tmp_path) -> None:
    """Without marks, every packet shown is exported; the file round-trips through the capture core."""
    capture, _ = write_scenario(tmp_path)
    out = tmp_path / "all.pcapng"
    app = create_app([str(capture)])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await export_to(pilot, out)
        original = app.session.index
        exported = index_module.load_index([str(out)])
        same_packets(original, list(range(len(original))), exported)


@run_async
async def test_export_to_bad_path_is_reported(tmp_path) -> None:
    """An unwritable destination is a notification, not a crash; nothing is left behind."""
    capture, _ = write_scenario(tmp_path)
    app = create_app([str(capture)])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await export_to(pilot, tmp_path / "no-such-dir" / "x.pcapng")
        assert any("failed" in str(n.message) for n in app._notifications)  # noqa: SLF001
        assert app.query_one(PacketList).selected_row == 0


@run_async
async def test_export_keeps_pod_names_as_comments(tmp_path) -> None:
    """With a cluster loaded, each exported packet carries its pod names as a pcapng comment."""
    from scapy.utils import PcapNgReader

    from tracer.ui.session import core_function

    if core_function("tracer.k8s:load_cluster", "tracer.k8s.cluster:load_cluster")[0] is None:
        pytest.skip("the cluster model is not written yet")
    capture, cluster = write_scenario(tmp_path)
    out = tmp_path / "named.pcapng"
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await pilot.press("G", "m")  # the last packet: nginx's retransmitted SYN at node2/cni0
        await export_to(pilot, out)
    packets = list(PcapNgReader(str(out)))
    assert len(packets) == 1
    comments = [c.decode() if isinstance(c, bytes) else c for c in packets[0].comments]
    assert comments == ["linux/nginx → python/tomcat"]
    assert packets[0].sniffed_on == "node2/cni0"


@run_async
async def test_export_filtered_packets(tmp_path) -> None:
    """With a filter and no marks, exactly the packets shown are exported."""
    pytest.importorskip("tracer.capture.filter", reason="the display filter is not written yet")
    capture, _ = write_scenario(tmp_path)
    out = tmp_path / "udp.pcapng"
    app = create_app([str(capture)])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash")
        app.query_one("#prompt-input").value = "udp"
        await pilot.press("enter")
        await settle(app, pilot)
        rows = list(app.session.view)
        assert 0 < len(rows) < app.session.total
        await export_to(pilot, out)
        same_packets(app.session.index, rows, index_module.load_index([str(out)]))


@run_async
async def test_accepting_the_suggested_name_twice_keeps_the_first_export(tmp_path, monkeypatch) -> None:
    """`e` suggests a name no file has yet: Enter, Enter again later, and the first export is still there."""
    capture, _ = write_scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for expected in ("tracer-export.pcapng", "tracer-export-2.pcapng"):
            await pilot.press("e")
            assert app.query_one("#prompt-input").value == expected
            await pilot.press("enter")
            await settle(app, pilot)
            assert (tmp_path / expected).exists()
        await pilot.press("e")
        assert app.query_one("#prompt-input").value == "tracer-export-3.pcapng"
    first = index_module.load_index([str(tmp_path / "tracer-export.pcapng")])
    second = index_module.load_index([str(tmp_path / "tracer-export-2.pcapng")])
    assert len(first) == len(second) == len(app.session.index) > 0
