"""Captures for the TUI tests, built with scapy: the tutorial's scenario at every flannel VXLAN hop.

``write_scenario(dir)`` writes ``scenario.pcapng`` (one IDB per capture point, named ``NODE/IFACE`` as the
capture core reads them) and ``cluster.yaml`` (a ``kubectl get -o yaml`` style List: two nodes, namespaces
``linux`` and ``python``, pods ``linux/nginx`` on node1 and ``python/tomcat`` + ``python/curl``, and a
NetworkPolicy ``tomcat-from-python`` that admits ingress to tomcat only from namespace ``python``).

Traffic (what the tests expect, by construction):
- ``python/curl`` → ``python/tomcat:8080``: SYN, SYN-ACK, ACK, each seen at every hop (allowed).
- ``linux/nginx`` → ``python/tomcat:8080``: a SYN and its retransmission, seen from nginx's veth to node2's
  cni0 and never on tomcat's veth (denied by ``tomcat-from-python``, enforced at the destination).
Encapsulated on ``node*/eth0`` (VXLAN, UDP 8472, VNI 1), decapsulated on ``node*/flannel.1``.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import PcapNgWriter

from tracer.ui.pilot import settle, wait_workers  # noqa: F401 - re-exported for the UI tests

NODES = {"node1": ("172.31.0.11", "02:00:00:00:00:11", "5a:00:00:00:01:01", "10.244.1.0/24"),
         "node2": ("172.31.0.12", "02:00:00:00:00:12", "5a:00:00:00:02:01", "10.244.2.0/24")}
PODS = {  # name: (namespace, ip, mac, node, veth, labels)
    "nginx": ("linux", "10.244.1.5", "0a:58:0a:f4:01:05", "node1", "veth1a2b3c4d", {"app": "nginx"}),
    "curl": ("python", "10.244.1.9", "0a:58:0a:f4:01:09", "node1", "veth9e8d7c6b", {"app": "curl"}),
    "tomcat": ("python", "10.244.2.7", "0a:58:0a:f4:02:07", "node2", "veth55aa66bb", {"app": "tomcat"}),
}
CNI0_MAC = {"node1": "e6:00:00:00:01:01", "node2": "e6:00:00:00:02:01"}
T0 = 1_700_000_000.0
HOP_GAP = 0.000020


def _hops(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int, ipid: int,
          stop_before: str | None = None) -> list[tuple[str, object]]:
    """(capture point, frame) for one packet crossing from pod ``src`` to pod ``dst`` over flannel VXLAN."""
    s_ns, s_ip, s_mac, s_node, s_veth, _ = PODS[src]
    d_ns, d_ip, d_mac, d_node, d_veth, _ = PODS[dst]
    tcp = TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=64240)
    pod_ip = IP(src=s_ip, dst=d_ip, ttl=64, id=ipid, flags="DF") / tcp
    routed = IP(src=s_ip, dst=d_ip, ttl=63, id=ipid, flags="DF") / tcp
    delivered = IP(src=s_ip, dst=d_ip, ttl=62, id=ipid, flags="DF") / tcp
    sn, dn = NODES[s_node], NODES[d_node]
    inner = Ether(src=sn[2], dst=dn[2]) / routed
    outer = (Ether(src=sn[1], dst=dn[1]) / IP(src=sn[0], dst=dn[0], ttl=64, id=ipid ^ 0x5555)
             / UDP(sport=40000 + (sport % 20000), dport=8472, chksum=0) / VXLAN(vni=1, flags=0x08) / inner)
    frames = [
        (f"{s_node}/{s_veth}", Ether(src=s_mac, dst=CNI0_MAC[s_node]) / pod_ip),
        (f"{s_node}/cni0", Ether(src=s_mac, dst=CNI0_MAC[s_node]) / pod_ip),
        (f"{s_node}/flannel.1", inner),
        (f"{s_node}/eth0", outer),
        (f"{d_node}/eth0", outer),
        (f"{d_node}/flannel.1", inner),
        (f"{d_node}/cni0", Ether(src=CNI0_MAC[d_node], dst=d_mac) / delivered),
        (f"{d_node}/{d_veth}", Ether(src=CNI0_MAC[d_node], dst=d_mac) / delivered),
    ]
    if stop_before:
        frames = frames[: [p for p, _ in frames].index(stop_before)]
    return frames


def scenario_packets() -> list[tuple[float, str, object]]:
    """(time, capture point, frame) for the whole scenario, in capture order."""
    t = T0
    out: list[tuple[float, str, object]] = []

    def emit(frames: list[tuple[str, object]]) -> None:
        nonlocal t
        for point, frame in frames:
            out.append((t, point, frame))
            t += HOP_GAP
        t += 0.01

    emit(_hops("curl", "tomcat", 41000, 8080, "S", 1000, 0, 0x1001))
    emit(_hops("tomcat", "curl", 8080, 41000, "SA", 5000, 1001, 0x2001))
    emit(_hops("curl", "tomcat", 41000, 8080, "A", 1001, 5001, 0x1002))
    denied_stop = f"node2/{PODS['tomcat'][4]}"
    emit(_hops("nginx", "tomcat", 52000, 8080, "S", 7000, 0, 0x3001, stop_before=denied_stop))
    t += 1.0
    emit(_hops("nginx", "tomcat", 52000, 8080, "S", 7000, 0, 0x3002, stop_before=denied_stop))
    return out


CLUSTER_YAML = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: linux, labels: {kubernetes.io/metadata.name: linux}}
- apiVersion: v1
  kind: Namespace
  metadata: {name: python, labels: {kubernetes.io/metadata.name: python}}
%(nodes)s
%(pods)s
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: tomcat-from-python, namespace: python}
  spec:
    podSelector: {matchLabels: {app: tomcat}}
    policyTypes: [Ingress]
    ingress:
    - from:
      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: python}}
      ports:
      - {protocol: TCP, port: 8080}
"""


def cluster_yaml() -> str:
    nodes = "\n".join(
        f"""- apiVersion: v1
  kind: Node
  metadata:
    name: {name}
    annotations: {{flannel.alpha.coreos.com/backend-type: vxlan}}
  spec: {{podCIDR: "{cidr}"}}
  status:
    addresses:
    - {{type: InternalIP, address: "{ip}"}}"""
        for name, (ip, _mac, _vtep, cidr) in NODES.items())
    pods = "\n".join(
        f"""- apiVersion: v1
  kind: Pod
  metadata:
    name: {name}
    namespace: {ns}
    labels: {{{", ".join(f"{k}: {v}" for k, v in labels.items())}}}
  spec:
    nodeName: {node}
    containers:
    - name: main
      image: example/{name}
      ports: [{{containerPort: 8080, name: http, protocol: TCP}}]
  status:
    phase: Running
    podIP: "{ip}"
    podIPs: [{{ip: "{ip}"}}]"""
        for name, (ns, ip, _mac, node, _veth, labels) in PODS.items())
    return CLUSTER_YAML % {"nodes": nodes, "pods": pods}


def write_scenario(directory: Path) -> tuple[Path, Path]:
    """Write the scenario capture and its cluster state into ``directory``; return both paths."""
    capture = directory / "scenario.pcapng"
    writer = PcapNgWriter(str(capture))
    for ts, point, frame in scenario_packets():
        frame.time = ts
        frame.sniffed_on = point
        writer.write(frame)
    writer.close()
    cluster = directory / "cluster.yaml"
    cluster.write_text(cluster_yaml())
    return capture, cluster


def write_hostile(directory: Path) -> Path:
    """A capture whose payload and interface name carry Rich markup, ANSI/OSC escapes and control bytes."""
    hostile = "[bold red]PWNED[/bold red] [link=http://evil.example]click[/link] \x1b[31mRED\x1b[0m " \
              "\x1b]0;owned-title\x07 \x1b]8;;http://evil.example\x1b\\osc8\x1b]8;;\x1b\\ \x07\x08\x7f\x9b"
    capture = directory / "hostile.pcapng"
    writer = PcapNgWriter(str(capture))
    payload = ("GET /" + hostile + " HTTP/1.1\r\nHost: [bold]x[/bold]\r\n\r\n").encode("utf-8", "surrogatepass")
    frame = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
             / TCP(sport=1234, dport=80, flags="PA") / payload)
    frame.time = T0
    frame.sniffed_on = "[bold red]eth0\x1b[2J\x1b]0;title\x07"
    writer.write(frame)
    from scapy.layers.dns import DNS, DNSQR

    dns = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.53")
           / UDP(sport=5353, dport=53) / DNS(rd=1, qd=DNSQR(qname=b"[bold red]x\x1b[31m.[link=http://e]y.evil.")))
    dns.time = T0 + 0.001
    dns.sniffed_on = frame.sniffed_on
    writer.write(dns)
    writer.close()
    return capture


def screen_text(app) -> str:
    """What the terminal shows, as plain text (one line per terminal row)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())  # noqa: SLF001


def run_async(test):
    """Run an ``async def`` test with ``asyncio.run`` (no pytest-asyncio needed); fixtures pass through."""
    import asyncio
    import functools

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return wrapper


def inner_ip(frame):
    """The innermost IPv4 header of a scenario frame (inside VXLAN on eth0, else the only one)."""
    layer = frame.getlayer(IP)
    while layer is not None and layer.payload.getlayer(IP) is not None:
        layer = layer.payload.getlayer(IP)
    return layer
