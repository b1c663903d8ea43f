#!/usr/bin/env python3
"""Synthesize the Calico IP-in-IP capture (captures/calico-ipip/): this kernel has no ipip module, so the lab
cannot build the mode; scapy builds what the real datapath would show, hop by hop.

Same cluster as ``tracer lab up calico-ipip`` would make (its plan, its cluster.yaml with the NetworkPolicy deny).
Capture points per packet, as Calico IPIP routes it (``tracer.hops`` models):
    node1/caliXXXX (pod → ee:ee:ee:ee:ee:ee) → node1/tunl0 (raw IP, TTL-1) → node1/eth0 (IP proto 4, outer TTL 64)
    → node2/eth0 → node2/tunl0 → node2/caliYYYY (TTL-2, ee:ee:ee:ee:ee:ee → pod)
The denied SYN (python/tomcat → linux/tomcat:8080) and its retransmission stop after node2/tunl0.
Deterministic: fixed start time, fixed IDs and sequence numbers; running it twice gives the same bytes.

Usage: python3 captures/make_calico_ipip.py OUTDIR
"""

from __future__ import annotations

import json
import os
import sys

from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import Ether

from tracer.capture.pcapng_writer import DIR_INBOUND, DIR_OUTBOUND, Interface, PcapngFile, packet_block
from tracer.lab import policy
from tracer.lab.cluster import write_cluster_yaml
from tracer.lab.plan import CALI_HOST_MAC, make_plan

T0 = 1_764_144_000_000_000_000        # 2025-11-26T08:00:00Z, in ns
HOP_NS = (9_000, 11_000, 14_000, 60_000, 10_000, 7_000)   # per-hop delays: cali→tunl0→eth0→wire→eth0→tunl0→cali
LINKTYPE_ETHERNET, LINKTYPE_RAW = 1, 101


def main(outdir: str) -> None:
    plan = make_plan("calico-ipip", 2)
    plan.policy = policy.default_deny(plan)
    n1, n2 = plan.nodes
    nginx, tomcat, ptomcat = plan.pod("linux/nginx"), plan.pod("linux/tomcat"), plan.pod("python/tomcat")
    points = [("node1", nginx.host_iface), ("node1", ptomcat.host_iface), ("node1", "tunl0"), ("node1", "eth0"),
              ("node2", "eth0"), ("node2", "tunl0"), ("node2", tomcat.host_iface)]
    itfs = [Interface(f"{node}/{iface}", LINKTYPE_RAW if iface == "tunl0" else LINKTYPE_ETHERNET, 262144,
                      f"{iface} on {node} (synthesized by captures/make_calico_ipip.py: no ipip module here)")
            for node, iface in points]
    pid = {name: i for i, name in enumerate(f"{n}/{i}" for n, i in points)}
    node_of = {p.ip: plan.node(p.node) for p in plan.pods}
    mac = {n.name: n.mac for n in plan.nodes}
    records: list[tuple[int, int, bytes, int]] = []
    outer_id = {"node1": 0x3a00, "node2": 0x7c00}

    def send(t: int, inner: IP, src_pod, dst_pod, stop_after: str | None = None) -> None:
        """Record one pod-to-pod packet at every hop from the source pod's cali to the destination's."""
        a, b = node_of[src_pod.ip], node_of[dst_pod.ip]
        hops = [(f"{a.name}/{src_pod.host_iface}", "pod-out"), (f"{a.name}/tunl0", "tunl"), (f"{a.name}/eth0", "wire"),
                (f"{b.name}/eth0", "wire"), (f"{b.name}/tunl0", "tunl"), (f"{b.name}/{dst_pod.host_iface}", "pod-in")]
        ip = inner.copy()
        for k, (point, kind) in enumerate(hops):
            t += HOP_NS[k]
            if kind == "pod-out":
                frame = bytes(Ether(src=src_pod.mac, dst=CALI_HOST_MAC) / ip)
                direction = DIR_INBOUND
            elif kind == "tunl":
                if k == 1:
                    ip.ttl -= 1                 # routed by node1 into tunl0
                frame = bytes(ip)
                direction = DIR_OUTBOUND if k == 1 else DIR_INBOUND
            elif kind == "wire":
                if k == 2:
                    outer_id[a.name] += 1
                outer = IP(src=a.ip, dst=b.ip, proto=4, ttl=64, flags="DF", id=outer_id[a.name])   # same at both ends
                frame = bytes(Ether(src=mac[a.name], dst=mac[b.name]) / outer / ip)
                direction = DIR_OUTBOUND if k == 2 else DIR_INBOUND
            else:
                ip.ttl -= 1                     # routed by node2 out of tunl0 into the cali veth
                frame = bytes(Ether(src=CALI_HOST_MAC, dst=dst_pod.mac) / ip)
                direction = DIR_OUTBOUND
            records.append((t, pid[point], frame, direction))
            if stop_after == point:
                return

    t = T0
    # ICMP echo nginx → tomcat and back, twice.
    for seq in (1, 2):
        send(t, IP(src=nginx.ip, dst=tomcat.ip, id=0x1000 + seq, ttl=64, flags="DF") /
             ICMP(type=8, id=0x4d2, seq=seq) / (b"\x00" * 48), nginx, tomcat)
        send(t + 200_000, IP(src=tomcat.ip, dst=nginx.ip, id=0x2000 + seq, ttl=64) /
             ICMP(type=0, id=0x4d2, seq=seq) / (b"\x00" * 48), tomcat, nginx)
        t += 100_000_000
    # HTTP nginx → tomcat:8080: handshake, GET, response, close.
    c, s, sport = 1_000_000, 5_000_000, 41234
    req = b"GET / HTTP/1.1\r\nHost: 10.244.129.2:8080\r\nUser-Agent: Python-urllib/3.11\r\nConnection: close\r\n\r\n"
    resp = b"HTTP/1.0 200 OK\r\nServer: tomcat\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\ntomcat\n"
    conv = [("c", "S", c, 0, b""), ("s", "SA", s, c + 1, b""), ("c", "A", c + 1, s + 1, b""),
            ("c", "PA", c + 1, s + 1, req), ("s", "A", s + 1, c + 1 + len(req), b""),
            ("s", "PA", s + 1, c + 1 + len(req), resp), ("s", "FA", s + 1 + len(resp), c + 1 + len(req), b""),
            ("c", "A", c + 1 + len(req), s + 2 + len(resp), b""), ("c", "FA", c + 1 + len(req), s + 2 + len(resp), b""),
            ("s", "A", s + 2 + len(resp), c + 2 + len(req), b"")]
    for k, (who, flags, seq, ack, payload) in enumerate(conv):
        src, dst = (nginx, tomcat) if who == "c" else (tomcat, nginx)
        sp, dp = (sport, 8080) if who == "c" else (8080, sport)
        send(t, IP(src=src.ip, dst=dst.ip, id=0x3000 + k, ttl=64, flags="DF") /
             TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack, window=64240) / payload, src, dst)
        t += 300_000
    # The denied flow: python/tomcat → linux/tomcat:8080, SYN and one retransmission 1 s later, dropped on node2
    # before linux/tomcat's cali veth (the NetworkPolicy), so last seen at node2/tunl0.
    t += 50_000_000
    for k in range(2):
        send(t, IP(src=ptomcat.ip, dst=tomcat.ip, id=0x5000 + k, ttl=64, flags="DF") /
             TCP(sport=52000, dport=8080, flags="S", seq=7_000_000, window=64240), ptomcat, tomcat,
             stop_after="node2/tunl0")
        t += 1_000_000_000

    os.makedirs(outdir, exist_ok=True)
    records.sort(key=lambda r: (r[0], r[1]))
    path = os.path.join(outdir, "merged.pcapng")
    f = PcapngFile(path + ".tmp", itfs, os_name="synthesized (scapy)")
    f.write_blocks([packet_block(i, ts, data, len(data), d) for ts, i, data, d in records], len(records))
    f.close()
    os.replace(path + ".tmp", path)
    write_cluster_yaml(plan, os.path.join(outdir, "cluster.yaml"))
    flows = [{"label": "icmp nginx->tomcat", "ok": True}, {"label": "http nginx->tomcat", "ok": True},
             {"label": "http python/tomcat->linux/tomcat (denied)", "ok": False}]
    with open(os.path.join(outdir, "traffic.json"), "w") as fh:
        json.dump({"mode": "calico-ipip", "synthesized": True, "policy": plan.policy, "flows": flows}, fh, indent=1)
    print(f"wrote {len(records)} packets to {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "calico-ipip"))
