"""Kubernetes cluster model and the NetworkPolicy verdict engine (pure: no Textual, no scapy).

``load_cluster(paths)`` → ``Cluster`` (``resolve_ip``, ``endpoint``, ``service_backends``);
``PolicyEngine(cluster).check(src, dst, port, protocol)`` → ``Verdict`` (``allowed``, ``verdict``, ``ingress``,
``egress``, ``explanation``); ``check_packet`` for packet-level use with stateful replies.
"""

from tracer.k8s.cluster import Cluster, Endpoint, Namespace, Node, Pod, Service, load_cluster
from tracer.k8s.netpol import NetworkPolicy
from tracer.k8s.policy import DirectionVerdict, PolicyEngine, RuleMatch, Verdict

__all__ = ["Cluster", "DirectionVerdict", "Endpoint", "Namespace", "NetworkPolicy", "Node", "Pod", "PolicyEngine",
           "RuleMatch", "Service", "Verdict", "load_cluster"]
