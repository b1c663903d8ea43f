"""CNI path models, interface roles and mode detection: the paths flannel and Calico actually build."""

from __future__ import annotations

import numpy as np
import pytest

from tracer.hops import detect as D
from tracer.hops import models as M
from tracer.hops import roles as R
from tracer.hops.models import expected_path

POD, VETH, CALI, BR, VX, IPIP, TUN, ETH = (R.POD_ETH0, R.VETH, R.CALI, R.BRIDGE, R.VXLAN_DEV, R.IPIP_DEV,
                                           R.TUN_DEV, R.HOST_ETH0)


@pytest.mark.parametrize(("mode", "roles"), [
    (M.FLANNEL_VXLAN, [POD, VETH, BR, VX, ETH, ETH, VX, BR, VETH, POD]),
    (M.FLANNEL_HOST_GW, [POD, VETH, BR, ETH, ETH, BR, VETH, POD]),
    (M.FLANNEL_UDP, [POD, VETH, BR, TUN, ETH, ETH, TUN, BR, VETH, POD]),
    (M.CALICO_IPIP, [POD, CALI, IPIP, ETH, ETH, IPIP, CALI, POD]),
    (M.CALICO_VXLAN, [POD, CALI, VX, ETH, ETH, VX, CALI, POD]),
    (M.CALICO_BGP, [POD, CALI, ETH, ETH, CALI, POD]),
])
def test_cross_node_paths(mode: str, roles: list[str]) -> None:
    """Pod to pod on two nodes: the tutorial's hop sequence per CNI mode, source node first."""
    hops = expected_path(mode, "n1", "n2")
    assert [h.role for h in hops] == roles
    half = len(hops) // 2
    assert {h.node for h in hops[:half]} == {"n1"} and {h.node for h in hops[half:]} == {"n2"}
    wire = [h.encap for h in hops if h.role == ETH]
    assert wire == [{"flannel-vxlan": "vxlan", "calico-vxlan": "vxlan", "calico-ipip": "ipip",
                     "flannel-udp": "udp"}.get(mode)] * 2


def test_crosssubnet_encapsulates_only_across_subnets() -> None:
    """Calico CrossSubnet: IPIP between subnets, plain routing (BGP path) inside one subnet."""
    across = expected_path(M.CALICO_IPIP_CROSSSUBNET, "n1", "n2", same_subnet=False)
    inside = expected_path(M.CALICO_IPIP_CROSSSUBNET, "n1", "n2", same_subnet=True)
    assert IPIP in [h.role for h in across]
    assert [h.role for h in inside] == [h.role for h in expected_path(M.CALICO_BGP, "n1", "n2")]


@pytest.mark.parametrize(("mode", "roles"), [
    (M.FLANNEL_VXLAN, [POD, VETH, BR, VETH, POD]),
    (M.CALICO_IPIP, [POD, CALI, CALI, POD]),
])
def test_same_node_never_touches_eth0(mode: str, roles: list[str]) -> None:
    """Same-node traffic: veth → cni0 → veth (flannel), cali → cali (Calico); never eth0 or a tunnel."""
    assert [h.role for h in expected_path(mode, "n1", "n1")] == roles


def test_pod_to_outside_and_back() -> None:
    """Pod ↔ outside: the half of the path up to (or from) host eth0, without encapsulation."""
    out = expected_path(M.FLANNEL_VXLAN, "n1", None, dst_is_pod=False)
    assert [h.role for h in out] == [POD, VETH, BR, ETH] and out[-1].encap is None
    back = expected_path(M.FLANNEL_VXLAN, None, "n2", src_is_pod=False)
    assert [h.role for h in back] == [ETH, BR, VETH, POD]


def test_pinned_interfaces() -> None:
    """A pod's own veth, when known, is pinned on its hop."""
    hops = expected_path(M.FLANNEL_VXLAN, "n1", "n2", src_iface="n1/vethaaaa", dst_iface="n2/vethbbbb")
    assert hops[1].iface == "n1/vethaaaa" and hops[-2].iface == "n2/vethbbbb"


@pytest.mark.parametrize(("name", "role"), [
    ("veth2a5aa61c", VETH), ("cali1234567890a", CALI), ("cni0", BR), ("cbr0", BR), ("flannel.1", VX),
    ("vxlan.calico", VX), ("tunl0", IPIP), ("flannel0", TUN), ("eth0", ETH), ("ens5", ETH), ("enp0s3", ETH),
    ("eno1", ETH), ("bond0", ETH), ("lo", None), ("capture.pcap", None), (None, None),
])
def test_role_of_iface(name: str | None, role: str | None) -> None:
    """Interface names announce their role the way flannel, Calico and Linux name devices."""
    assert R.role_of_iface(name) == role


def test_parse_point() -> None:
    """NODE/IFACE and pod:NS/NAME capture points split into node, interface, pod."""
    assert R.parse_point("node3/cni0") == R.Point("node3/cni0", "node3", "cni0")
    pod = R.parse_point("pod:default/nginx")
    assert pod.pod == "default/nginx" and R.role_of_point(pod) == POD


@pytest.mark.parametrize(("value", "mode"), [("vxlan", M.FLANNEL_VXLAN), ("host-gw", M.FLANNEL_HOST_GW),
                                             ("IPIP", M.CALICO_IPIP), ("calico_vxlan", M.CALICO_VXLAN),
                                             ("crosssubnet", M.CALICO_IPIP_CROSSSUBNET), ("bgp", M.CALICO_BGP)])
def test_normalise_mode(value: str, mode: str) -> None:
    assert M.normalise_mode(value) == mode


def test_unknown_mode_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="flannel-vxlan"):
        M.normalise_mode("weave")


def _wire_cols(encap, vni, o_dport, o_proto=17):
    n = len(encap)
    return {"encap": np.array(encap, np.uint8), "vni": np.array(vni, np.int32),
            "o_dport": np.array(o_dport, np.uint16), "o_sport": np.zeros(n, np.uint16),
            "o_proto": np.full(n, o_proto, np.uint8)}


def test_mode_from_traffic() -> None:
    """UDP 8472/VNI 1 is flannel, VNI 4096 or port 4789 Calico VXLAN, protocol 4 Calico IPIP, 8285 flannel UDP."""
    assert D.mode_from_traffic(D.wire_class(_wire_cols([1, 1], [1, 1], [8472, 8472])))[0] == M.FLANNEL_VXLAN
    assert D.mode_from_traffic(D.wire_class(_wire_cols([1], [4096], [4789])))[0] == M.CALICO_VXLAN
    assert D.mode_from_traffic(D.wire_class(_wire_cols([3, 3, 0], [-1, -1, -1], [0, 0, 0], 4)))[0] == M.CALICO_IPIP
    assert D.mode_from_traffic(D.wire_class(_wire_cols([0], [-1], [8285])))[0] == M.FLANNEL_UDP
    assert D.mode_from_traffic(D.wire_class(_wire_cols([0], [-1], [53])))[0] is None


def test_mode_precedence() -> None:
    """--cni beats node annotations, which beat traffic, which beats interface names."""
    wire = D.wire_class(_wire_cols([1], [1], [8472]))
    ann = {"n1": {D.ANNOTATION_CALICO_IPIP: "10.244.5.0"}}
    assert D.detect_mode(cni="host-gw", annotations=ann, wire=wire, ifaces=[])[0] == M.FLANNEL_HOST_GW
    assert D.detect_mode(cni=None, annotations=ann, wire=wire, ifaces=[])[0] == M.CALICO_IPIP
    assert D.detect_mode(cni=None, annotations={}, wire=wire, ifaces=["tunl0"])[0] == M.FLANNEL_VXLAN
    none = D.wire_class(_wire_cols([0], [-1], [80]))
    assert D.detect_mode(cni=None, annotations={}, wire=none, ifaces=["tunl0"])[0] == M.CALICO_IPIP
    flannel = {"n1": {D.ANNOTATION_FLANNEL: "host-gw"}}
    assert D.detect_mode(cni=None, annotations=flannel, wire=none, ifaces=[])[0] == M.FLANNEL_HOST_GW


def _plain(n: int, ttl: int = 64):
    z = np.zeros(n, np.uint8)
    return dict(encap=z, i_ver=np.full(n, 4, np.uint8), o_proto=np.full(n, 6, np.uint8),
                o_dport=np.full(n, 80, np.uint16), i_ttl=np.full(n, ttl, np.uint8))


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


@pytest.mark.parametrize(("macs", "ttl", "linktype", "role"), [
    ([("ee:ee:ee:ee:ee:ee", "0a:58:0a:f4:80:02")], 64, 1, CALI),          # Calico host veth MAC
    ([("e6:a1:b2:c3:d4:31", "0a:58:0a:f4:00:02")], 64, 1, VETH),          # bridge plugin pod MAC
    ([("5a:b0:c1:d2:e3:22", "5a:b0:c1:d2:e3:21")], 63, 1, VX),            # flannel VTEP MACs, routed once
    ([("00:1c:42:00:00:08", "00:1c:42:00:00:09")], 63, 1, ETH),           # node NICs, routed: host-gw underlay
    ([], 64, 101, IPIP),                                                    # raw IP: tunl0
])
def test_role_inferred_from_traffic(macs, ttl, linktype, role) -> None:
    """A point whose name says nothing gets its role from what it carries, marked inferred."""
    frames = [_mac(d) + _mac(s) for d, s in macs] * 4
    guess = R.infer_role(**{k: v for k, v in _plain(4, ttl).items() if k != "i_ttl"}, linktype=linktype,
                         macs=frames, i_ttl=_plain(4, ttl)["i_ttl"])
    assert guess.role == role and guess.inferred and guess.reason


def test_encapsulated_traffic_is_the_underlay() -> None:
    cols = _plain(4)
    cols["encap"] = np.array([1, 1, 1, 0], np.uint8)
    guess = R.infer_role(cols["encap"], cols["i_ver"], cols["o_proto"], cols["o_dport"], 1, [])
    assert guess.role == ETH and "VXLAN" in guess.reason
