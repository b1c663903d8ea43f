"""A NetworkPolicy deny, mimicked by an nftables drop on the destination pod's host-side veth.

The tutorial's policy: tomcat in ``linux`` accepts TCP 8080 only from pods of the ``linux`` namespace. Calico
enforces such a policy in the node's FORWARD path, just before the packet is sent into the pod's veth; we drop in
the veth's netdev *egress* hook, which runs before the packet reaches packet taps, so a capture on that veth never
sees it — exactly what a capture shows on a real node: last seen on the bridge / tunnel, never on the veth.

Only the policy's TCP 8080 part is enforced (other-namespace sources to port 8080). What the policy also implies —
nothing else reaches tomcat, ICMP included — is left unenforced on purpose: the captures then also show a flow the
policy denies but the datapath delivers, the mismatch ``tracer reach`` exists to flag.
"""

from __future__ import annotations

from tracer.lab import netns
from tracer.lab.plan import LabPlan

TABLE = "trl_policy"   # our own nftables table: removing it removes only what we added


def default_deny(plan: LabPlan) -> dict:
    """The tutorial's deny: to linux/tomcat:8080 from anything outside the ``linux`` namespace."""
    pod = plan.pod("linux/tomcat")
    allowed = sorted(p.ip for p in plan.pods if p.namespace == "linux")
    return {"name": "tomcat-allow-linux", "namespace": "linux", "pod": pod.key, "port": 8080, "protocol": "TCP",
            "allow_namespace": "linux", "allow_ips": allowed, "node": pod.node, "iface": pod.host_iface}


def ruleset(deny: dict) -> str:
    allow = ", ".join(deny["allow_ips"])
    proto = deny["protocol"].lower()
    return (f'table netdev {TABLE} {{\n'
            f'  chain deny {{\n'
            f'    type filter hook egress device "{deny["iface"]}" priority 0; policy accept;\n'
            f'    ip saddr != {{ {allow} }} {proto} dport {deny["port"]} counter drop\n'
            f'  }}\n'
            f'}}\n')


def apply(plan: LabPlan, deny: dict) -> None:
    node = plan.node(deny["node"])
    remove(plan)
    netns.run(node.netns, ["nft", "-f", "-"], input=ruleset(deny))
    plan.policy = deny


def remove(plan: LabPlan) -> None:
    for node in plan.nodes:
        netns.run(node.netns, ["nft", "delete", "table", "netdev", TABLE], check=False)
    plan.policy = None


def dropped(plan: LabPlan) -> int | None:
    """Packets the deny has dropped so far (from its nftables counter), None when no deny is applied."""
    if not plan.policy:
        return None
    out = netns.run(plan.node(plan.policy["node"]).netns, ["nft", "list", "table", "netdev", TABLE],
                    check=False).stdout
    for line in out.splitlines():
        if "counter packets" in line:
            return int(line.split("counter packets", 1)[1].split()[0])
    return None
