"""The lab as a whole: bring it up (topology, kube-proxy rules, servers), describe it, tear it down."""

from __future__ import annotations

import os
import shutil

from tracer.lab import build, kubeproxy, netns, state, workloads
from tracer.lab.build import LabError, rtnl
from tracer.lab.plan import (CLIENT_IP, CLIENT_NS, CLUSTER_CIDR, FLANNEL_VXLAN, HOST_GW, OVERLAY_MTU, WIRE_NS, LabPlan,
                             make_plan)
from tracer.safe_write import write_replacing


def up(mode: str, nodes: int = 2) -> LabPlan:
    """Build a fresh lab (tearing down any previous one first); on any failure nothing is left behind."""
    build.check_root()
    try:
        plan = make_plan(mode, nodes)
    except ValueError as exc:
        raise LabError(str(exc)) from None
    build.check_mode(plan.mode)
    build.down()
    state.clear()
    try:
        build.up(plan)
        kubeproxy.program(plan)
        plan.pids = workloads.start(plan)
        _write_subnet_env(plan)
        state.save(plan)
    except BaseException:
        build.down()
        state.clear()
        raise
    return plan


def subnet_env_path(node: str) -> str:
    """Where the lab keeps a node's flannel subnet.env (a lab node shares the host's /run/flannel)."""
    return os.path.join(state.STATE_DIR, node, "subnet.env")


def _write_subnet_env(plan: LabPlan) -> None:
    if plan.mode not in (FLANNEL_VXLAN, HOST_GW):
        return
    for n in plan.nodes:
        os.makedirs(os.path.dirname(subnet_env_path(n.name)), exist_ok=True)
        prefix = n.pod_cidr.split("/")[1]
        mtu = OVERLAY_MTU if plan.mode == FLANNEL_VXLAN else 1500
        write_replacing(subnet_env_path(n.name), f"FLANNEL_NETWORK={CLUSTER_CIDR}\nFLANNEL_SUBNET="
                                                 f"{n.gateway_ip}/{prefix}\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ=true\n")


def down() -> list[str]:
    """Remove the lab (every ``trl-`` namespace and the processes in them); returns what was removed."""
    build.check_root()
    plan = state.load()
    if plan:
        netns.kill(plan.pids)
    removed = build.down()
    state.clear()
    shutil.rmtree(state.STATE_DIR, ignore_errors=True)
    return removed


def current() -> LabPlan:
    """The running lab's plan, or a LabError saying how to start one."""
    plan = state.load()
    if plan is None or not all(netns.exists(n.netns) for n in plan.nodes):
        raise LabError("no lab is up: start one with `tracer lab up flannel-vxlan`")
    return plan


def _links(ns: str) -> list[dict]:
    out = []
    with rtnl(ns) as ipr:
        addrs: dict[int, list[str]] = {}
        for a in ipr.get_addr(family=2):
            addrs.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if name == "lo":
                continue
            info = link.get_attr("IFLA_LINKINFO")
            out.append({"name": name, "index": link["index"], "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                        "mac": link.get_attr("IFLA_ADDRESS"), "addresses": addrs.get(link["index"], []),
                        "state": link.get_attr("IFLA_OPERSTATE")})
    return out


def status(plan: LabPlan) -> dict:
    """What ``tracer lab status --json`` prints: nodes and pods with namespaces, interfaces, IPs, MACs."""
    nodes = []
    for n in plan.nodes:
        nodes.append({"name": n.name, "netns": n.netns, "ip": n.ip, "mac": n.mac, "pod_cidr": n.pod_cidr,
                      "tunnel_ip": n.tunnel_ip, "vtep_mac": n.tunnel_mac, "interfaces": _links(n.netns),
                      "subnet_env": subnet_env_path(n.name) if os.path.exists(subnet_env_path(n.name)) else None})
    pods = [{"namespace": p.namespace, "name": p.name, "app": p.app, "node": p.node, "netns": p.netns,
             "ip": p.ip, "mac": p.mac, "host_iface": p.host_iface, "ports": p.ports} for p in plan.pods]
    services = [{"namespace": s.namespace, "name": s.name, "cluster_ip": s.cluster_ip, "port": s.port,
                 "target_port": s.target_port, "protocol": s.protocol, "node_port": s.node_port}
                for s in plan.services]
    return {"mode": plan.mode, "nodes": nodes, "pods": pods, "services": services,
            "client": {"netns": CLIENT_NS, "ip": CLIENT_IP}, "underlay_netns": WIRE_NS,
            "policy": plan.policy}
