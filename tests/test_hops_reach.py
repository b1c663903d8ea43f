"""Observed vs policy: verdict joined with where packets died, and the pod × pod reach matrix with mismatches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hops_scenarios import (POD_A, POD_B, Scenario, deny_ingress_policy, flannel_vxlan_packet,
                                  tcp_conversation, write_cluster)
from tracer.cli import main
from tracer.hops.reach import ALLOWS_BUT_DIES, DENIES_BUT_DELIVERED

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def run_json(capsys, argv):
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture()
def dying_flow(tmp_path: Path) -> list[str]:
    """client → server:8080 whose SYNs die after node2/cni0 (a rule on the server's veth), then one that works."""
    sc = Scenario()
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40200, ipid_a=2000,
                     drop_syn_after="node2/cni0", syn_tries=2)
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40300, dport=9090, ipid_a=3000, ipid_b=4000)
    return sc.write(tmp_path)


def test_policy_allows_but_the_datapath_lost_it(dying_flow: list[str], tmp_path: Path, capsys) -> None:
    """No policy isolates the server: the drop is the datapath's, and the hint names the hop that missed it."""
    cluster = write_cluster(tmp_path / "cluster.yaml", [POD_A, POD_B])
    flows = run_json(capsys, ["flows", *dying_flow, "--json", "--cluster", cluster])
    dead = [f for f in flows if f["dport"] == 8080][0]
    assert dead["verdict"] == "allow" and dead["dropped_after"] == "node2/cni0"
    assert "policy allows: the datapath lost it" in dead["explanation"]
    assert "filter on the veth" in dead["explanation"]
    assert (dead["src_pod"], dead["dst_pod"]) == ("default/client", "default/server")
    matrix = run_json(capsys, ["reach", *dying_flow, "--json", "--cluster", cluster])
    assert matrix["pods"] == ["default/client", "default/server"]
    cell = [c for c in matrix["cells"] if (c["src"], c["dst"]) == ("default/client", "default/server")][0]
    assert cell["policy"] == "allow" and cell["observed"] == "dropped" and cell["mismatch"] == ALLOWS_BUT_DIES
    assert cell["dropped_after"] == "node2/cni0"
    assert [c["src"] for c in matrix["mismatches"]] == ["default/client"]
    back = [c for c in matrix["cells"] if (c["src"], c["dst"]) == ("default/server", "default/client")][0]
    assert back["observed"] == "not observed" and back["mismatch"] is None


def test_deny_consistent_with_the_drop(dying_flow: list[str], tmp_path: Path, capsys) -> None:
    """A policy isolating the server for ingress explains the drop at its veth: deny, enforced on the destination
    node; the replies of the allowed… none here; the other connection (9090) is denied too, yet delivered."""
    cluster = write_cluster(tmp_path / "cluster.yaml", [POD_A, POD_B], policies=[deny_ingress_policy("server")])
    flows = run_json(capsys, ["flows", *dying_flow, "--json", "--cluster", cluster])
    dead = [f for f in flows if f["dport"] == 8080][0]
    assert dead["verdict"] == "deny"
    assert ("consistent with a NetworkPolicy deny (ingress, enforced on the destination node node2 by deny-server)"
            in dead["explanation"])
    leak = [f for f in flows if f["dport"] == 9090][0]
    assert leak["verdict"] == "deny" and leak["delivered"] is True
    matrix = run_json(capsys, ["reach", *dying_flow, "--json", "--cluster", cluster])
    cell = [c for c in matrix["cells"] if (c["src"], c["dst"]) == ("default/client", "default/server")][0]
    assert cell["policy"] == "deny" and cell["mismatch"] == DENIES_BUT_DELIVERED
    assert cell["ports"] == ["TCP/8080", "TCP/9090"]


def test_replies_of_allowed_connection_are_allowed(tmp_path: Path, capsys) -> None:
    """NetworkPolicy is stateful: the server's SYN-ACK is allowed because the client's connection is, even though
    a policy isolates the client for ingress."""
    sc = Scenario()
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B)
    files = sc.write(tmp_path)
    cluster = write_cluster(tmp_path / "cluster.yaml", [POD_A, POD_B], policies=[deny_ingress_policy("client")])
    flows = run_json(capsys, ["flows", *files, "--json", "--cluster", cluster])
    assert len(flows) == 1 and flows[0]["verdict"] == "allow" and flows[0]["src"] == POD_A.ip
    assert main(["show", "--format", "jsonl", *files, "--cluster", cluster]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    replies = [r for r in rows if r["src"] == POD_B.ip or r["inner_src"] == POD_B.ip]
    assert replies and {r["verdict"] for r in replies} == {"allow"}
    synack = [r for r in replies if r["tcp_flags"] == "SA"][0]
    out = run_json(capsys, ["path", *files, "--packet", str(synack["no"]), "--json", "--cluster", cluster])
    assert out["verdict"] == "allow" and "reply of an allowed connection" in out["explanation"]


def test_reach_on_the_lab(capsys) -> None:
    """The lab (captures/demo): nginx → tomcat ICMP is denied by policy yet delivered (flannel does not enforce
    it; the lab only drops TCP 8080 from python); python/tomcat → linux/tomcat is denied and dropped at node2."""
    path, cluster = CAPTURES / "demo" / "merged.pcapng", CAPTURES / "demo" / "cluster.yaml"
    if not path.exists():
        pytest.skip("captures/demo not present")
    matrix = run_json(capsys, ["reach", str(path), "--json", "--cluster", str(cluster)])
    cells = {(c["src"].split("-")[0], c["dst"].split("-")[0]): c for c in matrix["cells"]}
    bad = cells[("python/tomcat", "linux/tomcat")]
    assert bad["policy"] == "deny" and bad["observed"] == "dropped" and bad["mismatch"] is None
    assert bad["dropped_after"] == "node2/cni0"
    leak = cells[("linux/nginx", "linux/tomcat")]
    assert leak["policy"] == "mixed" and leak["mismatch"] == DENIES_BUT_DELIVERED and "ICMP" in leak["explanation"]
    ok = cells[("default/test", "linux/nginx")]
    assert ok["policy"] == "allow" and ok["observed"] == "delivered" and ok["mismatch"] is None
    assert cells[("default/test", "python/tomcat")]["observed"] == "not observed"
    assert main(["reach", str(path), "--cluster", str(cluster)]) == 0
    text = capsys.readouterr().out
    assert "1 mismatch:" in text and DENIES_BUT_DELIVERED in text


def test_reach_needs_a_cluster(dying_flow: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["reach", *dying_flow])
    assert exc.value.code == 2


def test_bad_cluster_is_one_line(dying_flow: list[str], tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: [1, 2\n")
    assert main(["flows", *dying_flow, "--cluster", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tracer: ")


@pytest.mark.parametrize(("drop_after", "payload", "expect_next", "hints"), [
    ("node1/eth0", 100, "node2/eth0", ["FDB", "8472"]),                    # lost on the wire between nodes
    ("node1/eth0", 1440, "node2/eth0", ["FDB", "MTU", "1500"]),           # and too big once encapsulated
    ("node2/eth0", 100, "node2/flannel.1", ["decapsulated", "rp_filter"]),
    ("node1/cni0", 100, "node1/flannel.1", ["route", "FORWARD"]),
])
def test_datapath_hints_per_hop(tmp_path: Path, capsys, drop_after: str, payload: int, expect_next: str,
                                hints: list[str]) -> None:
    """Allowed packets that stop early get a hint for the hop that missed them: VXLAN FDB/route between nodes,
    MTU for encapsulated sizes, decapsulation and rp_filter on the receiving tunnel, routes/FORWARD on the sender."""
    from scapy.layers.inet import TCP

    sc = Scenario()
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40500, ipid_a=500, ipid_b=600)
    for k in range(2):
        flannel_vxlan_packet(sc, POD_A, POD_B, TCP(sport=41000, dport=8080, flags="PA", seq=7 + k) / (b"x" * payload),
                             ipid=900 + k, drop_after=drop_after)
        sc.gap(200_000_000)
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40600, ipid_a=700, ipid_b=800)
    files = sc.write(tmp_path)
    cluster = write_cluster(tmp_path / "cluster.yaml", [POD_A, POD_B])
    flows = run_json(capsys, ["flows", *files, "--json", "--cluster", cluster])
    dead = [f for f in flows if f["sport"] == 41000][0]
    assert dead["dropped_after"] == drop_after and dead["verdict"] == "allow"
    assert f"expected next {expect_next}" in dead["explanation"]
    for word in hints:
        assert word in dead["explanation"], (word, dead["explanation"])
    if payload < 1000:
        assert "MTU" not in dead["explanation"]


def test_egress_deny_but_it_left_the_node(tmp_path: Path, capsys) -> None:
    """An egress deny is enforced on the source node: a packet that died on the destination node is not explained
    by it, and the explanation says to look at the datapath too."""
    sc = Scenario()
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40200, ipid_a=2000,
                     drop_syn_after="node2/cni0", syn_tries=2)
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40300, dport=9090, ipid_a=3000, ipid_b=4000)
    files = sc.write(tmp_path)
    egress = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "client-no-egress", "namespace": "default"},
              "spec": {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]}}
    cluster = write_cluster(tmp_path / "cluster.yaml", [POD_A, POD_B], policies=[egress])
    flows = run_json(capsys, ["flows", *files, "--json", "--cluster", cluster])
    dead = [f for f in flows if f["dport"] == 8080][0]
    assert dead["verdict"] == "deny"
    assert "egress, enforced on the source node node1 by client-no-egress" in dead["explanation"]
    assert "it left the source node" in dead["explanation"]


def test_gso_aggregate_is_not_a_drop(tmp_path: Path, capsys) -> None:
    """tcpdump on a veth sees a 20 KB GSO super-packet that eth0 carries as segments: its absence further on is
    not a drop."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    from tests.hops_scenarios import CNI0_MAC

    sc = Scenario()
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40500, ipid_a=500, ipid_b=600)
    big = Ether(src=POD_A.mac, dst=CNI0_MAC["node1"]) / IP(src=POD_A.ip, dst=POD_B.ip, id=4000, flags="DF") / \
        TCP(sport=40500, dport=8080, flags="PA", seq=1020, ack=5021) / (b"y" * 20000)
    sc.gap()
    sc.add(f"node1/{POD_A.iface}", bytes(big))
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40600, ipid_a=700, ipid_b=800)
    files = sc.write(tmp_path)
    flows = run_json(capsys, ["flows", *files, "--json"])
    assert all(f["dropped_after"] is None for f in flows)
    assert all(f["dropped_packets"] == 0 for f in flows)


def test_pmtu_icmp_named_for_the_dropped_flow(tmp_path: Path, capsys) -> None:
    """Big packets die between the nodes and the sender got an ICMP 'fragmentation needed' (MTU 1450): the flow
    says so, with the MTU read from the ICMP header."""
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.l2 import Ether

    from tests.hops_scenarios import CNI0_MAC

    sc = Scenario()
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40500, ipid_a=500, ipid_b=600)
    big = TCP(sport=41000, dport=8080, flags="PA", seq=7) / (b"x" * 1440)
    for k in range(2):
        flannel_vxlan_packet(sc, POD_A, POD_B, big, ipid=900 + k, drop_after="node1/eth0")
        quoted = IP(src=POD_A.ip, dst=POD_B.ip, id=900 + k) / TCP(sport=41000, dport=8080, seq=7)
        icmp = Ether(src=CNI0_MAC["node1"], dst=POD_A.mac) / IP(src="10.244.1.1", dst=POD_A.ip, id=77 + k) / \
            ICMP(type=3, code=4, nexthopmtu=1450) / bytes(quoted)[:28]
        sc.add(f"node1/{POD_A.iface}", bytes(icmp))
        sc.gap(200_000_000)
    tcp_conversation(sc, flannel_vxlan_packet, POD_A, POD_B, sport=40600, ipid_a=700, ipid_b=800)
    files = sc.write(tmp_path)
    flows = run_json(capsys, ["flows", *files, "--json"])
    dead = [f for f in flows if f["sport"] == 41000][0]
    assert dead["dropped_after"] == "node1/eth0"
    assert "fragmentation needed" in dead["explanation"] and "MTU 1450" in dead["explanation"]
    assert "10.244.1.1" in dead["explanation"]
