"""Services on every lab node, programmed as kube-proxy's iptables mode does it (via ``iptables-restore``).

The chain layout follows kube-proxy (pkg/proxy/iptables/proxier.go): ``PREROUTING``/``OUTPUT`` jump to
``KUBE-SERVICES``, which matches each ClusterIP:port into ``KUBE-SVC-<hash>``; that picks an endpoint chain
``KUBE-SEP-<hash>`` which DNATs to the backend pod IP:targetPort. NodePorts go through ``KUBE-NODEPORTS`` →
``KUBE-EXT-<hash>``, marked for masquerade (externalTrafficPolicy: Cluster) so replies come back through the node
that DNATed. iptables cannot be driven from pyroute2, hence the one external tool.
"""

from __future__ import annotations

import base64
import hashlib

from tracer.lab import netns
from tracer.lab.plan import LabPlan, ServicePlan, backends


def _chain(prefix: str, *parts: str) -> str:
    """kube-proxy's chain names: prefix + the first 16 base32 characters of a SHA-256 of the port's identity."""
    digest = hashlib.sha256("".join(parts).encode()).digest()
    return prefix + base64.b32encode(digest).decode()[:16]


def rules(plan: LabPlan) -> str:
    """The ``iptables-restore`` input for the nat table of one node (the same on every node)."""
    chains = [":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]", ":KUBE-POSTROUTING - [0:0]",
              ":KUBE-MARK-MASQ - [0:0]"]
    body = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE',
    ]
    for svc in plan.services:
        body += _service(plan, svc, chains)
    body.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" '
                "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    return "*nat\n" + "\n".join(chains + body) + "\nCOMMIT\n"


def _service(plan: LabPlan, svc: ServicePlan, chains: list[str]) -> list[str]:
    proto = svc.protocol.lower()
    ident = f"{svc.namespace}/{svc.name}:{svc.port_name}"
    svc_chain = _chain("KUBE-SVC-", ident, proto)
    chains.append(f":{svc_chain} - [0:0]")
    comment = f'-m comment --comment "{ident} cluster IP"'
    out = [f"-A KUBE-SERVICES -d {svc.cluster_ip}/32 -p {proto} {comment} -m {proto} --dport {svc.port} "
           f"-j {svc_chain}"]
    eps = backends(plan, svc)
    for k, pod in enumerate(eps):
        sep = _chain("KUBE-SEP-", ident, proto, pod.ip)
        chains.append(f":{sep} - [0:0]")
        left = len(eps) - k
        pick = "" if left == 1 else f"-m statistic --mode random --probability {1 / left:.11f} "
        out.append(f'-A {svc_chain} -m comment --comment "{ident} -> {pod.ip}:{svc.target_port}" {pick}-j {sep}')
        out.append(f"-A {sep} -s {pod.ip}/32 -j KUBE-MARK-MASQ")   # hairpin: a pod reaching itself
        out.append(f"-A {sep} -p {proto} -m {proto} -j DNAT --to-destination {pod.ip}:{svc.target_port}")
    if svc.node_port:
        ext = _chain("KUBE-EXT-", ident, proto)
        chains.append(f":{ext} - [0:0]")
        out.append(f'-A KUBE-NODEPORTS -p {proto} -m comment --comment "{ident}" -m {proto} '
                   f"--dport {svc.node_port} -j {ext}")
        out.append(f'-A {ext} -m comment --comment "masquerade traffic for {ident} external destinations" '
                   "-j KUBE-MARK-MASQ")
        out.append(f"-A {ext} -j {svc_chain}")
    return out


def program(plan: LabPlan) -> None:
    """Load the Service rules into every node's namespace."""
    text = rules(plan)
    for node in plan.nodes:
        netns.run(node.netns, ["iptables-restore", "--noflush"], input=text)
