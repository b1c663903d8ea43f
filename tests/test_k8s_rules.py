"""Unit rules of the NetworkPolicy engine, as parametrised tables: selectors, ipBlock, ports, isolation edge cases,
special endpoints (node, hostNetwork, external, Service), stateful replies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tracer.k8s import PolicyEngine, load_cluster
from tracer.k8s.selectors import LabelSet, SelectorError, compile_selector

# -- label selectors ---------------------------------------------------------------------------------------------

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(("selector", "labels", "want"), [
    ({}, LABELS, True),                                                           # empty selects everything
    ({}, {}, True),
    ({"matchLabels": {"app": "web"}}, LABELS, True),
    ({"matchLabels": {"app": "web", "tier": "back"}}, LABELS, False),            # matchLabels AND'ed
    ({"matchLabels": {"app": "web"}}, {}, False),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "stage"]}]}, LABELS, True),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, LABELS, False),
    ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}, LABELS, False),  # absent: no
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}, LABELS, True),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, LABELS, False),
    ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, LABELS, True),  # absent: yes
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, LABELS, True),
    ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, LABELS, False),
    ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, LABELS, True),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, LABELS, False),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, LABELS, False),  # AND
])
def test_selector_matches(selector: dict, labels: dict, want: bool) -> None:
    """matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) are AND'ed; {} selects all."""
    assert compile_selector(selector, "sel").matches(LabelSet.of(labels)) is want


@pytest.mark.parametrize(("selector", "field"), [
    ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}, "sel.matchExpressions[0].operator"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "sel.matchExpressions[0].values"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "sel.matchExpressions[0].values"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "sel.matchExpressions[0].key"),
    ({"matchLabels": {"app": 3}}, "sel.matchLabels.app"),
    ({"matchLabels": "app=web"}, "sel.matchLabels"),
    ({"matchLabel": {"app": "web"}}, "sel.matchLabel"),
    ("app=web", "sel"),
])
def test_selector_errors_name_the_field(selector, field: str) -> None:
    """Selectors the API server rejects are errors naming the exact field."""
    with pytest.raises(SelectorError) as info:
        compile_selector(selector, "sel")
    assert info.value.field == field


# -- a small cluster for the engine -------------------------------------------------------------------------------

BASE = [
    {"kind": "Namespace", "metadata": {"name": "app", "labels": {"team": "a"}}},
    {"kind": "Namespace", "metadata": {"name": "ops"}},
    {"kind": "Node", "metadata": {"name": "n1"}, "status": {"addresses": [
        {"type": "InternalIP", "address": "192.168.1.1"}, {"type": "InternalIP", "address": "fd00:1::1"}]}},
    {"kind": "Node", "metadata": {"name": "n2"}, "status": {"addresses": [
        {"type": "InternalIP", "address": "192.168.1.2"}]}},
    {"kind": "Pod", "metadata": {"name": "web", "namespace": "app", "labels": {"app": "web"}},
     "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [
         {"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "metrics"},
         {"containerPort": 5353, "name": "http", "protocol": "UDP"}]}]},
     "status": {"podIP": "10.1.0.10", "podIPs": [{"ip": "10.1.0.10"}, {"ip": "fd00:10::a"}]}},
    {"kind": "Pod", "metadata": {"name": "api", "namespace": "app", "labels": {"app": "api"}},
     "spec": {"nodeName": "n2", "containers": [{"name": "c", "ports": [{"containerPort": 7000, "name": "http"}]}]},
     "status": {"podIP": "10.1.0.20", "podIPs": [{"ip": "10.1.0.20"}, {"ip": "fd00:10::14"}]}},
    {"kind": "Pod", "metadata": {"name": "tool", "namespace": "ops", "labels": {"app": "tool"}},
     "spec": {"nodeName": "n2", "containers": [{"name": "c"}]}, "status": {"podIP": "10.2.0.5"}},
    {"kind": "Pod", "metadata": {"name": "agent", "namespace": "ops", "labels": {"app": "web"}},
     "spec": {"nodeName": "n2", "hostNetwork": True, "containers": [{"name": "c"}]},
     "status": {"podIP": "192.168.1.2", "podIPs": [{"ip": "192.168.1.2"}]}},
    {"kind": "Service", "metadata": {"name": "web", "namespace": "app"},
     "spec": {"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "type": "NodePort",
              "ports": [{"port": 80, "targetPort": "http", "nodePort": 30080}]}},
]


def engine_with(tmp_path: Path, *policies: dict) -> PolicyEngine:
    docs = [dict(o, apiVersion="v1") for o in BASE]
    for i, spec in enumerate(policies):
        docs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": f"p{i}", "namespace": spec.pop("namespace", "app")}, "spec": spec})
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return PolicyEngine(load_cluster([str(path)]))


WEB_INGRESS = {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}


@pytest.mark.parametrize(("block", "src", "want"), [
    ({"cidr": "10.2.0.0/16"}, "ops/tool", True),
    ({"cidr": "10.2.0.0/16", "except": ["10.2.0.0/24"]}, "ops/tool", False),
    ({"cidr": "10.2.0.5/32"}, "ops/tool", True),
    ({"cidr": "10.2.0.77/16"}, "ops/tool", True),                  # non-canonical: masked to 10.2.0.0/16
    ({"cidr": "10.1.0.20/4"}, "app/api", True),                    # pod IPs too (upstream: ipBlock sees any IP)
    ({"cidr": "0.0.0.0/0", "except": ["10.1.0.20/32"]}, "app/api", False),
    ({"cidr": "0.0.0.0/0"}, "203.0.113.9", True),                  # external address
    ({"cidr": "0.0.0.0/0", "except": ["203.0.113.0/24"]}, "203.0.113.9", False),
    ({"cidr": "10.0.0.0/8"}, "203.0.113.9", False),
    ({"cidr": "192.168.1.0/24"}, "192.168.1.2", True),             # another node, by address
    ({"cidr": "fd00:10::/64"}, "fd00:10::14", True),               # IPv6
    ({"cidr": "fd00:10::/64", "except": ["fd00:10::14/128"]}, "fd00:10::14", False),
    ({"cidr": "fd00:10::1:0/64"}, "fd00:10::14", True),            # non-canonical IPv6 masked
    ({"cidr": "10.0.0.0/8"}, "fd00:10::14", False),                # other family never matches
    ({"cidr": "::/0"}, "10.2.0.5", False),
])
def test_ip_block(tmp_path: Path, block: dict, src: str, want: bool) -> None:
    """ipBlock: CIDR minus except, masked when non-canonical, IPv4 and IPv6, for any address (pods included)."""
    e = engine_with(tmp_path, dict(WEB_INGRESS, ingress=[{"from": [{"ipBlock": block}]}]))
    dst = "fd00:10::a" if ":" in src else "app/web"
    assert e.check(src, dst, 8080).allowed is want


@pytest.mark.parametrize(("ports", "port", "proto", "want"), [
    ([{"port": 8080}], 8080, "TCP", True),                                   # protocol defaults to TCP
    ([{"port": 8080}], 8080, "UDP", False),
    ([{"port": 8080, "protocol": "UDP"}], 8080, "UDP", True),
    ([{"port": 8000, "endPort": 8100}], 8080, "TCP", True),                  # endPort range, inclusive
    ([{"port": 8000, "endPort": 8100}], 8100, "TCP", True),
    ([{"port": 8000, "endPort": 8100}], 8101, "TCP", False),
    ([{"port": 8000, "endPort": 8100}], 7999, "TCP", False),
    ([{"port": "http"}], 8080, "TCP", True),                                 # named: the destination's port
    ([{"port": "http"}], 7000, "TCP", False),                                # api's "http" is not web's
    ([{"port": "http", "protocol": "UDP"}], 5353, "UDP", True),              # name + protocol
    ([{"port": "http", "protocol": "UDP"}], 8080, "UDP", False),
    ([{"port": "metrics"}], 9090, "TCP", True),
    ([{"port": "nosuch"}], 8080, "TCP", False),
    ([{"protocol": "SCTP"}], 9999, "SCTP", True),                            # protocol only: any port
    ([{"protocol": "SCTP"}], 9999, "TCP", False),
    ([{"protocol": "TCP", "port": 8080}, {"protocol": "UDP", "port": 53}], 53, "UDP", True),
    (None, 12345, "UDP", True),                                              # no ports: everything
    (None, None, "ICMP", True),
    ([{"port": 8080}], None, "ICMP", False),                                 # ports never match ICMP
])
def test_ports(tmp_path: Path, ports, port, proto: str, want: bool) -> None:
    """Ports: number, endPort range, named (on the destination pod), protocol default TCP; none = all."""
    rule = {"from": [{"namespaceSelector": {}}]}
    if ports is not None:
        rule["ports"] = ports
    e = engine_with(tmp_path, dict(WEB_INGRESS, ingress=[rule]))
    assert e.check("ops/tool", "app/web", port, proto).allowed is want


def test_named_port_in_egress_resolves_on_destination(tmp_path: Path) -> None:
    """An egress rule's named port is the destination pod's container port of that name."""
    e = engine_with(tmp_path, {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                               "egress": [{"ports": [{"port": "http"}]}]})
    assert e.check("app/web", "app/api", 7000).allowed        # api's http
    assert not e.check("app/web", "app/api", 8080).allowed    # web's http is not api's
    assert not e.check("app/web", "203.0.113.9", 7000).allowed  # an external address has no named ports


@pytest.mark.parametrize(("peer", "src", "want"), [
    ({"podSelector": {"matchLabels": {"app": "api"}}}, "app/api", True),
    ({"podSelector": {"matchLabels": {"app": "tool"}}}, "ops/tool", False),        # alone: policy's namespace
    ({"namespaceSelector": {}}, "ops/tool", True),                                   # {}: every namespace
    ({"namespaceSelector": {"matchLabels": {"team": "a"}}}, "ops/tool", False),
    ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}, "ops/tool", True),
    ({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "api"}}}, "ops/tool", False),  # AND
    ({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "tool"}}}, "ops/tool", True),
    ({"podSelector": {}}, "ops/tool", False),
    ({"namespaceSelector": {}}, "203.0.113.9", False),                               # selectors: pods only
    ({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}, "ops/agent", False),  # hostNet
])
def test_peers(tmp_path: Path, peer: dict, src: str, want: bool) -> None:
    """Peers: podSelector alone = policy's namespace; namespaceSelector {} = all; both in one peer AND'ed;
    selectors never match non-pods or hostNetwork pods."""
    e = engine_with(tmp_path, dict(WEB_INGRESS, ingress=[{"from": [peer]}]))
    assert e.check(src, "app/web", 8080).allowed is want


@pytest.mark.parametrize(("spec", "ingress_isolated", "egress_isolated"), [
    ({"podSelector": {}}, True, False),                                           # default: Ingress only
    ({"podSelector": {}, "egress": [{}]}, True, True),                            # + Egress when egress rules
    ({"podSelector": {}, "egress": []}, True, False),                             # an empty list is no rule
    ({"podSelector": {}, "policyTypes": ["Egress"]}, False, True),
    ({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]}, False, True),  # ingress ignored
    ({"podSelector": {"matchLabels": {"app": "api"}}}, False, False),             # selects someone else
])
def test_policy_types_and_isolation(tmp_path: Path, spec: dict, ingress_isolated: bool,
                                    egress_isolated: bool) -> None:
    """policyTypes defaults to Ingress, plus Egress when egress rules exist; isolation is per direction."""
    e = engine_with(tmp_path, spec)
    v = e.check("app/web", "app/web", 8080)
    assert v.ingress.isolated is ingress_isolated
    assert v.egress.isolated is egress_isolated


def test_rules_and_policies_are_ored(tmp_path: Path) -> None:
    """Rules of one policy and rules of several policies selecting the same pod add up (union)."""
    e = engine_with(tmp_path,
                    dict(WEB_INGRESS, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}]),
                    dict(WEB_INGRESS, ingress=[{"from": [{"namespaceSelector": {}}], "ports": [{"port": 9090}]}]))
    assert e.check("app/api", "app/web", 8080).allowed
    assert e.check("ops/tool", "app/web", 9090).allowed
    assert not e.check("ops/tool", "app/web", 8080).allowed
    v = e.check("ops/tool", "app/web", 9090)
    assert [(m.policy, m.rule, m.peer) for m in v.ingress.matches] == [("p1", 0, 0)]


def test_both_directions_must_allow(tmp_path: Path) -> None:
    """A connection needs the source's egress AND the destination's ingress."""
    e = engine_with(tmp_path,
                    {"namespace": "ops", "podSelector": {}, "policyTypes": ["Egress"],
                     "egress": [{"to": [{"ipBlock": {"cidr": "10.1.0.20/32"}}]}]},
                    dict(WEB_INGRESS, ingress=[{"from": [{"namespaceSelector": {}}]}]))
    v = e.check("ops/tool", "app/web", 8080)
    assert not v.allowed and v.ingress.allowed and not v.egress.allowed
    assert v.explanation.startswith("denied: ops/tool is isolated for egress by p0")
    assert e.check("ops/tool", "app/api", 8080).allowed


def test_own_node_may_always_reach_its_pods(tmp_path: Path) -> None:
    """Traffic from a pod's own node (kubelet probes) is allowed; another node is an ordinary address."""
    e = engine_with(tmp_path, dict(WEB_INGRESS, ingress=[]))
    own = e.check("192.168.1.1", "app/web", 8080)
    assert own.allowed and own.ingress.note == "own node" and "kubelet" in own.explanation
    assert not e.check("192.168.1.2", "app/web", 8080).allowed
    assert e.check("fd00:1::1", "app/web", 8080).allowed        # the node's IPv6 address too


def test_host_network_pods_are_node_traffic(tmp_path: Path) -> None:
    """A hostNetwork pod shares its node's IP, is not selected by policies and is not matched as a pod."""
    e = engine_with(tmp_path, {"namespace": "ops", "podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    c = e.cluster
    assert c.resolve_ip("192.168.1.2").kind == "node"
    agent = c.endpoint("ops/agent")
    assert agent.kind == "node" and agent.host_network
    assert e.check("app/web", "ops/agent", 22).allowed          # not isolated although ops denies all
    assert not e.check("app/web", "ops/tool", 22).allowed
    assert e.isolating(c.pod("ops", "agent")) == ((), ())


def test_resolution(tmp_path: Path) -> None:
    """Any IP resolves to a pod, a node, a Service (ClusterIP or node address + nodePort), or external."""
    c = engine_with(tmp_path).cluster
    assert (c.resolve_ip("10.1.0.10").kind, str(c.resolve_ip("10.1.0.10"))) == ("pod", "app/web")
    assert c.resolve_ip("fd00:10:0::a").name == "web"            # IPv6 in any spelling
    assert c.resolve_ip("192.168.1.1").kind == "node"
    assert c.resolve_ip("10.96.0.10").kind == "service"
    assert c.resolve("192.168.1.1", 30080).kind == "service"
    assert c.resolve("192.168.1.1", 30081).kind == "node"
    assert c.resolve_ip("8.8.8.8").kind == "external"
    assert c.service_backends("app/web") == ["10.1.0.10"]
    assert c.namespaces["ops"].label_map == {"kubernetes.io/metadata.name": "ops"}


def test_service_backend_and_named_target_port(tmp_path: Path) -> None:
    """A Service is judged at its backends on the resolved target port (targetPort: http → 8080)."""
    e = engine_with(tmp_path, dict(WEB_INGRESS, ingress=[{"ports": [{"port": 8080}]}]))
    v = e.check("ops/tool", "10.96.0.10", 80)
    assert v.allowed and [(str(b.dst), b.port) for b in v.backends] == [("app/web", 8080)]
    assert e.check("ops/tool", "192.168.1.2", 30080).allowed     # nodePort on any node


def test_check_packet_replies_are_stateful(tmp_path: Path) -> None:
    """A reply carries the verdict of the connection it answers; the same packet as a new connection may not."""
    e = engine_with(tmp_path, dict(WEB_INGRESS, ingress=[{"from": [{"namespaceSelector": {}}]}]),
                    {"namespace": "ops", "podSelector": {}, "policyTypes": ["Ingress"]})
    # tool → web:8080 allowed; web's SYN-ACK back to tool (ops denies all ingress) is a reply: allowed.
    syn = e.check_packet("10.2.0.5", "10.1.0.10", 6, 41000, 8080)
    synack = e.check_packet("10.1.0.10", "10.2.0.5", "TCP", 8080, 41000, is_reply=True)
    assert syn.allowed and synack.allowed and synack.reply
    assert str(synack.src) == "ops/tool" and synack.port == 8080
    assert not e.check_packet("10.1.0.10", "10.2.0.5", "TCP", 8080, 41000).allowed   # a new connection: no
    assert e.check_packet("10.2.0.5", "10.1.0.10", 1, None, None).allowed            # ICMP: rule without ports


def test_explanation_lists_isolating_policies_and_dns(tmp_path: Path) -> None:
    """Explanations name every isolating policy and warn about egress without DNS."""
    e = engine_with(tmp_path, {"podSelector": {}, "policyTypes": ["Egress"],
                               "egress": [{"ports": [{"port": 443}]}]})
    v = e.check("app/web", "app/api", 80)
    assert not v.allowed
    assert "app/web is isolated for egress by p0; no egress rule allows to app/api (app=api; namespace team=a) " \
           "on TCP/80" in v.explanation
    assert any("DNS" in w for w in v.warnings)


def test_check_many_equals_check_and_restores_the_collector(tmp_path: Path) -> None:
    """check_many gives check's verdicts in order and leaves the garbage collector as it found it."""
    import gc

    e = engine_with(tmp_path, dict(WEB_INGRESS, ingress=[{"from": [{"namespaceSelector": {}}]}]))
    probes = [("ops/tool", "app/web", 8080, "TCP"), ("203.0.113.9", "app/web", 80, "TCP"),
              ("app/web", "ops/tool", None, "ICMP")]
    was = gc.isenabled()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            got = e.check_many(probes)
            assert gc.isenabled() is state
            assert [v.verdict for v in got] == [e.check(*p).verdict for p in probes] == ["allow", "deny", "allow"]
    finally:
        (gc.enable if was else gc.disable)()


def test_documented_exceptions_own_node_both_ways_and_itself(tmp_path: Path) -> None:
    """Kubernetes documentation: traffic to and from the pod's own node is always allowed, and a pod cannot block
    access to itself — even under deny-all in both directions."""
    e = engine_with(tmp_path, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert e.check("app/web", "192.168.1.1", 10250).allowed           # web runs on n1
    assert not e.check("app/web", "192.168.1.2", 10250).allowed       # n2 is another node
    v = e.check("app/web", "app/web", 8080)
    assert v.allowed and v.ingress.note == v.egress.note == "itself" and "cannot block access to itself" in \
        v.explanation
    assert not e.check("app/web", "app/api", 8080).allowed
