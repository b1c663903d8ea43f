"""The network-namespace lab (root): topologies built as the CNIs program them, traffic, the deny, teardown,
and node discovery run against the lab's nodes."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root]


def _tracer(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracer", *args], capture_output=True, text=True, check=check,
                          timeout=60)


@pytest.fixture(scope="module")
def flannel_lab():
    """A 2-node flannel-vxlan lab, always torn down (even when a test fails)."""
    from tracer.lab import lifecycle

    try:
        yield lifecycle.up("flannel-vxlan", 2)
    finally:
        lifecycle.down()


def test_lab_namespaces_all_carry_the_prefix(flannel_lab) -> None:
    """Every namespace the lab made starts with trl- and every node and pod has one."""
    from tracer.lab import netns

    names = set(netns.ours())
    assert {n.netns for n in flannel_lab.nodes} | {p.netns for p in flannel_lab.pods} <= names
    assert all(n.startswith("trl-") for n in names)


def test_traffic_and_deny(flannel_lab) -> None:
    """Every flow is answered; after `lab policy` the python → linux/tomcat flow (and only it) is not."""
    before = json.loads(_tracer("lab", "traffic", "--json", "--parallel").stdout)
    assert all(f["ok"] for f in before), [f["label"] for f in before if not f["ok"]]
    assert {f["locality"] for f in before} >= {"same-node", "cross-node", "external"}
    assert {f["kind"] for f in before} >= {"pod", "clusterip", "nodeport"}
    _tracer("lab", "policy")
    try:
        after = json.loads(_tracer("lab", "traffic", "--json", "--parallel").stdout)
        failed = [f["label"] for f in after if not f["ok"]]
        assert failed == ["http python/tomcat->linux/tomcat (denied)"]
    finally:
        _tracer("lab", "policy", "--remove")


def test_discovery_on_lab_node(flannel_lab) -> None:
    """Discovery names roles, the VXLAN device's VNI/port/local IP, bridge ports, veth peers, and maps the peer's
    pod subnet to the peer's node IP through route → neighbour → FDB."""
    out = json.loads(_tracer("ifaces", "--netns", "trl-node1", "--json").stdout)
    node1, node2 = flannel_lab.nodes
    links = {l["name"]: l for l in out["links"]}
    assert links["eth0"]["role"] == "host-eth0"
    assert links["cni0"]["role"] == "bridge"
    vx = links["flannel.1"]
    assert vx["role"] == "vxlan-device"
    assert vx["vxlan"] == {"vni": 1, "port": 8472, "local": node1.ip, "learning": False, "link": "eth0"}
    pods_here = [p for p in flannel_lab.pods if p.node == "node1"]
    assert sorted(links["cni0"]["ports"]) == sorted(p.host_iface for p in pods_here)
    for p in pods_here:
        assert links[p.host_iface]["role"] == "veth"
        assert links[p.host_iface]["peer_netns"] == p.netns
    assert out["mode"] == "flannel-vxlan"
    assert out["remote_subnets"] == {node2.pod_cidr: node2.ip}
    assert {(f["mac"], f["dst"]) for f in out["fdb"]} == {(node2.tunnel_mac, node2.ip)}
    route = next(r for r in out["routes"] if r["dst"] == node2.pod_cidr)
    assert route["gateway"] == node2.tunnel_ip and route["dev"] == "flannel.1" and route["onlink"]


def test_node_facts_without_cluster_access(flannel_lab, tmp_path) -> None:
    """`ifaces --cluster-yaml` writes Nodes that tracer's cluster model reads: this node with its own podCIDR
    (from subnet.env) and the peer, named by its IP, owning the peer's pod subnet."""
    from tracer.k8s.cluster import load_cluster

    node1, node2 = flannel_lab.nodes
    path = tmp_path / "facts.yaml"
    _tracer("ifaces", "--netns", node1.netns, "--hostname", "node1", "--subnet-env",
            f"/run/tracer-lab/node1/subnet.env", "--cluster-yaml", str(path))
    import yaml

    nodes = {n["metadata"]["name"]: n for n in yaml.safe_load(path.read_text())["items"]}
    assert nodes["node1"]["spec"]["podCIDR"] == node1.pod_cidr
    assert nodes[node2.ip]["spec"]["podCIDR"] == node2.pod_cidr
    assert nodes[node2.ip]["status"]["addresses"][0]["address"] == node2.ip
    cluster = load_cluster([str(path)])
    assert cluster.resolve_ip(node2.ip).kind == "node"


def test_status_lists_pods_with_netns_ip_mac(flannel_lab) -> None:
    """`lab status --json` gives each pod's namespace, IP (inside its node's podCIDR) and MAC."""
    st = json.loads(_tracer("lab", "status", "--json").stdout)
    cidrs = {n["name"]: ipaddress.ip_network(n["pod_cidr"]) for n in st["nodes"]}
    assert len(st["pods"]) == len(flannel_lab.pods)
    for p in st["pods"]:
        assert p["netns"].startswith("trl-pod-")
        assert ipaddress.ip_address(p["ip"]) in cidrs[p["node"]]
        assert p["mac"].startswith("0a:58:")


@pytest.mark.parametrize(("mode", "expect_mode", "dev"), [
    ("host-gw", "flannel-host-gw", None),
    ("calico-vxlan", "calico-vxlan", "vxlan.calico"),
    ("calico-bgp", "calico-bgp", None),
])
def test_other_modes_build_and_discover(mode, expect_mode, dev) -> None:
    """host-gw and calico-vxlan labs pass traffic and discovery derives their mode and subnet map."""
    from tracer.lab import lifecycle

    try:
        plan = lifecycle.up(mode, 2)
        flows = json.loads(_tracer("lab", "traffic", "--json", "--parallel").stdout)
        assert all(f["ok"] for f in flows), [f["label"] for f in flows if not f["ok"]]
        out = json.loads(_tracer("ifaces", "--netns", "trl-node2", "--json").stdout)
        assert out["mode"] == expect_mode
        node1 = plan.nodes[0]
        assert list(out["remote_subnets"].values()) == [node1.ip]
        links = {l["name"]: l for l in out["links"]}
        if dev:
            assert links[dev]["vxlan"]["vni"] == 4096 and links[dev]["vxlan"]["port"] == 4789
        if mode.startswith("calico"):
            cali = [l for l in out["links"] if l["name"].startswith("cali")]
            assert cali and all(l["role"] == "cali" and l["mac"] == "ee:ee:ee:ee:ee:ee" for l in cali)
    finally:
        lifecycle.down()


def test_calico_ipip_says_the_kernel_lacks_ipip() -> None:
    """Without the ipip module, `lab up calico-ipip` is one clear line and exit 2, and nothing is built."""
    from tracer.lab import build

    if build.kernel_has_ipip():
        pytest.skip("this kernel has ipip; the refusal cannot be shown")
    res = _tracer("lab", "up", "calico-ipip", check=False)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "ipip" in res.stderr and "Traceback" not in res.stderr
    assert not [n for n in os.listdir("/run/netns") if n.startswith("trl-node")] if os.path.isdir("/run/netns") \
        else True


def test_down_removes_everything() -> None:
    """`lab down` leaves no trl- namespace and no lab server process."""
    from tracer.lab import lifecycle, netns

    try:
        plan = lifecycle.up("flannel-vxlan", 2)
        pids = list(plan.pids)
        assert pids
    finally:
        lifecycle.down()
    assert netns.ours() == []
    assert not [p for p in pids if netns._running(p)]   # noqa: SLF001 - the module's own liveness check
