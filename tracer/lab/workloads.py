"""Start the pods' servers (``tracer.lab.agent``) inside their namespaces and wait until they answer."""

from __future__ import annotations

import json
import socket
import sys
import time

from tracer.lab import netns
from tracer.lab.plan import LabPlan, PodPlan


def dns_records(plan: LabPlan) -> dict[str, str]:
    """What the lab's CoreDNS answers: every Service's cluster DNS name → its ClusterIP."""
    return {f"{s.name}.{s.namespace}.svc.cluster.local": s.cluster_ip for s in plan.services}


def _servers(plan: LabPlan, pod: PodPlan) -> list[list[str]]:
    py = [sys.executable, "-m", "tracer.lab.agent"]
    if pod.app in ("nginx", "tomcat"):
        return [py + ["http", str(p["containerPort"]), pod.app] for p in pod.ports]
    if pod.app == "coredns":
        return [py + ["dns", "53", json.dumps(dns_records(plan))], py + ["udp-echo", "7"]]
    return []


def start(plan: LabPlan) -> list[int]:
    """Start every pod's servers; returns their pids (kept in the lab state for ``lab down``)."""
    pids = []
    for pod in plan.pods:
        for argv in _servers(plan, pod):
            pids.append(netns.spawn(pod.netns, argv))
    _wait_listening(plan)
    return pids


def _wait_listening(plan: LabPlan, timeout: float = 10.0) -> None:
    """Wait until each TCP server accepts, checked from inside its node (the pods are on the node's bridge)."""
    from pyroute2 import netns as pnetns

    for pod in plan.pods:
        for port in pod.ports:
            if port["protocol"] != "TCP" or pod.app == "coredns":
                continue
            deadline = time.monotonic() + timeout
            pnetns.pushns(pod.netns)
            try:
                while True:
                    try:
                        with socket.create_connection(("127.0.0.1", port["containerPort"]), timeout=0.5):
                            break
                    except OSError:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.05)
            finally:
                pnetns.popns()
