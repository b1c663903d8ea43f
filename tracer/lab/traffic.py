"""The lab's traffic mix: ICMP, HTTP, UDP and DNS, pod to pod, through a ClusterIP and a NodePort, cross-node
and same-node, and the one flow the NetworkPolicy denies. Each flow runs ``tracer.lab.agent`` inside the client's
namespace and records whether it got an answer.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from tracer.lab import netns
from tracer.lab.plan import CLIENT_NS, LabPlan


@dataclass
class Flow:
    """One generated exchange: who, to where, what, and what came of it."""

    label: str
    src: str            # "ns/name" of the client pod, or "client" (outside, on the underlay)
    dst: str            # the address dialled, "IP" or "IP:PORT"
    proto: str
    kind: str           # pod | clusterip | nodeport
    locality: str       # cross-node | same-node | external
    expect: bool        # whether the policy lets it through
    ok: bool | None = None


def flows(plan: LabPlan) -> list[tuple[Flow, str, list[str]]]:
    """The flows for ``plan``: (flow, namespace to run in, agent arguments)."""
    nginx, tomcat = plan.pod("linux/nginx"), plan.pod("linux/tomcat")
    ptomcat, test, dns = plan.pod("python/tomcat"), plan.pod("default/test"), plan.pod("kube-system/coredns")
    svc_tomcat, svc_dns = plan.service("linux/tomcat"), plan.service("kube-system/kube-dns")
    lnginx, pnginx = plan.service("linux/nginx"), plan.service("python/nginx")

    def where(a, b) -> str:
        return "same-node" if a.node == b.node else "cross-node"

    # NodePorts are dialled on a node that does not run the backend, so the DNAT sends them across nodes.
    np_node_l = next(n for n in plan.nodes if n.name != nginx.node)
    np_node_p = next(n for n in plan.nodes if n.name != plan.pod("python/nginx").node)
    out = [
        (Flow("icmp nginx->tomcat", nginx.key, tomcat.ip, "ICMP", "pod", where(nginx, tomcat), True),
         nginx.netns, ["ping", tomcat.ip, "2"]),
        (Flow("icmp test->nginx", test.key, nginx.ip, "ICMP", "pod", where(test, nginx), True),
         test.netns, ["ping", nginx.ip, "1"]),
        (Flow("http nginx->tomcat", nginx.key, f"{tomcat.ip}:8080", "TCP", "pod", where(nginx, tomcat), True),
         nginx.netns, ["get", f"http://{tomcat.ip}:8080/"]),
        (Flow("http nginx->svc/tomcat", nginx.key, f"{svc_tomcat.cluster_ip}:{svc_tomcat.port}", "TCP",
              "clusterip", where(nginx, tomcat), True),
         nginx.netns, ["get", f"http://{svc_tomcat.cluster_ip}:{svc_tomcat.port}/"]),
        (Flow("http test->nginx", test.key, f"{nginx.ip}:80", "TCP", "pod", where(test, nginx), True),
         test.netns, ["get", f"http://{nginx.ip}/"]),
        (Flow("http python/tomcat->svc/linux-nginx", ptomcat.key, f"{lnginx.cluster_ip}:{lnginx.port}", "TCP",
              "clusterip", where(ptomcat, nginx), True),
         ptomcat.netns, ["get", f"http://{lnginx.cluster_ip}:{lnginx.port}/"]),
        (Flow("dns test->kube-dns", test.key, f"{svc_dns.cluster_ip}:53", "UDP", "clusterip", where(test, dns),
              True),
         test.netns, ["resolve", "tomcat.linux.svc.cluster.local", svc_dns.cluster_ip]),
        (Flow("udp test->coredns:7", test.key, f"{dns.ip}:7", "UDP", "pod", where(test, dns), True),
         test.netns, ["udp", dns.ip, "7", "hello from test"]),
        (Flow("http client->nodeport 30008", "client", f"{np_node_l.ip}:{lnginx.node_port}", "TCP", "nodeport",
              "external", True),
         CLIENT_NS, ["get", f"http://{np_node_l.ip}:{lnginx.node_port}/"]),
        (Flow("http client->nodeport 30014", "client", f"{np_node_p.ip}:{pnginx.node_port}", "TCP", "nodeport",
              "external", True),
         CLIENT_NS, ["get", f"http://{np_node_p.ip}:{pnginx.node_port}/"]),
        (Flow("http python/tomcat->linux/tomcat (denied)", ptomcat.key, f"{tomcat.ip}:8080", "TCP", "pod",
              where(ptomcat, tomcat), plan.policy is None),
         ptomcat.netns, ["get", f"http://{tomcat.ip}:8080/"]),
    ]
    return out


def run(plan: LabPlan, *, parallel: bool = False) -> list[Flow]:
    """Run every flow once; each flow's ``ok`` says whether it was answered. In order by default (captures stay
    readable); ``parallel`` starts them all at once (quicker: the denied flow's timeout is paid once)."""
    todo = flows(plan)
    argv = [netns.command(ns, [sys.executable, "-m", "tracer.lab.agent", *args]) for _, ns, args in todo]
    if parallel:
        procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for a in argv]
        codes = [p.wait(timeout=30) for p in procs]
    else:
        codes = [subprocess.run(a, capture_output=True, timeout=20).returncode for a in argv]
    done = []
    for (flow, _, _), code in zip(todo, codes):
        flow.ok = code == 0
        done.append(flow)
    return done
