"""Multi-point capture scenarios for the hop tests, built with scapy in ``tmp_path`` (one pcap per capture point).

A scenario is two nodes with one pod each, and a list of logical packets; every packet is written at each
capture point of the CNI's path (``NODE__IFACE.pcap``, the capture core's naming), with the per-hop changes the
kernel makes: MAC rewrite, TTL decrement on routing, encapsulation on the tunnel, kube-proxy DNAT on the
client's node. ``drop_after`` stops chosen packets after a point (a firewall rule), ``skew_ns`` shifts one node's
clock. Nothing here is tracer code: the expected answers come from how the scenario is built.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

NODE_IP = {"node1": "192.168.50.11", "node2": "192.168.50.12"}
NODE_MAC = {"node1": "02:00:00:00:01:01", "node2": "02:00:00:00:02:01"}
VTEP_MAC = {"node1": "5a:00:00:00:01:01", "node2": "5a:00:00:00:02:01"}
CNI0_MAC = {"node1": "e6:00:00:00:01:01", "node2": "e6:00:00:00:02:01"}


@dataclass
class Pod:
    name: str
    ip: str
    node: str
    iface: str            # host side: vethXXXX or caliXXXX

    @property
    def mac(self) -> str:
        return "0a:58:" + ":".join(f"{int(x):02x}" for x in self.ip.split("."))


POD_A = Pod("client", "10.244.1.5", "node1", "veth1a2b3c4d")
POD_B = Pod("server", "10.244.2.7", "node2", "veth9f8e7d6c")
CALI_A = Pod("client", "10.244.101.5", "node1", "cali1234567890a")
CALI_B = Pod("server", "10.244.202.7", "node2", "calibcdef012345")


@dataclass
class Scenario:
    """Records per capture point; ``write`` puts them in ``NODE__IFACE.pcap`` files (RAW links for tunl0)."""

    records: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    linktype: dict[str, int] = field(default_factory=dict)
    now: int = 1_700_000_000_000_000_000
    skew_ns: dict[str, int] = field(default_factory=dict)

    def add(self, point: str, frame: bytes, linktype: int = 1) -> None:
        node = point.split("/")[0]
        self.now += 7_000   # 7 µs per hop
        self.records.setdefault(point, []).append((self.now + self.skew_ns.get(node, 0), frame))
        self.linktype[point] = linktype

    def gap(self, ns: int = 500_000) -> None:
        self.now += ns

    def write(self, directory: Path) -> list[str]:
        paths = []
        for point, recs in self.records.items():
            node, iface = point.split("/")
            path = directory / f"{node}__{iface}.pcap"
            name = str(path)
            if point.startswith("pod:"):   # a pod's own eth0: named on the command line (FILE@pod:NS/NAME)
                path = directory / f"pod-{node[4:]}-{iface}.pcap"
                name = f"{path}@{point}"
            # Nanosecond pcap (magic a1b23c4d), written directly: the format is four fields per record.
            out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, self.linktype[point])]
            for ts, frame in recs:
                out.append(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(frame), len(frame)) + frame)
            path.write_bytes(b"".join(out))
            paths.append(name)
        return sorted(paths)


def flannel_vxlan_packet(sc: Scenario, src: Pod, dst: Pod, l4, *, ipid: int, drop_after: str | None = None,
                         dnat_from: tuple[str, int] | None = None, unnat_to: tuple[str, int] | None = None) -> None:
    """One pod-to-pod packet through flannel VXLAN, recorded at every hop until ``drop_after``.

    ``dnat_from=(clusterIP, port)``: the client sent it to a Service; the client node's veth and cni0 see the
    Service address, everything after netfilter the backend. ``unnat_to``: a reply that the client node
    un-DNATs to the Service address before it reaches cni0 and the client's veth.
    """
    def ip_pkt(ttl: int, *, pre_nat: bool = False, post_unnat: bool = False):
        sip, dip = src.ip, dst.ip
        layer = l4.copy()
        if pre_nat and dnat_from:
            dip = dnat_from[0]
            layer.dport = dnat_from[1]
        if post_unnat and unnat_to:
            sip = unnat_to[0]
            layer.sport = unnat_to[1]
        return IP(src=sip, dst=dip, ttl=ttl, id=ipid, flags="DF") / layer

    hops = [
        (f"{src.node}/{src.iface}", lambda: Ether(src=src.mac, dst=CNI0_MAC[src.node]) / ip_pkt(64, pre_nat=True)),
        (f"{src.node}/cni0", lambda: Ether(src=src.mac, dst=CNI0_MAC[src.node]) / ip_pkt(64, pre_nat=True)),
        (f"{src.node}/flannel.1", lambda: Ether(src=VTEP_MAC[src.node], dst=VTEP_MAC[dst.node]) / ip_pkt(63)),
        (f"{src.node}/eth0", lambda: Ether(src=NODE_MAC[src.node], dst=NODE_MAC[dst.node]) /
         IP(src=NODE_IP[src.node], dst=NODE_IP[dst.node], ttl=64, id=(ipid * 7) & 0xFFFF) /
         UDP(sport=40000 + ipid % 1000, dport=8472, chksum=0) / VXLAN(vni=1, flags=0x08) /
         Ether(src=VTEP_MAC[src.node], dst=VTEP_MAC[dst.node]) / ip_pkt(63)),
        (f"{dst.node}/eth0", None),
        (f"{dst.node}/flannel.1", lambda: Ether(src=VTEP_MAC[src.node], dst=VTEP_MAC[dst.node]) / ip_pkt(63)),
        (f"{dst.node}/cni0", lambda: Ether(src=CNI0_MAC[dst.node], dst=dst.mac) / ip_pkt(62, post_unnat=True)),
        (f"{dst.node}/{dst.iface}", lambda: Ether(src=CNI0_MAC[dst.node], dst=dst.mac) /
         ip_pkt(62, post_unnat=True)),
    ]
    sc.gap()
    outer = None
    for point, build in hops:
        if build is None:
            frame = outer     # the same bytes arrive at the peer's eth0
        else:
            frame = bytes(build())
            if point.endswith("/eth0"):
                outer = frame
        sc.add(point, frame)
        if point == drop_after:
            break


def calico_ipip_packet(sc: Scenario, src: Pod, dst: Pod, l4, *, ipid: int, drop_after: str | None = None) -> None:
    """One pod-to-pod packet through Calico IPIP: cali → tunl0 (raw IP) → eth0 (proto 4) → … → cali."""
    def inner(ttl: int):
        return IP(src=src.ip, dst=dst.ip, ttl=ttl, id=ipid, flags="DF") / l4.copy()

    hops = [
        (f"{src.node}/{src.iface}", lambda: bytes(Ether(src=src.mac, dst="ee:ee:ee:ee:ee:ee") / inner(64)), 1),
        (f"{src.node}/tunl0", lambda: bytes(inner(63)), 101),
        (f"{src.node}/eth0", lambda: bytes(Ether(src=NODE_MAC[src.node], dst=NODE_MAC[dst.node]) /
                                           IP(src=NODE_IP[src.node], dst=NODE_IP[dst.node], proto=4, ttl=64,
                                              id=(ipid * 3) & 0xFFFF) / inner(63)), 1),
        (f"{dst.node}/eth0", None, 1),
        (f"{dst.node}/tunl0", lambda: bytes(inner(63)), 101),
        (f"{dst.node}/{dst.iface}", lambda: bytes(Ether(src="ee:ee:ee:ee:ee:ee", dst=dst.mac) / inner(62)), 1),
    ]
    sc.gap()
    outer = b""
    for point, build, lt in hops:
        frame = outer if build is None else build()
        if point.endswith("/eth0"):
            outer = frame
        sc.add(point, frame, lt)
        if point == drop_after:
            break


def tcp_conversation(sc: Scenario, packet, a: Pod, b: Pod, *, sport: int = 40123, dport: int = 8080,
                     ipid_a: int = 100, ipid_b: int = 900, drop_syn_after: str | None = None, syn_tries: int = 1,
                     reply_kw: dict | None = None, **kw) -> None:
    """A handshake + one request/response + FIN exchange, each packet sent with ``packet(sc, src, dst, l4, …)``.

    With ``drop_syn_after`` every SYN (``syn_tries`` of them, a second apart as TCP retransmits them) dies after
    that point and nothing else is sent. ``kw`` goes with a→b packets, ``reply_kw`` with b→a ones.
    """
    rkw = reply_kw or {}

    def fwd(l4, ipid, **extra):
        packet(sc, a, b, l4, ipid=ipid, **kw, **extra)

    def back(l4, ipid):
        packet(sc, b, a, l4, ipid=ipid, **rkw)

    if drop_syn_after:
        for k in range(syn_tries):
            if k:
                sc.gap(1_000_000_000)
            fwd(TCP(sport=sport, dport=dport, flags="S", seq=1000), ipid_a + k, drop_after=drop_syn_after)
        return
    fwd(TCP(sport=sport, dport=dport, flags="S", seq=1000), ipid_a)
    back(TCP(sport=dport, dport=sport, flags="SA", seq=5000, ack=1001), ipid_b)
    fwd(TCP(sport=sport, dport=dport, flags="A", seq=1001, ack=5001), ipid_a + 1)
    fwd(TCP(sport=sport, dport=dport, flags="PA", seq=1001, ack=5001) / b"GET / HTTP/1.1\r\n\r\n", ipid_a + 2)
    back(TCP(sport=dport, dport=sport, flags="PA", seq=5001, ack=1019) / b"HTTP/1.1 200 OK\r\n\r\n", ipid_b + 1)
    fwd(TCP(sport=sport, dport=dport, flags="FA", seq=1019, ack=5020), ipid_a + 3)
    back(TCP(sport=dport, dport=sport, flags="FA", seq=5020, ack=1020), ipid_b + 2)
    fwd(TCP(sport=sport, dport=dport, flags="A", seq=1020, ack=5021), ipid_a + 4)


def icmp_ping(sc: Scenario, packet, a: Pod, b: Pod, count: int = 3, ident: int = 0x77) -> None:
    """``count`` echo request/reply pairs from a to b."""
    for seq in range(1, count + 1):
        packet(sc, a, b, ICMP(type=8, id=ident, seq=seq) / b"ping-payload", ipid=300 + seq)
        packet(sc, b, a, ICMP(type=0, id=ident, seq=seq) / b"ping-payload", ipid=700 + seq)


def write_cluster(path: Path, pods: list[Pod], *, policies: list[dict] | None = None,
                  services: list[dict] | None = None, node_annotations: dict | None = None) -> str:
    """A ``kubectl get … -o yaml`` style List: namespace default, the scenario's two nodes, the pods."""
    import yaml

    items: list[dict] = [{"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}}]
    for k, node in enumerate(("node1", "node2"), start=1):
        cidr = sorted({".".join(p.ip.split(".")[:3]) + ".0/24" for p in pods if p.node == node})
        items.append({"apiVersion": "v1", "kind": "Node",
                      "metadata": {"name": node, "annotations": dict(node_annotations or {})},
                      "spec": {"podCIDR": cidr[0] if cidr else f"10.250.{k}.0/24"},
                      "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP[node]}]}})
    for p in pods:
        items.append({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": p.name, "namespace": "default", "labels": {"app": p.name}},
                      "spec": {"nodeName": p.node, "containers": [{"name": "c", "image": "x"}]},
                      "status": {"phase": "Running", "podIP": p.ip, "podIPs": [{"ip": p.ip}]}})
    items += policies or []
    items += services or []
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    return str(path)


def deny_ingress_policy(app: str) -> dict:
    """A NetworkPolicy isolating ``app=<app>`` for ingress with no rule: every new connection to it is denied."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"deny-{app}", "namespace": "default"},
            "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress"]}}
