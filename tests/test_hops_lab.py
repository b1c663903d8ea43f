"""Hop paths on the lab's real captures (captures/: kernel VXLAN, host-gw, Calico VXLAN; synthesized Calico IPIP).

Expected hops come from how the lab builds each cluster (captures/README.md) and from its traffic.json (which
veth the NetworkPolicy deny sits on): never from tracer's own output.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import numpy as np
import pytest

from tracer.capture.index import load_index
from tracer.cli import main

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
NGINX, TOMCAT, PY_TOMCAT = "10.244.0.2", "10.244.1.2", "10.244.0.3"      # flannel lab addresses (README)
C_NGINX, C_TOMCAT, C_PY_TOMCAT = "10.244.128.2", "10.244.129.2", "10.244.128.3"   # Calico lab addresses

LADDERS = {
    "demo": ["node1/veth", "node1/cni0", "node1/flannel.1", "node1/eth0", "node2/eth0", "node2/flannel.1",
             "node2/cni0", "node2/veth"],
    "host-gw": ["node1/veth", "node1/cni0", "node1/eth0", "node2/eth0", "node2/cni0", "node2/veth"],
    "calico-vxlan": ["node1/cali", "node1/vxlan.calico", "node1/eth0", "node2/eth0", "node2/vxlan.calico",
                     "node2/cali"],
    "calico-ipip": ["node1/cali", "node1/tunl0", "node1/eth0", "node2/eth0", "node2/tunl0", "node2/cali"],
}
ENCAP = {"demo": "vxlan", "host-gw": None, "calico-vxlan": "vxlan", "calico-ipip": "ipip"}
MODE = {"demo": "flannel-vxlan", "host-gw": "flannel-host-gw", "calico-vxlan": "calico-vxlan",
        "calico-ipip": "calico-ipip"}
# Where the denied SYN stops (README): after node2's cni0 (flannel), vxlan.calico or tunl0 (Calico).
DENY_STOP = {"demo": "node2/cni0", "host-gw": "node2/cni0", "calico-vxlan": "node2/vxlan.calico",
             "calico-ipip": "node2/tunl0"}


def lab(name: str) -> tuple[str, str, dict]:
    d = CAPTURES / name
    if not (d / "merged.pcapng").exists():
        pytest.skip(f"captures/{name} not present")
    return str(d / "merged.pcapng"), str(d / "cluster.yaml"), json.loads((d / "traffic.json").read_text())


def run_json(capsys, argv):
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def first_row(path: str, src: str, dst: str, proto: int, *, icmp_type: int | None = None,
              syn: bool = False) -> int:
    """The first index row carrying (inner) src → dst of that protocol: located on the columns, not by tracer's
    hop analysis."""
    ix = load_index([path])
    s, d = int(ipaddress.ip_address(src)), int(ipaddress.ip_address(dst))
    m = (ix["i_src"] == s) & (ix["i_dst"] == d) & (ix["i_proto"] == proto)
    if icmp_type is not None:
        m &= ix["icmp_type"] == icmp_type
    if syn:
        m &= (ix["tcp_flags"] & 0x12) == 0x02
    rows = np.flatnonzero(m)
    assert len(rows), (src, dst, proto)
    return int(rows[0])


def _shape(point: str) -> str:
    """node1/veth507f2c32 → node1/veth (the lab names veths by pod; the ladder checks the kind)."""
    node, _, iface = point.partition("/")
    for stem in ("veth", "cali"):
        if iface.startswith(stem):
            return f"{node}/{stem}"
    return point


@pytest.mark.parametrize("name", list(LADDERS))
def test_cross_node_icmp_ladder(name: str, capsys) -> None:
    """nginx → tomcat echo request: seen at every hop of the CNI's path over both nodes, in order, encapsulated
    only on eth0, TTL down by one per routing node; one clock, so the estimated offset is ~0."""
    path, cluster, traffic = lab(name)
    nginx, tomcat = (C_NGINX, C_TOMCAT) if name.startswith("calico") else (NGINX, TOMCAT)
    row = first_row(path, nginx, tomcat, 1, icmp_type=8)
    out = run_json(capsys, ["path", path, "--packet", str(row + 1), "--json", "--cluster", cluster])
    seen = [h for h in out["hops"] if h["seen"]]
    assert [_shape(h["point"]) for h in seen] == LADDERS[name]
    assert seen[-1]["point"] == f"{traffic['policy']['node']}/{traffic['policy']['iface']}"   # tomcat's own veth
    assert [h["encap"] for h in seen if h["point"].endswith("/eth0")] == [ENCAP[name]] * 2
    assert all(h["encap"] is None for h in seen if not h["point"].endswith("/eth0"))
    assert out["cni"] == MODE[name] and out["dropped_after"] is None
    assert all(d >= 0 for d in (h["delta_us"] for h in seen[1:]))
    assert all(abs(v) < 1e-3 for v in out["clock_offsets"].values())
    assert out["src_pod"].startswith("linux/nginx") and out["dst_pod"].startswith("linux/tomcat")


@pytest.mark.parametrize("name", list(LADDERS))
def test_denied_flow_localised(name: str, capsys) -> None:
    """python/tomcat → linux/tomcat:8080 is dropped by the lab's nft rule on tomcat's host veth: the flow stops
    after node2's cni0 / tunnel device, the next hop is that veth, and the verdict is the policy's deny."""
    path, cluster, traffic = lab(name)
    py_tomcat, tomcat = (C_PY_TOMCAT, C_TOMCAT) if name.startswith("calico") else (PY_TOMCAT, TOMCAT)
    flows = run_json(capsys, ["flows", path, "--json", "--cluster", cluster])
    denied = [f for f in flows if f["src"] == py_tomcat and f["dst"] == tomcat and f["dport"] == 8080]
    assert len(denied) == 1
    flow = denied[0]
    veth = f"{traffic['policy']['node']}/{traffic['policy']['iface']}"
    assert flow["dropped_after"] == DENY_STOP[name]
    assert f"expected next {veth}" in flow["explanation"]
    assert flow["verdict"] == "deny" and "consistent with a NetworkPolicy deny" in flow["explanation"]
    assert flow["src_pod"].startswith("python/tomcat") and flow["dst_pod"].startswith("linux/tomcat")
    assert veth not in flow["points"]
    # The SYN and its retransmission (README), both stopped there; the last one as the capture ended.
    assert flow["packets"] == 2 and flow["dropped_packets"] == 2
    row = first_row(path, py_tomcat, tomcat, 6, syn=True)
    out = run_json(capsys, ["path", path, "--packet", str(row + 1), "--json", "--cluster", cluster])
    assert out["dropped_after"] == DENY_STOP[name] and out["expected_next"] == veth and out["verdict"] == "deny"
    answered = {(f["src"], f["dst"], f["dport"]) for f in flows if f["delivered"]}
    assert (py_tomcat, tomcat, 8080) not in answered


@pytest.mark.parametrize("name", ["demo", "host-gw", "calico-vxlan"])
def test_services_and_dnat(name: str, capsys) -> None:
    """Traffic to a ClusterIP is judged on the backend pod and target port, named by its Service, and the
    rewrite is marked on the hop after node1's netfilter; NodePort flows carry their Service too."""
    path, cluster, _ = lab(name)
    nginx, tomcat = (C_NGINX, C_TOMCAT) if name.startswith("calico") else (NGINX, TOMCAT)
    flows = run_json(capsys, ["flows", path, "--json", "--cluster", cluster])
    via_svc = [f for f in flows if f["service"] == "linux/tomcat"]
    assert len(via_svc) == 1
    f = via_svc[0]
    assert (f["src"], f["dst"], f["dport"], f["proto"], f["verdict"]) == (nginx, tomcat, 8080, "TCP", "allow")
    assert f["delivered"] is True and f["addressed_to"] == "10.96.100.11:8080"
    row = first_row(path, nginx, "10.96.100.11", 6, syn=True)
    out = run_json(capsys, ["path", path, "--packet", str(row + 1), "--json", "--cluster", cluster])
    assert out["service"] == "linux/tomcat"
    nat = [h for h in out["hops"] if h["nat"]]
    assert len(nat) == 1 and nat[0]["node"] == "node1"
    assert f"10.96.100.11:8080 → {tomcat}:8080" in nat[0]["nat"]
    services = {f["service"] for f in flows}
    assert {"linux/nginx", "python/nginx", "kube-system/kube-dns"} <= services   # NodePorts and DNS
    nodeport = [f for f in flows if f["addressed_to"] == "172.31.7.112:30008"]
    assert len(nodeport) == 1 and nodeport[0]["client"].startswith("172.31.7.100:")
    assert nodeport[0]["service"] == "linux/nginx" and nodeport[0]["dst"] == nginx


def test_same_node_is_bridged(capsys) -> None:
    """test → nginx on node1 (flannel): only the two veths; cni0 forwards between ports and is not a missed hop."""
    path, cluster, _ = lab("demo")
    row = first_row(path, "10.244.0.4", NGINX, 1, icmp_type=8)
    out = run_json(capsys, ["path", path, "--packet", str(row + 1), "--json", "--cluster", cluster])
    seen = [h["point"] for h in out["hops"] if h["seen"]]
    assert [_shape(p) for p in seen] == ["node1/veth", "node1/veth"] and seen[0] != seen[1]
    bridge = [h for h in out["hops"] if h["role"] == "bridge"]
    assert len(bridge) == 1 and bridge[0]["captured"] is False
    assert out["dropped_after"] is None and out["verdict"] == "allow"


def test_policy_denies_but_delivered(capsys) -> None:
    """ICMP nginx → tomcat: the policy only admits TCP 8080, yet flannel delivers it (the lab enforces only the
    8080 rule): the mismatch is named."""
    path, cluster, _ = lab("demo")
    flows = run_json(capsys, ["flows", path, "--json", "--cluster", cluster])
    icmp = [f for f in flows if f["proto"] == "ICMP" and f["src"] == NGINX and f["dst"] == TOMCAT][0]
    assert icmp["verdict"] == "deny" and icmp["delivered"] is True
    assert "policy denies but the packets were delivered" in icmp["explanation"]


def test_show_gains_hop_keys(capsys) -> None:
    """tracer show --format jsonl carries the hop keys: the same packet_id at every hop, ordered hop_index."""
    path, cluster, _ = lab("demo")
    assert main(["show", "--format", "jsonl", path, "--cluster", cluster]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    keys = ["node", "role", "packet_id", "hop_index", "hop_count", "src_pod", "dst_pod", "flow_id", "service",
            "verdict", "last_seen"]
    assert all(set(keys) <= set(r) for r in rows)
    req = [r for r in rows if r["icmp_type"] == 8 and (r["inner_src"] or r["src"]) == NGINX
           and (r["inner_dst"] or r["dst"]) == TOMCAT]
    first = [r for r in req if r["packet_id"] == req[0]["packet_id"]]
    assert [r["hop_index"] for r in first] == sorted(r["hop_index"] for r in first)
    assert len(first) == 8 and {r["hop_count"] for r in first} == {10}
    assert [r["role"] for r in first] == ["veth", "bridge", "vxlan-device", "host-eth0", "host-eth0",
                                          "vxlan-device", "bridge", "veth"]
    assert {r["last_seen"] for r in first} == {first[-1]["point"]}
    assert {r["verdict"] for r in first} == {"deny"}
    assert first[0]["src_pod"].startswith("linux/nginx") and first[0]["node"] == "node1"


def test_crosssubnet_keeps_the_tunnel_it_saw(capsys) -> None:
    """--cni crosssubnet on the IPIP capture: the nodes share 172.31.7.0/24, but the packets were seen in
    IP-in-IP, so the path keeps tunl0 (what the wire shows beats the subnet guess)."""
    path, cluster, _ = lab("calico-ipip")
    row = first_row(path, C_NGINX, C_TOMCAT, 1, icmp_type=8)
    out = run_json(capsys, ["path", path, "--packet", str(row + 1), "--json", "--cni", "crosssubnet"])
    assert out["cni"] == "calico-ipip-crosssubnet"
    assert [_shape(h["point"]) for h in out["hops"] if h["seen"]] == LADDERS["calico-ipip"]


def test_show_from_stdin_streams_without_hop_keys() -> None:
    """`tracer show -` keeps streaming (hop keys present but null: they need the whole capture); asking for hops
    with --cni/--cluster reads it all first and fills them."""
    import subprocess
    import sys

    path, _, _ = lab("demo")
    data = Path(path).read_bytes()
    run = lambda *extra: [json.loads(line) for line in subprocess.run(  # noqa: E731
        [sys.executable, "-m", "tracer", "show", "--format", "jsonl", "-", *extra], input=data,
        capture_output=True, check=True).stdout.splitlines()]
    streamed = run()
    assert streamed and {r["packet_id"] for r in streamed} == {None} and "role" in streamed[0]
    full = run("--cni", "vxlan")
    assert len(full) == len(streamed) and sum(r["packet_id"] is not None for r in full) > len(full) // 2


@pytest.mark.parametrize("name", ["demo", "calico-vxlan"])
def test_nodeport_path(name: str, capsys) -> None:
    """client → node2:30008 (linux/nginx on node1): node2's eth0 takes it, DNAT + masquerade on node2, then the
    tunnel to node1 and nginx's interface; the SYN-ACK goes back the same way and leaves node2's eth0 un-NATed."""
    path, cluster, _ = lab(name)
    nginx = C_NGINX if name.startswith("calico") else NGINX
    row = first_row(path, "172.31.7.100", "172.31.7.112", 6, syn=True)
    out = run_json(capsys, ["path", path, "--packet", str(row + 1), "--json", "--cluster", cluster])
    seen = [h for h in out["hops"] if h["seen"]]
    assert seen[0]["point"] == "node2/eth0" and seen[0]["encap"] is None
    assert _shape(seen[-1]["point"]) in ("node1/veth", "node1/cali")
    nat = [h for h in seen if h["nat"]]
    assert len(nat) == 1 and nat[0]["node"] == "node2"
    assert f"172.31.7.112:30008 → {nginx}:80" in nat[0]["nat"] and "172.31.7.100:" in nat[0]["nat"]
    assert out["service"] == "linux/nginx" and out["dropped_after"] is None and out["unplaced"] == []
    reply = first_row(path, "172.31.7.112", "172.31.7.100", 6)
    back = run_json(capsys, ["path", path, "--packet", str(reply + 1), "--json", "--cluster", cluster])
    seen_back = [h for h in back["hops"] if h["seen"]]
    assert seen_back[-1]["point"] == "node2/eth0" and seen_back[-1]["nat"]
    assert back["dropped_after"] is None and back["unplaced"] == []
