"""Node discovery's pure rules: roles from kind and name, CNI mode, remote pod subnet → node IP, subnet.env."""

from __future__ import annotations

import pytest

from tracer.node.flannel_env import parse_subnet_env, read_subnet_env
from tracer.node.model import (BRIDGE, CALI, HOST_ETH0, IPIP_DEV, VETH, VXLAN_DEV, FdbEntry, Link, Neighbour,
                               NodeInfo, Route, derive_mode, remote_subnets, role_for)


@pytest.mark.parametrize(("name", "kind", "underlay", "peer", "role"), [
    ("flannel.1", "vxlan", set(), False, VXLAN_DEV),
    ("vxlan.calico", "vxlan", set(), False, VXLAN_DEV),
    ("cni0", "bridge", set(), False, BRIDGE),
    ("veth1a2b3c4d", "veth", set(), True, VETH),
    ("cali0123456789a", "veth", set(), True, CALI),
    ("tunl0", "ipip", set(), False, IPIP_DEV),
    ("eth0", "veth", {"eth0"}, True, HOST_ETH0),     # a lab node's eth0 is a veth into the underlay switch
    ("ens5", "device", set(), False, HOST_ETH0),
])
def test_role_from_kind_and_name(name, kind, underlay, peer, role) -> None:
    """A link's role follows its kernel kind first, its name second; the underlay wins over the kind."""
    assert role_for(name, kind, None, underlay, peer_netns=peer) == role


def _link(name, kind, role, addrs=(), vxlan=None) -> Link:
    return Link(index=hash(name) % 1000, name=name, kind=kind, role=role, mac=None, mtu=1500, state="up",
                addresses=list(addrs), vxlan=vxlan)


def test_vxlan_subnet_map_follows_route_neighbour_fdb() -> None:
    """route via the peer VTEP IP → permanent neighbour gives its MAC → FDB gives the peer node IP."""
    info = NodeInfo(
        hostname="n1", netns=None,
        links=[_link("eth0", "device", HOST_ETH0, ["172.31.7.111/24"]),
               _link("flannel.1", "vxlan", VXLAN_DEV, ["10.244.0.0/32"], {"vni": 1, "port": 8472, "local":
                                                                         "172.31.7.111", "learning": False})],
        routes=[Route("10.244.1.0/24", "10.244.1.0", "flannel.1", onlink=True),
                Route("10.244.2.0/24", "10.244.2.0", "flannel.1", onlink=True),
                Route("10.244.3.0/24", "10.244.3.0", "flannel.1", onlink=True)],   # no neighbour: unmapped
        fdb=[FdbEntry("flannel.1", "5a:00:00:00:00:02", "172.31.7.112", True),
             FdbEntry("flannel.1", "5a:00:00:00:00:03", "172.31.7.113", True)],
        neighbours=[Neighbour("flannel.1", "10.244.1.0", "5a:00:00:00:00:02", "permanent"),
                    Neighbour("flannel.1", "10.244.2.0", "5a:00:00:00:00:03", "permanent")],
    )
    assert remote_subnets(info) == {"10.244.1.0/24": "172.31.7.112", "10.244.2.0/24": "172.31.7.113"}
    assert derive_mode(info) == "flannel-vxlan"


def test_host_gw_subnet_map_is_the_gateway() -> None:
    """host-gw: a pod subnet routed via a node IP on the underlay maps to that node; the underlay itself does not."""
    info = NodeInfo(
        hostname="n1", netns=None,
        links=[_link("eth0", "device", HOST_ETH0, ["172.31.7.111/24"]), _link("cni0", "bridge", BRIDGE)],
        routes=[Route("default", "172.31.7.1", "eth0"), Route("10.244.1.0/24", "172.31.7.112", "eth0"),
                Route("192.168.9.0/24", "10.9.9.9", "eth0")],   # gateway off the underlay: not a node
        fdb=[], neighbours=[])
    assert remote_subnets(info) == {"10.244.1.0/24": "172.31.7.112"}
    assert derive_mode(info) == "flannel-host-gw"


def test_calico_vxlan_mode_by_vni() -> None:
    """A VXLAN device with VNI 4096 is Calico's, whatever its name."""
    info = NodeInfo("n", None, [_link("vx0", "vxlan", VXLAN_DEV, vxlan={"vni": 4096, "port": 4789})], [], [], [])
    assert derive_mode(info) == "calico-vxlan"


def test_subnet_env_parsing(tmp_path) -> None:
    """KEY=VALUE lines are read (quotes and `export` stripped); comments and junk are ignored."""
    text = "# flannel\nFLANNEL_NETWORK=10.244.0.0/16\nexport FLANNEL_SUBNET='10.244.1.1/24'\nFLANNEL_MTU=1450\n" \
           "garbage line\n"
    assert parse_subnet_env(text) == {"FLANNEL_NETWORK": "10.244.0.0/16", "FLANNEL_SUBNET": "10.244.1.1/24",
                                      "FLANNEL_MTU": "1450"}
    p = tmp_path / "subnet.env"
    p.write_text(text)
    assert read_subnet_env(str(p))["FLANNEL_MTU"] == "1450"
    assert read_subnet_env(str(tmp_path / "absent")) is None


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_subnet_env_never_raises(text) -> None:
    """Any text (a hostile or corrupt subnet.env) parses to a dict of strings without raising."""
    out = parse_subnet_env(text)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())
    assert all("\n" not in k for k in out)
