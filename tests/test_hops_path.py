"""`tracer path` and `tracer flows` on multi-point captures: hop ladders, clock skew, drop localisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hops_scenarios import (CALI_A, CALI_B, POD_A, POD_B, Scenario, calico_ipip_packet,
                                  flannel_vxlan_packet, icmp_ping, tcp_conversation)
from tracer.cli import main


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]):
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture()
def flannel_two_nodes(tmp_path: Path) -> list[str]:
    """Two flannel VXLAN nodes, node2's clock 3 ms ahead: one good connection, one whose SYNs (three tries, a
    second apart) die on node2 after cni0 (a firewall rule on the server pod's veth), then another good one."""
    sc = Scenario(skew_ns={"node2": 3_000_000})
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B)
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40200, ipid_a=2000,
                     drop_syn_after="node2/cni0", syn_tries=3)
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40300, ipid_a=3000, ipid_b=4000)
    return sc.write(tmp_path)


FLANNEL_LADDER = ["node1/veth1a2b3c4d", "node1/cni0", "node1/flannel.1", "node1/eth0",
                  "node2/eth0", "node2/flannel.1", "node2/cni0", "node2/veth9f8e7d6c"]


def test_path_across_two_nodes_with_skew(flannel_two_nodes: list[str], capsys) -> None:
    """The SYN's ladder is the flannel VXLAN path over both nodes' captures; node2's 3 ms clock lead is estimated
    and removed, so the wire hop takes the 7 µs the scenario gave every hop, not 3 ms."""
    out = run_json(capsys, ["path", *flannel_two_nodes, "--packet", "1", "--json"])
    seen = [h for h in out["hops"] if h["seen"]]
    assert [h["point"] for h in seen] == FLANNEL_LADDER
    assert [h["role"] for h in out["hops"]] == ["pod-eth0", "veth", "bridge", "vxlan-device", "host-eth0",
                                                "host-eth0", "vxlan-device", "bridge", "veth", "pod-eth0"]
    assert out["clock_offsets"] == {"node1": 0.0, "node2": pytest.approx(0.003)}
    assert all(h["delta_us"] == pytest.approx(7.0) for h in seen[1:])
    assert [h["encap"] for h in seen] == [None, None, None, "vxlan", "vxlan", None, None, None]
    assert [h["ttl"] for h in seen] == [64, 64, 63, 63, 63, 63, 62, 62]
    assert out["dropped_after"] is None and out["packet_id"] is not None
    assert set(out) >= {"hops", "packet_id", "dropped_after", "clock_offsets", "verdict", "explanation"}
    assert set(out["hops"][0]) >= {"index", "point", "role", "node", "seen", "no", "ts", "delta_us", "encap", "ttl"}


def test_reply_path_runs_the_other_way(flannel_two_nodes: list[str], capsys) -> None:
    """The SYN-ACK (the 9th record written on node2's veth… found by its number) walks node2 → node1."""
    flows = run_json(capsys, ["flows", *flannel_two_nodes, "--json"])
    first = flows[0]
    # Packet numbers follow merged time order: the first packet seen on node2's veth after the SYN is the SYN-ACK.
    out = run_json(capsys, ["path", *flannel_two_nodes, "--packet", str(first["first_no"]), "--json"])
    syn_id = out["packet_id"]
    for no in range(2, 40):
        cand = run_json(capsys, ["path", *flannel_two_nodes, "--packet", str(no), "--json"])
        if cand["packet_id"] != syn_id:
            break
    seen = [h["point"] for h in cand["hops"] if h["seen"]]
    assert seen == FLANNEL_LADDER[::-1]


def test_firewall_drop_on_destination_veth(flannel_two_nodes: list[str], capsys) -> None:
    """SYNs that a rule on the server's veth drops: the flow is localised after node2/cni0, next the veth."""
    flows = run_json(capsys, ["flows", *flannel_two_nodes, "--json"])
    by_port = {f["sport"]: f for f in flows}
    assert set(by_port) == {40123, 40200, 40300}
    dead = by_port[40200]
    assert dead["dropped_after"] == "node2/cni0"
    assert "expected next node2/veth9f8e7d6c" in dead["explanation"]
    assert dead["packets"] == 3 and dead["src"] == POD_A.ip and dead["dst"] == POD_B.ip and dead["dport"] == 8080
    assert dead["proto"] == "TCP"
    assert by_port[40123]["dropped_after"] is None and by_port[40300]["dropped_after"] is None
    assert sorted(by_port[40123]["points"]) == sorted(FLANNEL_LADDER)
    # The per-packet view says the same for one of the dropped SYNs.
    out = run_json(capsys, ["path", *flannel_two_nodes, "--packet", str(dead["first_no"]), "--json"])
    assert out["dropped_after"] == "node2/cni0"
    veth = [h for h in out["hops"] if h["point"] == "node2/veth9f8e7d6c"][0]
    assert veth["seen"] is False


def test_calico_ipip_synthesized(tmp_path: Path, capsys) -> None:
    """Calico IPIP (synthesized: this kernel has no ipip module): cali → tunl0 (raw IP) → eth0 (protocol 4) →
    eth0 → tunl0 → cali, detected from the traffic."""
    sc = Scenario()
    icmp_ping(sc, calico_ipip_packet, CALI_A, CALI_B, count=2)
    files = sc.write(tmp_path)
    out = run_json(capsys, ["path", *files, "--packet", "1", "--json"])
    assert [h["role"] for h in out["hops"]] == ["pod-eth0", "cali", "ipip-device", "host-eth0", "host-eth0",
                                                "ipip-device", "cali", "pod-eth0"]
    seen = [h["point"] for h in out["hops"] if h["seen"]]
    assert seen == ["node1/cali1234567890a", "node1/tunl0", "node1/eth0", "node2/eth0", "node2/tunl0",
                    "node2/calibcdef012345"]
    assert [h["encap"] for h in out["hops"] if h["seen"]] == [None, None, "ipip", "ipip", None, None]
    flows = run_json(capsys, ["flows", *files, "--json"])
    assert len(flows) == 1 and flows[0]["proto"] == "ICMP" and flows[0]["packets"] == 4
    assert flows[0]["src"] == CALI_A.ip and flows[0]["dropped_after"] is None


def test_cni_override(flannel_two_nodes: list[str], capsys) -> None:
    """--cni host-gw forces the model: no flannel.1 hop expected, so those observations are left unplaced."""
    out = run_json(capsys, ["path", *flannel_two_nodes, "--packet", "1", "--json", "--cni", "host-gw"])
    assert "vxlan-device" not in [h["role"] for h in out["hops"]]
    assert {u["point"] for u in out["unplaced"]} == {"node1/flannel.1", "node2/flannel.1"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--packet", "0"], "no packet 0"),
    (["--packet", "9999"], "no packet 9999"),
    (["--packet", "1", "--cni", "weave"], "unknown CNI mode"),
])
def test_path_errors_are_one_line(flannel_two_nodes: list[str], capsys, argv: list[str], message: str) -> None:
    assert main(["path", *flannel_two_nodes, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tracer: ") and message in err[0]


def test_text_output_is_inert(tmp_path: Path, capsys) -> None:
    """An interface name with a terminal escape reaches the terminal as a harmless stand-in."""
    sc = Scenario()
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B)
    files = sc.write(tmp_path)
    evil = [f + "@node1/\x1b[31meth9" if f.endswith("node1__eth0.pcap") else f for f in files]
    assert main(["path", *evil, "--packet", "1"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "eth9" in out


def test_generator_hops_capture(shared_dir: Path, tmp_path: Path, capsys) -> None:
    """gen_overlay_pcap --hops: each VXLAN packet is recorded at veth → cni0 → flannel.1 → eth0 (its docstring);
    the ladder shows exactly those four, in order, on the sending node, encapsulated only on eth0."""
    import subprocess
    import sys

    out_file = tmp_path / "hops.pcapng"
    subprocess.run([sys.executable, str(shared_dir / "tools" / "gen_overlay_pcap.py"), "400", str(out_file),
                    "--pcapng", "--hops"], check=True, capture_output=True)
    from tracer.capture.index import load_index

    index = load_index([str(out_file)])
    names = [index.sources[s].iface for s in index["source"].tolist()]
    checked = 0
    for row, name in enumerate(names[:-4]):
        if name.startswith("veth") and names[row + 2] == "flannel.1":
            out = run_json(capsys, ["path", str(out_file), "--packet", str(row + 1), "--json"])
            seen = [h for h in out["hops"] if h["seen"]]
            assert [h["point"] for h in seen] == [name, "cni0", "flannel.1", "eth0"]
            assert [h["no"] for h in seen] == [row + 1, row + 2, row + 3, row + 4]
            assert [h["encap"] for h in seen] == [None, None, None, "vxlan"]
            assert out["dropped_after"] is None
            checked += 1
            if checked == 3:
                break
    assert checked == 3


@pytest.mark.parametrize(("name", "mode", "encap"), [
    ("vxlan-8472-icmp-arp-vni100-tcpdump.pcap", "flannel-vxlan", "vxlan"),
    ("ipip-icmp-ping-suricata.pcap", "calico-ipip", "ipip"),
])
def test_single_capture_inference(public_captures: Path, capsys, name: str, mode: str, encap: str) -> None:
    """One unnamed capture of encapsulated traffic: the point is inferred to be a host's underlay (eth0), the
    mode comes from the traffic, and the inner pod addresses are placed on the outer (node) addresses."""
    path = str(public_captures / name)
    out = run_json(capsys, ["path", path, "--packet", "1", "--json"])
    seen = [h for h in out["hops"] if h["seen"]]
    assert len(seen) == 1
    assert seen[0]["role"] == "host-eth0" and seen[0]["inferred"] is True and seen[0]["encap"] == encap
    assert seen[0]["point"] == name
    assert out["cni"] == mode
    flows = run_json(capsys, ["flows", path, "--json"])
    icmp = [f for f in flows if f["proto"] == "ICMP"]
    assert icmp and icmp[0]["dropped_after"] is None


def test_single_raw_tunnel_capture(public_captures: Path, capsys) -> None:
    """A capture taken on a Linux ipip device (raw IP, no link header; what tcpdump -i tunl0 gives): inferred to
    be the tunnel device, and the mode Calico IPIP follows from it."""
    path = public_captures / "no-license" / "linux-ipip-tunl-rawip-kaorimatz.pcap"
    if not path.exists():
        pytest.skip("no-license corpus not present")
    out = run_json(capsys, ["path", str(path), "--packet", "1", "--json"])
    seen = [h for h in out["hops"] if h["seen"]]
    assert [(h["role"], h["inferred"]) for h in seen] == [("ipip-device", True)]
    assert out["cni"] == "calico-ipip"


def test_flannel_udp_backend(tmp_path: Path, capsys) -> None:
    """flannel's UDP backend: the pod packet on flannel0 (a TUN device: raw IP) and the same packet inside UDP 8285
    on eth0 are one packet; the mode is detected from the traffic and the wire hop says udp."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import Ether

    from tests.hops_scenarios import NODE_IP, NODE_MAC

    sc = Scenario()
    for seq in (1, 2):
        inner = IP(src="10.244.1.5", dst="10.244.2.7", ttl=63, id=40 + seq) / ICMP(type=8, id=9, seq=seq) / (b"x" * 16)
        sc.gap()
        sc.add("node1/flannel0", bytes(inner), 101)
        sc.add("node1/eth0", bytes(Ether(src=NODE_MAC["node1"], dst=NODE_MAC["node2"]) /
                                   IP(src=NODE_IP["node1"], dst=NODE_IP["node2"], id=seq) /
                                   UDP(sport=8285, dport=8285) / inner))
    files = sc.write(tmp_path)
    out = run_json(capsys, ["path", *files, "--packet", "1", "--json"])
    assert out["cni"] == "flannel-udp"
    seen = [(h["point"], h["role"], h["encap"]) for h in out["hops"] if h["seen"]]
    assert seen == [("node1/flannel0", "tun-device", None), ("node1/eth0", "host-eth0", "udp")]
    flows = run_json(capsys, ["flows", *files, "--json"])
    assert [(f["src"], f["dst"], f["proto"], f["packets"]) for f in flows] == [("10.244.1.5", "10.244.2.7", "ICMP", 2)]


def test_pod_capture_points(tmp_path: Path, capsys) -> None:
    """Captures inside the pods (pod:NS/NAME) are the first and last hops of the ladder; the cluster places the
    pods on their nodes, so the whole path is named."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    from tests.hops_scenarios import CNI0_MAC, write_cluster

    sc = Scenario()

    def with_pods(sc, src, dst, l4, *, ipid, **kw):
        # The pod's own eth0 sees its packet before its host veth (same frame), and the peer after its veth.
        frame = bytes(Ether(src=src.mac, dst=CNI0_MAC[src.node]) / IP(src=src.ip, dst=dst.ip, ttl=64, id=ipid,
                                                                      flags="DF") / l4.copy())
        sc.gap()
        sc.add(f"pod:default/{src.name}", frame)
        flannel_vxlan_packet(sc, src, dst, l4, ipid=ipid, **kw)
        last = bytes(Ether(src=CNI0_MAC[dst.node], dst=dst.mac) / IP(src=src.ip, dst=dst.ip, ttl=62, id=ipid,
                                                                     flags="DF") / l4.copy())
        sc.add(f"pod:default/{dst.name}", last)

    with_pods(sc, POD_A, POD_B, TCP(sport=40999, dport=8080, flags="S", seq=77), ipid=5)
    with_pods(sc, POD_B, POD_A, TCP(sport=8080, dport=40999, flags="SA", seq=99, ack=78), ipid=6)
    files = sc.write(tmp_path)
    cluster = write_cluster(tmp_path / "cluster.yaml", [POD_A, POD_B])
    out = run_json(capsys, ["path", *files, "--packet", "1", "--json", "--cluster", cluster])
    seen = [(h["point"], h["role"], h["node"]) for h in out["hops"] if h["seen"]]
    assert seen[0] == ("pod:default/client", "pod-eth0", "node1")
    assert seen[-1] == ("pod:default/server", "pod-eth0", "node2")
    assert len(seen) == 10 and all(h["seen"] for h in out["hops"])


def test_large_negative_skew(tmp_path: Path, capsys) -> None:
    """node2's clock 4 s behind: the packets still pair up across nodes, the offset is estimated as -4 s and the
    ladder keeps its hop order with 7 µs per hop."""
    sc = Scenario(skew_ns={"node2": -4_000_000_000})
    for k in range(3):
        tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40000 + k, ipid_a=1000 * k + 1,
                         ipid_b=1000 * k + 500)
        sc.gap(300_000_000)
    files = sc.write(tmp_path)
    flows = run_json(capsys, ["flows", *files, "--json"])
    assert [f["packets"] for f in flows] == [8, 8, 8]
    syn = [f for f in flows if f["sport"] == 40000][0]["first_no"]
    out = run_json(capsys, ["path", *files, "--packet", str(syn), "--json"])
    assert out["clock_offsets"] == {"node1": 0.0, "node2": pytest.approx(-4.0)}
    seen = [h for h in out["hops"] if h["seen"]]
    assert [h["point"] for h in seen] == FLANNEL_LADDER
    assert all(h["delta_us"] == pytest.approx(7.0) for h in seen[1:])


def test_single_mixed_capture_places_every_packet(shared_dir: Path, tmp_path: Path) -> None:
    """One unnamed pcap holding encapsulated and same-node traffic (gen_overlay_pcap without --pcapng): the point
    is inferred to be the underlay, yet every IP packet is placed on its path somewhere, none unplaced."""
    import subprocess
    import sys

    from tracer.capture.index import load_index
    from tracer.hops.analysis import analyze

    out = tmp_path / "mixed.pcap"
    subprocess.run([sys.executable, str(shared_dir / "tools" / "gen_overlay_pcap.py"), "1500", str(out)],
                   check=True, capture_output=True)
    analysis = analyze(load_index([str(out)]))
    cols = analysis.columns
    ip = cols["packet_id"] >= 0
    assert ip.sum() > 1000
    assert (cols["hop_index"][ip] >= 1).all()
    assert analysis.points[0].inferred and analysis.points[0].role == "host-eth0"
    assert not cols["dropped"].any()


def test_calico_bgp_detected_from_interfaces(tmp_path: Path, capsys) -> None:
    """Calico in BGP mode: no tunnel device, pod packets routed plainly over eth0 between the cali interfaces; the
    mode follows from cali* points without tunl0/vxlan.calico, and the ladder has no tunnel hop."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether

    from tests.hops_scenarios import CALI_A, CALI_B, NODE_MAC

    sc = Scenario()
    for seq in (1, 2):
        for a, b, ident in ((CALI_A, CALI_B, 300 + seq), (CALI_B, CALI_A, 700 + seq)):
            icmp = ICMP(type=8 if a is CALI_A else 0, id=5, seq=seq) / b"bgp"
            sc.gap()
            sc.add(f"{a.node}/{a.iface}", bytes(Ether(src=a.mac, dst="ee:ee:ee:ee:ee:ee") /
                                                IP(src=a.ip, dst=b.ip, ttl=64, id=ident) / icmp))
            wire = bytes(Ether(src=NODE_MAC[a.node], dst=NODE_MAC[b.node]) / IP(src=a.ip, dst=b.ip, ttl=63, id=ident)
                         / icmp)
            sc.add(f"{a.node}/eth0", wire)
            sc.add(f"{b.node}/eth0", wire)
            sc.add(f"{b.node}/{b.iface}", bytes(Ether(src="ee:ee:ee:ee:ee:ee", dst=b.mac) /
                                                IP(src=a.ip, dst=b.ip, ttl=62, id=ident) / icmp))
    files = sc.write(tmp_path)
    out = run_json(capsys, ["path", *files, "--packet", "1", "--json"])
    assert out["cni"] == "calico-bgp"
    assert [h["role"] for h in out["hops"]] == ["pod-eth0", "cali", "host-eth0", "host-eth0", "cali", "pod-eth0"]
    assert [h["point"] for h in out["hops"] if h["seen"]] == [
        "node1/cali1234567890a", "node1/eth0", "node2/eth0", "node2/calibcdef012345"]
    flows = run_json(capsys, ["flows", *files, "--json"])
    assert len(flows) == 1 and flows[0]["packets"] == 4 and flows[0]["delivered"] is True


def test_two_unnamed_node_captures(flannel_two_nodes: list[str], tmp_path: Path, capsys) -> None:
    """Two unnamed files (one per node's eth0): each stands for its own machine, so a packet seen in both is
    placed on the sender's and the receiver's eth0; reaching the receiver's eth0 is not called delivered."""
    import shutil

    a = tmp_path / "a.pcap"
    b = tmp_path / "b.pcap"
    shutil.copy([f for f in flannel_two_nodes if f.endswith("node1__eth0.pcap")][0], a)
    shutil.copy([f for f in flannel_two_nodes if f.endswith("node2__eth0.pcap")][0], b)
    out = run_json(capsys, ["path", str(a), str(b), "--packet", "1", "--json"])
    seen = [(h["point"], h["index"]) for h in out["hops"] if h["seen"]]
    assert seen == [("a.pcap", 5), ("b.pcap", 6)]
    flows = run_json(capsys, ["flows", str(a), str(b), "--json"])
    dead = [f for f in flows if f["sport"] == 40200][0]
    assert dead["delivered"] is None and dead["dropped_after"] is None


def test_real_flannel_nodeport_capture(public_captures: Path, capsys) -> None:
    """A real flannel capture on a node's eth0 (unlicensed, read from ../shared only): the NodePort client packet
    and its VXLAN-encapsulated continuation after DNAT + masquerade are one packet, on the same interface twice."""
    path = public_captures / "no-license" / "flannel-vxlan-8472-nodeport-vni1-wz1st.pcap"
    if not path.exists():
        pytest.skip("no-license corpus not present")
    out = run_json(capsys, ["path", str(path), "--packet", "1", "--json"])
    seen = [h for h in out["hops"] if h["seen"]]
    assert [(h["no"], h["role"], h["encap"]) for h in seen] == [(1, "host-eth0", None), (2, "host-eth0", "vxlan")]
    assert "192.168.2.100:32150 →" in seen[1]["nat"] and "10.244.1.25:80" in seen[1]["nat"]
    flows = run_json(capsys, ["flows", str(path), "--json"])
    nodeport = [f for f in flows if f["addressed_to"] == "192.168.2.100:32150"]
    assert nodeport and all(f["dst"] == "10.244.1.25" and f["dport"] == 80 for f in nodeport)
