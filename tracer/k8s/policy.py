"""The NetworkPolicy verdict engine (networking.k8s.io/v1 semantics, as the upstream e2e tests expect).

``PolicyEngine(cluster).check(src, dst, port, protocol)`` judges a *new connection*:
- a pod is isolated for ingress (egress) when any policy in its namespace selects it and has that policy type;
- the connection is allowed iff the source's egress allows it (or the source is not egress-isolated, or is not
  a pod) AND the destination's ingress allows it (or it is not ingress-isolated, or is not a pod);
- a direction allows it when any rule of any isolating policy matches both a peer and a port;
- hostNetwork pods are node traffic: never selected, never matched by pod selectors (ipBlock sees the node IP);
- traffic from a pod's own node (kubelet probes) is always allowed into it;
- a Service address (ClusterIP, or a node address on a NodePort) is judged at its backends with the target port,
  as kube-proxy DNATs before the policy applies; all backends must allow it.

``check_packet(src_ip, dst_ip, proto, sport, dport, is_reply)`` is the packet-level entry: a reply of a connection
is judged as the connection it answers (dst → src on ``sport``), because policy enforcement is stateful (conntrack):
replies of an allowed connection pass, and replies of a denied one never exist.

Verdicts are cached per flow; selectors cache per distinct label set (``tracer.k8s.selectors``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tracer.errors import ClusterError
from tracer.k8s import explain
from tracer.k8s.cluster import Cluster, Endpoint, Pod
from tracer.k8s.netpol import NetworkPolicy, Peer, PortRule, Rule

PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")
IP_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
FLOW_CACHE_SIZE = 262_144


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The rule that let a connection through: policy, rule and peer (0-based), and what matched."""

    policy: str          # policy name (it lives in the subject pod's namespace)
    rule: int
    peer: int | None     # None: the rule has no from/to (every peer)
    peer_text: str
    port_text: str

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "rule": self.rule, "peer": self.peer, "peer_text": self.peer_text,
                "port": self.port_text}


@dataclass(frozen=True, slots=True)
class DirectionVerdict:
    """Ingress (at the destination) or egress (at the source) of one connection."""

    direction: str                   # "ingress" | "egress"
    subject_ep: Endpoint             # the end whose policies apply
    peer_ep: Endpoint                # the other end
    protocol: str
    port: int | None
    peer_ns_labels: Any              # LabelSet of the peer's namespace (for explanations), or None
    applies: bool                    # the subject is a pod NetworkPolicy can select
    isolated: bool
    policies: tuple[str, ...]        # names of the policies isolating the subject in this direction
    allowed: bool
    matches: tuple[RuleMatch, ...] = ()
    note: str | None = None          # a special case: own node, hostNetwork, not a pod
    near: tuple[str, ...] = ()       # for a denial: rules whose peer matched but not the port, and vice versa

    @property
    def subject(self) -> str:
        return str(self.subject_ep)

    @property
    def peer(self) -> str:
        """The other end, with its labels when it is a pod."""
        return explain.endpoint_text(self.peer_ep, self.peer_ns_labels)

    @property
    def flow(self) -> str:
        return explain.flow_text(self.protocol, self.port)

    @property
    def reason(self) -> str:
        """One sentence: why this direction allows or denies."""
        return explain.direction_reason(self)

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "isolated": self.isolated, "applies": self.applies,
                "subject": self.subject, "policies": list(self.policies),
                "matched": [m.to_dict() for m in self.matches], "reason": self.reason}


@dataclass(frozen=True)
class Verdict:
    """The verdict on one new connection ``src → dst`` on ``protocol``/``port``."""

    src: Endpoint
    dst: Endpoint
    port: int | None
    protocol: str
    ingress: DirectionVerdict
    egress: DirectionVerdict
    warnings: tuple[str, ...] = ()
    backends: tuple[Verdict, ...] = ()      # when dst is a Service: one verdict per backend
    reply: bool = False                     # built by check_packet for a reply packet
    allowed: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.backends:
            ok = all(b.allowed for b in self.backends)
        else:
            ok = self.ingress.allowed and self.egress.allowed
        object.__setattr__(self, "allowed", ok)

    @property
    def verdict(self) -> str:
        return "allow" if self.allowed else "deny"

    @cached_property
    def explanation(self) -> str:
        return explain.verdict_text(self)

    def to_dict(self) -> dict[str, Any]:
        out = {"from": str(self.src), "to": str(self.dst), "port": self.port, "protocol": self.protocol,
               "verdict": self.verdict, "ingress": self.ingress.to_dict(), "egress": self.egress.to_dict(),
               "explanation": self.explanation, "warnings": list(self.warnings)}
        if self.backends:
            out["backends"] = [{"to": str(b.dst), "port": b.port, "verdict": b.verdict} for b in self.backends]
        if self.reply:
            out["reply"] = True
        return out


def normalise_protocol(protocol: str | int | None) -> str:
    """``TCP``/``UDP``/``SCTP``/``ICMP``… from a name or an IP protocol number."""
    if protocol is None:
        return "TCP"
    if isinstance(protocol, int) or (isinstance(protocol, str) and protocol.isdigit()):
        return IP_PROTOCOLS.get(int(protocol), str(int(protocol)))
    return str(protocol).upper()


class PolicyEngine:
    """Judges connections against the cluster's NetworkPolicies; build once per cluster, reuse for every query."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._selected: dict[str, tuple[tuple[NetworkPolicy, ...], tuple[NetworkPolicy, ...]]] = {}
        self._cache: dict[tuple, Verdict] = {}

    # -- isolation -----------------------------------------------------------------------------------------------
    def isolating(self, pod: Pod) -> tuple[tuple[NetworkPolicy, ...], tuple[NetworkPolicy, ...]]:
        """(ingress, egress) policies selecting ``pod``; hostNetwork pods are never selected."""
        found = self._selected.get(pod.key)
        if found is None:
            if pod.host_network:
                found = ((), ())
            else:
                sel = [p for p in self.cluster.policies_in(pod.namespace) if p.pod_selector.matches(pod.labels)]
                found = (tuple(p for p in sel if p.ingress_isolates), tuple(p for p in sel if p.egress_isolates))
            self._selected[pod.key] = found
        return found

    def selected_pods(self, policy: NetworkPolicy) -> list[Pod]:
        return [p for p in self.cluster.pods_in(policy.namespace)
                if not p.host_network and policy.pod_selector.matches(p.labels)]

    # -- matching ------------------------------------------------------------------------------------------------
    def peer_matches(self, policy: NetworkPolicy, peer: Peer, ep: Endpoint) -> bool:
        """Whether ``ep`` is one of the peer's endpoints (ipBlock: any IP, cluster pods included)."""
        if peer.ip_block is not None:
            return ep.ip is not None and peer.ip_block.contains(ep.version, ep.value)
        if not ep.is_policy_pod:
            return False
        if peer.namespace_selector is None:
            if ep.namespace != policy.namespace:
                return False
        elif not peer.namespace_selector.matches(self.cluster.namespace(ep.namespace).labels):
            return False
        return peer.pod_selector is None or peer.pod_selector.matches(ep.pod.labels)

    @staticmethod
    def port_matches(rule: PortRule, protocol: str, port: int | None, dst: Endpoint) -> bool:
        """Whether a ``ports`` entry covers (protocol, port); named ports resolve on the destination pod."""
        if rule.protocol != protocol:
            return False
        if rule.port is None:
            return True
        if port is None:
            return False
        if isinstance(rule.port, int):
            return rule.port <= port <= rule.end_port if rule.end_port is not None else port == rule.port
        if not dst.is_policy_pod:
            return False
        return dst.pod.named_port(rule.port, protocol) == port

    def _rule_match(self, policy: NetworkPolicy, rule: Rule, peer_ep: Endpoint, protocol: str,
                    port: int | None, dst: Endpoint, side: str) -> tuple[RuleMatch | None, str | None]:
        """(match, near-miss text) of one rule."""
        port_text = None
        if rule.ports is None:
            port_text = "any port"
        else:
            for pr in rule.ports:
                if self.port_matches(pr, protocol, port, dst):
                    port_text = pr.describe()
                    break
        peer_idx, peer_text = None, None
        if rule.peers is None:
            peer_text = "any peer"
        else:
            for peer in rule.peers:
                if self.peer_matches(policy, peer, peer_ep):
                    peer_idx, peer_text = peer.index, peer.describe(policy.namespace)
                    break
        if port_text is not None and peer_text is not None:
            return RuleMatch(policy.name, rule.index, peer_idx, peer_text, port_text), None
        if peer_text is not None:
            ports = ", ".join(p.describe() for p in rule.ports or ())
            return None, f"{policy.name} rule {rule.index + 1} matches the peer but only allows {ports}"
        if port_text is not None and rule.peers:
            return None, f"{policy.name} rule {rule.index + 1} allows {port_text} but only {side} " + \
                "; ".join(p.describe(policy.namespace) for p in rule.peers)
        return None, None

    def _direction(self, direction: str, subject: Endpoint, peer: Endpoint, protocol: str, port: int | None,
                   dst: Endpoint) -> DirectionVerdict:
        ns_labels = self.cluster.namespace(peer.namespace).labels if peer.is_policy_pod else None
        head = (direction, subject, peer, protocol, port, ns_labels)
        if not subject.is_policy_pod:
            note = "hostNetwork" if subject.host_network else "not a pod"
            return DirectionVerdict(*head, False, False, (), True, note=note)
        ingress_pols, egress_pols = self.isolating(subject.pod)
        policies = ingress_pols if direction == "ingress" else egress_pols
        names = tuple(p.name for p in policies)
        if direction == "ingress" and peer.kind == "node" and peer.node is not None and peer.node == subject.node:
            return DirectionVerdict(*head, True, bool(policies), names, True,
                                    note="own node")
        if not policies:
            return DirectionVerdict(*head, True, False, (), True)
        matches, near = [], []
        for pol in policies:
            for rule in (pol.ingress if direction == "ingress" else pol.egress):
                m, miss = self._rule_match(pol, rule, peer, protocol, port, dst,
                                           "from" if direction == "ingress" else "to")
                if m is not None:
                    matches.append(m)
                elif miss is not None:
                    near.append(miss)
        return DirectionVerdict(*head, True, True, names, bool(matches),
                                tuple(matches), near=tuple(near) if not matches else ())

    # -- verdicts ------------------------------------------------------------------------------------------------
    def _endpoints(self, src: Any, dst: Any, port: int | None, protocol: str) -> tuple[Endpoint, Endpoint]:
        """Resolve both ends; pods named ``ns/pod`` take the address of the other end's IP family."""
        c = self.cluster
        src_ep = src if isinstance(src, Endpoint) else None
        dst_ep = dst if isinstance(dst, Endpoint) else None
        if src_ep is None and _is_ip(src):
            src_ep = c.resolve_ip(src)
        if dst_ep is None and _is_ip(dst):
            dst_ep = c.resolve(dst, port, protocol) if protocol in PORT_PROTOCOLS else c.resolve_ip(dst)
        if src_ep is None:
            src_ep = c.endpoint(src, dst_ep.version if dst_ep is not None and dst_ep.version else None)
        if dst_ep is None:
            dst_ep = c.endpoint(dst, src_ep.version or None)
        return src_ep, dst_ep

    def check(self, src: str | Endpoint, dst: str | Endpoint, port: int | None = None,
              protocol: str | int = "TCP") -> Verdict:
        """The verdict on a new connection from ``src`` to ``dst`` (``ns/pod``, an IP, or an Endpoint)."""
        protocol = normalise_protocol(protocol)
        if port is not None:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ClusterError(f"port {port!r} is not a port number (0-65535)")
        key = (_key(src), _key(dst), port, protocol)
        found = self._cache.get(key)
        if found is not None:
            return found
        src_ep, dst_ep = self._endpoints(src, dst, port, protocol)
        if dst_ep.kind == "service" and port is not None:
            verdict = self._via_service(src_ep, dst_ep, port, protocol)
        else:
            verdict = self._judge(src_ep, dst_ep, port, protocol)
        if len(self._cache) >= FLOW_CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = verdict
        return verdict

    def _judge(self, src: Endpoint, dst: Endpoint, port: int | None, protocol: str,
               extra: tuple[str, ...] = ()) -> Verdict:
        egress = self._direction("egress", src, dst, protocol, port, dst)
        ingress = self._direction("ingress", dst, src, protocol, port, dst)
        warnings = extra
        if egress.isolated and src.pod is not None:
            dns = self.dns_warning(src.pod)
            if dns:
                warnings = (*warnings, dns)
        return Verdict(src, dst, port, protocol, ingress, egress, warnings)

    def _via_service(self, src: Endpoint, svc_ep: Endpoint, port: int, protocol: str) -> Verdict:
        svc = svc_ep.service
        node_port = svc_ep.node is not None
        targets = self.cluster.service_targets(svc, port, protocol, node_port=node_port)
        if not targets:
            why = (f"service {svc.key} has no {protocol} port {port}" if not any(
                   (p.node_port if node_port else p.port) == port and p.protocol == protocol for p in svc.ports)
                   else f"service {svc.key} has no ready backends")
            return self._judge(src, svc_ep, port, protocol, (why + "; judged at the service address",))
        backends = tuple(self.check(src, ep, tport, protocol) for ep, tport in targets)
        first = next((b for b in backends if not b.allowed), backends[0])
        return Verdict(src, svc_ep, port, protocol, first.ingress, first.egress,
                       tuple(dict.fromkeys(w for b in backends for w in b.warnings)), backends)

    def check_packet(self, src_ip: str, dst_ip: str, proto: str | int, sport: int | None = None,
                     dport: int | None = None, is_reply: bool = False) -> Verdict:
        """The verdict for one packet. A reply (``is_reply``) carries the verdict of the connection it answers:
        ``dst_ip → src_ip`` on ``sport``; such a Verdict has ``reply=True`` and swapped ends."""
        protocol = normalise_protocol(proto)
        ported = protocol in PORT_PROTOCOLS
        if is_reply:
            v = self.check(dst_ip, src_ip, sport if ported else None, protocol)
            return Verdict(v.src, v.dst, v.port, v.protocol, v.ingress, v.egress, v.warnings, v.backends, reply=True)
        return self.check(src_ip, dst_ip, dport if ported else None, protocol)

    def matrix(self, pods: list[Pod], port: int, protocol: str = "TCP") -> list[list[bool]]:
        """Truth table: ``[i][j]`` is whether pods[i] may open a connection to pods[j] (as upstream e2e prints)."""
        eps = [self.cluster.pod_endpoint(p) for p in pods]
        return [[self.check(a, b, port, protocol).allowed for b in eps] for a in eps]

    # -- advice --------------------------------------------------------------------------------------------------
    def dns_warning(self, pod: Pod) -> str | None:
        """The tutorial's pitfall: an egress-isolated pod whose egress rules allow neither UDP/53 nor TCP/53."""
        _, egress = self.isolating(pod)
        if not egress:
            return None
        dns_pods = [p for p in self.cluster.pods if p.label_map.get("k8s-app") == "kube-dns" and p.ip]
        src = self.cluster.pod_endpoint(pod)
        for proto in ("UDP", "TCP"):
            if dns_pods:
                for dp in dns_pods:
                    if self._direction("egress", src, self.cluster.pod_endpoint(dp), proto, 53,
                                       self.cluster.pod_endpoint(dp)).allowed:
                        return None
            else:
                for pol in egress:
                    for rule in pol.egress:
                        if rule.ports is None or any(pr.protocol == proto and (
                                pr.port is None or pr.port == 53 or (isinstance(pr.port, int) and pr.end_port
                                                                     and pr.port <= 53 <= pr.end_port))
                                for pr in rule.ports):
                            return None
        names = ", ".join(p.name for p in egress)
        return (f"{pod.key} is isolated for egress by {names} and no egress rule allows DNS (UDP/53, TCP/53): "
                "name lookups will fail; add an egress rule to kube-dns on UDP and TCP port 53")


def _is_ip(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


def _key(value: Any) -> Any:
    if isinstance(value, Endpoint):
        return (value.kind, value.ip, value.namespace, value.name, value.node)
    return value
