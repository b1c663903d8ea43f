"""The NetworkPolicy verdict engine (networking.k8s.io/v1 semantics, as the upstream e2e tests expect).

``PolicyEngine(cluster).check(src, dst, port, protocol)`` judges a *new connection*:
- a pod is isolated for ingress (egress) when any policy in its namespace selects it and has that policy type;
- the connection is allowed iff the source's egress allows it (or the source is not egress-isolated, or is not
  a pod) AND the destination's ingress allows it (or it is not ingress-isolated, or is not a pod);
- a direction allows it when any rule of any isolating policy matches both a peer and a port;
- hostNetwork pods are node traffic: never selected, never matched by pod selectors (ipBlock sees the node IP);
- traffic to and from a pod's own node (kubelet probes included) is always allowed, and a pod cannot block access
  to itself (both stated by the Kubernetes documentation);
- a Service address (ClusterIP, or a node address on a NodePort) is judged at its backends with the target port,
  as kube-proxy DNATs before the policy applies; all backends must allow it.

``check_packet(src_ip, dst_ip, proto, sport, dport, is_reply)`` is the packet-level entry: a reply of a connection
is judged as the connection it answers (dst → src on ``sport``), because policy enforcement is stateful (conntrack):
replies of an allowed connection pass, and replies of a denied one never exist.

Verdicts are cached per flow; selectors cache per distinct label set (``tracer.k8s.selectors``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tracer.errors import ClusterError
from tracer.k8s import explain
from tracer.k8s.cluster import Cluster, Endpoint, Pod
from tracer.k8s.gcpause import paused_gc
from tracer.k8s.netpol import NetworkPolicy, Peer, PortRule
from tracer.k8s.objects import show

PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")
IP_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
FLOW_CACHE_SIZE = 262_144


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The rule that let a connection through: policy, rule and peer (0-based); texts are rendered on demand."""

    policy: str              # policy name (it lives in the subject pod's namespace)
    rule: int
    peer: int | None         # None: the rule has no from/to (every peer)
    peer_rule: Peer | None = None
    port_rule: PortRule | None = None
    namespace: str = ""

    @property
    def peer_text(self) -> str:
        return "any peer" if self.peer_rule is None else self.peer_rule.describe(self.namespace)

    @property
    def port_text(self) -> str:
        return "any port" if self.port_rule is None else self.port_rule.describe()

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "rule": self.rule, "peer": self.peer, "peer_text": self.peer_text,
                "port": self.port_text}


@dataclass(slots=True, eq=False)
class DirectionVerdict:
    """Ingress (at the destination) or egress (at the source) of one connection (treat as read-only)."""

    direction: str                   # "ingress" | "egress"
    subject_ep: Endpoint             # the end whose policies apply
    peer_ep: Endpoint                # the other end
    protocol: str
    port: int | None
    applies: bool                    # the subject is a pod NetworkPolicy can select
    isolated: bool
    policies: tuple[str, ...]        # names of the policies isolating the subject in this direction
    allowed: bool
    matches: tuple[RuleMatch, ...] = ()
    note: str | None = None          # a special case: own node, hostNetwork, not a pod
    _engine: Any = None              # to work out near misses when an explanation asks for them
    _near: tuple | None = None

    @property
    def near(self) -> tuple[tuple, ...]:
        """For a denial: (policy, rule, what matched, port rule) of rules that matched the peer or the port."""
        if self._near is None:
            self._near = self._engine.near_misses(self) if self._engine is not None and not self.allowed else ()
        return self._near

    @property
    def peer_ns_labels(self) -> Any:
        return self.peer_ep.ns_labels

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


class Verdict:
    """The verdict on one new connection ``src → dst`` on ``protocol``/``port`` (treat as read-only)."""

    __slots__ = ("src", "dst", "port", "protocol", "ingress", "egress", "warnings", "backends", "reply", "allowed",
                 "_explanation")

    def __init__(self, src: Endpoint, dst: Endpoint, port: int | None, protocol: str, ingress: DirectionVerdict,
                 egress: DirectionVerdict, warnings: tuple[str, ...] = (), backends: tuple[Verdict, ...] = (),
                 reply: bool = False) -> None:
        self.src, self.dst, self.port, self.protocol = src, dst, port, protocol
        self.ingress, self.egress = ingress, egress
        self.warnings = warnings
        self.backends = backends              # when dst is a Service: one verdict per backend
        self.reply = reply                    # built by check_packet for a reply packet
        self.allowed = all(b.allowed for b in backends) if backends else ingress.allowed and egress.allowed
        self._explanation: str | None = None

    @property
    def verdict(self) -> str:
        return "allow" if self.allowed else "deny"

    @property
    def explanation(self) -> str:
        if self._explanation is None:
            self._explanation = explain.verdict_text(self)
        return self._explanation

    def __repr__(self) -> str:
        return f"Verdict({self.verdict} {self.src} -> {self.dst} {explain.flow_text(self.protocol, self.port)})"

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
    if protocol in PORT_PROTOCOLS or protocol is None:
        return protocol or "TCP"
    if isinstance(protocol, int) or (isinstance(protocol, str) and protocol.isdigit()):
        return IP_PROTOCOLS.get(int(protocol), str(int(protocol)))
    return str(protocol).upper()


class PolicyEngine:
    """Judges connections against the cluster's NetworkPolicies; build once per cluster, reuse for every query."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._selected: dict[str, tuple[tuple[NetworkPolicy, ...], tuple[NetworkPolicy, ...]]] = {}
        self._cache: dict[tuple, Verdict] = {}
        self._flat_in: dict[str, tuple[tuple[str, ...], tuple[tuple, ...]]] = {}    # pod key → rules
        self._flat_out: dict[str, tuple[tuple[str, ...], tuple[tuple, ...]]] = {}
        self._index_in: dict[str, tuple[tuple[str, ...], dict, tuple]] = {}
        self._index_out: dict[str, tuple[tuple[str, ...], dict, tuple]] = {}
        self._dns_warnings: dict[str, str | None] = {}
        self._dns_pods: list[Pod] | None = None

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
        elif not peer.namespace_selector.matches(ep.ns_labels or self.cluster.namespace(ep.namespace).labels):
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

    def _rules(self, pod: Pod, direction: str) -> tuple[tuple[str, ...], tuple[tuple, ...]]:
        """(isolating policy names, flattened (policy, rule, ports, peers)) for a pod and direction, cached."""
        cache = self._flat_in if direction == "ingress" else self._flat_out
        found = cache.get(pod.key)
        if found is None:
            ingress, egress = self.isolating(pod)
            policies = ingress if direction == "ingress" else egress
            flat = tuple((pol, rule, rule.ports, rule.peers) for pol in policies
                         for rule in (pol.ingress if direction == "ingress" else pol.egress))
            found = cache[pod.key] = (tuple(p.name for p in policies), flat)
        return found

    def _port_index(self, pod: Pod, direction: str) -> tuple[tuple[str, ...], dict, tuple]:
        """(isolating policy names, {(protocol, port): rules whose ports are all plain numbers}, the other rules:
        no ports, port ranges, named ports, protocol-only entries), each rule as (order, policy, rule, port entry or
        None, peers); order keeps policy/rule order for explanations. Cached per pod and direction."""
        cache = self._index_in if direction == "ingress" else self._index_out
        found = cache.get(pod.key)
        if found is None:
            exact: dict[tuple[str, int], list] = {}
            other = []
            for order, (pol, rule, ports, peers) in enumerate(self._rules(pod, direction)[1]):
                if ports is not None and all(pr.port.__class__ is int and pr.end_port is None for pr in ports):
                    for pr in ports:
                        exact.setdefault((pr.protocol, pr.port), []).append((order, pol, rule, pr, peers))
                else:
                    other.append((order, pol, rule, ports, peers))
            found = cache[pod.key] = (self._rules(pod, direction)[0], exact, tuple(other))
        return found

    def _direction(self, direction: str, subject: Endpoint, peer: Endpoint, protocol: str, port: int | None,
                   dst: Endpoint) -> DirectionVerdict:
        """Whether ``subject``'s policies in ``direction`` let ``peer`` through on (protocol, port)."""
        if not subject.is_policy_pod:
            note = "hostNetwork" if subject.host_network else "not a pod"
            return DirectionVerdict(direction, subject, peer, protocol, port, False, False, (), True, note=note)
        cache = self._index_in if direction == "ingress" else self._index_out
        names, exact, other = cache.get(subject.pod.key) or self._port_index(subject.pod, direction)
        # Exceptions the Kubernetes documentation states: "traffic to and from the node where a Pod is running is
        # always allowed, regardless of the IP address of the Pod or the node", and "a Pod cannot block access to
        # itself".
        if peer.kind == "node" and peer.node is not None and peer.node == subject.node:
            return DirectionVerdict(direction, subject, peer, protocol, port, True, bool(names), names, True,
                                    note="own node")
        if peer.pod is not None and peer.pod.key == subject.pod.key:
            return DirectionVerdict(direction, subject, peer, protocol, port, True, bool(names), names, True,
                                    note="itself")
        if not names:
            return DirectionVerdict(direction, subject, peer, protocol, port, True, False, (), True)
        # The engine's hot path: candidate rules by (protocol, port) first, then the peers of those only.
        candidates = []
        for order, pol, rule, ports, peers in other:
            port_hit = None
            if ports is not None:
                for pr in ports:
                    if pr.protocol != protocol:
                        continue
                    want = pr.port
                    if want is None:
                        port_hit = pr
                        break
                    if port is None:
                        continue
                    if want.__class__ is int:
                        if (want <= port <= pr.end_port) if pr.end_port is not None else want == port:
                            port_hit = pr
                            break
                    elif dst.is_policy_pod and dst.pod.named_port(want, protocol) == port:
                        port_hit = pr
                        break
                if port_hit is None:
                    continue
            candidates.append((order, pol, rule, port_hit, peers))
        hits = exact.get((protocol, port))
        if hits:
            candidates = sorted(candidates + hits, key=_order) if candidates else hits
        matches = []
        if candidates:
            peer_pod = peer.is_policy_pod
            peer_ns, peer_ns_labels = peer.namespace, peer.ns_labels
            peer_labels = peer.pod.labels if peer_pod else None
            has_ip, ver, val = peer.ip is not None, peer.version, peer.value
            for _, pol, rule, port_hit, peers in candidates:
                if peers is None:
                    matches.append(RuleMatch(pol.name, rule.index, None, None, port_hit, pol.namespace))
                    continue
                for pe in peers:
                    block = pe.ip_block
                    if block is not None:
                        if not (has_ip and block.contains(ver, val)):
                            continue
                    elif not peer_pod:
                        continue
                    else:
                        nss = pe.namespace_selector
                        if nss is None:
                            if peer_ns != pol.namespace:
                                continue
                        elif not nss.matches(peer_ns_labels):
                            continue
                        if pe.pod_selector is not None and not pe.pod_selector.matches(peer_labels):
                            continue
                    matches.append(RuleMatch(pol.name, rule.index, pe.index, pe, port_hit, pol.namespace))
                    break
        return DirectionVerdict(direction, subject, peer, protocol, port, True, True, names, bool(matches),
                                tuple(matches), _engine=self)

    def near_misses(self, d: DirectionVerdict) -> tuple[tuple, ...]:
        """Rules of a denying direction that matched the peer but not the port, or the port but not the peer."""
        if not d.subject_ep.is_policy_pod:
            return ()
        dst = d.subject_ep if d.direction == "ingress" else d.peer_ep
        out = []
        for pol, rule, ports, peers in self._rules(d.subject_ep.pod, d.direction)[1]:
            port_hit = next((pr for pr in ports if self.port_matches(pr, d.protocol, d.port, dst)), None) \
                if ports is not None else None
            port_ok = ports is None or port_hit is not None
            peer_ok = peers is None or any(self.peer_matches(pol, pe, d.peer_ep) for pe in peers)
            if port_ok != peer_ok:
                out.append((pol, rule, "peer" if peer_ok else "port", port_hit))
        return tuple(out)

    # -- verdicts ------------------------------------------------------------------------------------------------
    def _endpoints(self, src: Any, dst: Any, port: int | None, protocol: str) -> tuple[Endpoint, Endpoint]:
        """Resolve both ends; pods named ``ns/pod`` take the address of the other end's IP family."""
        c = self.cluster
        src_ep = src if isinstance(src, Endpoint) else None
        dst_ep = dst if isinstance(dst, Endpoint) else None
        try:
            if src_ep is None and _is_ip(src):
                src_ep = c.resolve_ip(src)
            if dst_ep is None and _is_ip(dst):
                dst_ep = c.resolve(dst, port, protocol) if protocol in PORT_PROTOCOLS and port is not None \
                    else c.resolve_ip(dst)
        except ValueError:
            bad = dst if src_ep is not None else src
            raise ClusterError(f"{show(bad)} is neither NAMESPACE/POD nor an IP address") from None
        if src_ep is None:
            src_ep = c.endpoint(src, dst_ep.version if dst_ep is not None and dst_ep.version else None)
        if dst_ep is None:
            dst_ep = c.endpoint(dst, src_ep.version or None)
        return src_ep, dst_ep

    def check(self, src: str | Endpoint, dst: str | Endpoint, port: int | None = None,
              protocol: str | int = "TCP") -> Verdict:
        """The verdict on a new connection from ``src`` to ``dst`` (``ns/pod``, an IP, or an Endpoint)."""
        if protocol.__class__ is not str or protocol not in PORT_PROTOCOLS:
            protocol = normalise_protocol(protocol)
        if port is not None and (port.__class__ is not int or not 0 <= port <= 65535):
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ClusterError(f"port {show(port)} is not a port number (0-65535)")
            port = int(port)   # an int subclass (numpy integer): a plain int for the cache key and the text
        key = (src if src.__class__ is str else _key(src), dst if dst.__class__ is str else _key(dst), port,
               protocol)
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
        ingress = self._direction("ingress", dst, src, protocol, port, dst)
        egress = self._direction("egress", src, dst, protocol, port, dst)
        warnings = extra
        if src.is_policy_pod and self.isolating(src.pod)[1]:
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
            return Verdict(v.src, v.dst, v.port, v.protocol, v.ingress, v.egress, v.warnings, v.backends,
                           reply=True)
        return self.check(src_ip, dst_ip, dport if ported else None, protocol)

    def check_many(self, probes: Iterable[tuple]) -> list[Verdict]:
        """``check(*probe)`` for each (src, dst, port, protocol) probe, as one batch (collector paused: see
        ``tracer.k8s.gcpause``); the same verdicts, in order."""
        check = self.check
        with paused_gc():
            return [check(*probe) for probe in probes]

    def matrix(self, pods: list[Pod], port: int, protocol: str = "TCP") -> list[list[bool]]:
        """Truth table: ``[i][j]`` is whether pods[i] may open a connection to pods[j] (as upstream e2e prints)."""
        eps = [self.cluster.pod_endpoint(p) for p in pods]
        with paused_gc():
            return [[self.check(a, b, port, protocol).allowed for b in eps] for a in eps]

    # -- advice --------------------------------------------------------------------------------------------------
    def dns_warning(self, pod: Pod) -> str | None:
        """The tutorial's pitfall: an egress-isolated pod whose egress rules allow neither UDP/53 nor TCP/53."""
        if pod.key not in self._dns_warnings:
            self._dns_warnings[pod.key] = self._dns_warning(pod)
        return self._dns_warnings[pod.key]

    def _dns_warning(self, pod: Pod) -> str | None:
        _, egress = self.isolating(pod)
        if not egress:
            return None
        if self._dns_pods is None:
            # CoreDNS and kube-dns both carry k8s-app=kube-dns (the label the kube-dns Service selects).
            self._dns_pods = [p for p in self.cluster.pods if p.label_map.get("k8s-app") == "kube-dns" and p.ip]
        dns_pods = self._dns_pods
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


def _order(candidate: tuple) -> int:
    return candidate[0]


def _is_ip(value: Any) -> bool:
    """An address rather than ``ns/pod``: addresses never hold a slash, ``ns/pod`` always does (a string that is
    neither fails later, in ``Cluster.resolve_ip``/``endpoint``, with a message saying so)."""
    return isinstance(value, str) and "/" not in value


def _key(value: Any) -> Any:
    if isinstance(value, Endpoint):
        return (value.kind, value.ip, value.namespace, value.name, value.node)
    return value
