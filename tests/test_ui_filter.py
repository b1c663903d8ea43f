"""The display filter in the TUI: narrows the list, keeps the old filter on error, k8s fields, n/N, follow."""

from __future__ import annotations

import pytest

from tracer.ui.app import create_app
from tracer.ui.packet_list import PacketList
from ui_scenario import PODS, inner_ip, run_async, scenario_packets, screen_text, settle, write_scenario

pytest.importorskip("tracer.capture.index", reason="the capture index is not written yet")
pytest.importorskip("tracer.capture.filter", reason="the display filter is not written yet")

SIZE = (120, 36)


@pytest.fixture()
def scenario(tmp_path):
    return write_scenario(tmp_path)


async def type_filter(pilot, expr: str) -> None:
    await pilot.press("slash")
    app = pilot.app
    app.query_one("#prompt-input").value = expr
    await pilot.press("enter")
    await settle(app, pilot)


def expected_rows(predicate) -> list[int]:
    return [i for i, (_, point, frame) in enumerate(scenario_packets()) if predicate(point, frame)]


@run_async
async def test_filter_narrows_the_list(scenario) -> None:
    """``/`` + an expression shows only the matching packets, and the status line says so."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        total = app.session.total
        await type_filter(pilot, "udp")
        want = expected_rows(lambda point, frame: point.endswith("/eth0"))  # only the VXLAN frames are UDP
        assert list(app.session.view) == want
        assert f"{len(want)}/{total} pkts" in screen_text(app)
        assert "filter: udp" in screen_text(app)
        packets = app.query_one(PacketList)
        assert packets.selected_row in want


@run_async
async def test_bad_filter_shows_error_and_keeps_old_one(scenario) -> None:
    """A filter that does not compile is reported inline (with a caret) and the previous filter stays."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, "udp")
        before = list(app.session.view)
        await type_filter(pilot, "udp &&& (")
        prompt = app.query_one("#prompt")
        assert prompt.display and prompt.error
        assert app.session.filter_expr == "udp" and list(app.session.view) == before
        await pilot.press("escape")
        assert not prompt.display


@run_async
async def test_empty_filter_shows_everything(scenario) -> None:
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, "udp")
        await type_filter(pilot, "")
        assert app.session.view is None and app.session.shown == app.session.total


@run_async
async def test_k8s_namespace_filter(scenario) -> None:
    """``k8s.ns == linux`` keeps the packets to or from pods in namespace linux (nginx's denied SYNs)."""
    pytest.importorskip("tracer.k8s", reason="the cluster model is not written yet")
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        if app.session.cluster is None:
            pytest.fail(f"cluster did not load: {app.session.missing}")
        await type_filter(pilot, 'k8s.ns == "linux"')
        nginx_ip = PODS["nginx"][1]
        want = expected_rows(lambda point, frame: nginx_ip in (inner_ip(frame).src, inner_ip(frame).dst))
        assert list(app.session.view) == want


@run_async
async def test_next_and_previous_match(scenario) -> None:
    """After a filter is cleared, n/N step through the packets it matched."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, "udp")
        matches = list(app.session.view)
        await type_filter(pilot, "")
        packets = app.query_one(PacketList)
        packets.select_row(0)
        await pilot.press("n")
        assert packets.selected_row == matches[0]
        await pilot.press("n")
        assert packets.selected_row == matches[1]
        await pilot.press("N")
        assert packets.selected_row == matches[0]


@run_async
async def test_follow_flow(scenario) -> None:
    """``f`` shows only the selected packet's flow (both directions); ``f`` again restores the list."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f")
        await pilot.pause()
        curl_ip = PODS["curl"][1]
        want = expected_rows(lambda point, frame: curl_ip in (inner_ip(frame).src, inner_ip(frame).dst))
        assert list(app.session.view) == want
        await pilot.press("f")
        assert app.session.view is None


@run_async
async def test_hop_role_filter(scenario) -> None:
    """``hop.role == "vxlan-device"`` keeps the packets captured on flannel.1 (the hop analysis's roles)."""
    from tracer.ui.session import core_function

    if core_function("tracer.hops:analyze", "tracer.hops.analysis:analyze")[0] is None:
        pytest.skip("the hop analysis is not written yet")
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, 'hop.role == "vxlan-device"')
        assert list(app.session.view) == expected_rows(lambda point, frame: point.endswith("/flannel.1"))
        await type_filter(pilot, 'hop.role == "vxlan-device" && tcp.flags.syn == 1 && tcp.flags.ack == 0')
        syns = expected_rows(lambda point, frame: point.endswith("/flannel.1") and str(frame["TCP"].flags) == "S")
        assert len(syns) == 6 and list(app.session.view) == syns


@pytest.mark.parametrize(("expr", "who"), [
    ('verdict == "deny"', "nginx"),
    ('k8s.pod == "linux/nginx"', "nginx"),
    ('k8s.pod != "linux/nginx" && k8s.ns == "python"', "curl"),
    ('k8s.pod matches "^python/cu"', "curl"),
])
@run_async
async def test_cluster_fields(scenario, expr, who) -> None:
    """verdict and k8s.pod (==, !=, matches) select the packets of the flow they name, both directions."""
    from tracer.ui.session import core_function

    if core_function("tracer.k8s:load_cluster", "tracer.k8s.cluster:load_cluster")[0] is None:
        pytest.skip("the cluster model is not written yet")
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_filter(pilot, expr)
        assert app.query_one("#prompt").error == "", app.query_one("#prompt").error
        ip = PODS[who][1]
        assert list(app.session.view) == expected_rows(
            lambda point, frame: ip in (inner_ip(frame).src, inner_ip(frame).dst))
