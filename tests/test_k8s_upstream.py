"""Cases transcribed from the upstream NetworkPolicy e2e suite, kubernetes/kubernetes
test/e2e/network/netpol/network_policy.go: same pods (x/y/z × a/b/c, the pod subset each test creates), same
policies (written as the manifests upstream's Go structs produce: ``SetSpecIngressRules`` adds policyType Ingress,
``SetSpecEgressRules`` adds Egress), same probes, and upstream's expected reachability as the ground truth.

Each test's docstring is the upstream ``ginkgo.It`` name. Loopback is ignored, as upstream does.
"""

from __future__ import annotations

from pathlib import Path

from tests.k8s_upstream_model import ALL_PODS, Reachability, pod_ip, write_cluster
from tracer.k8s import PolicyEngine, load_cluster

DENY_INGRESS_ALL_X = """
metadata: {name: deny-ingress}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: []}
"""


def engine_for(tmp_path: Path, pods, ports, protocols, policies, **labels) -> PolicyEngine:
    return PolicyEngine(load_cluster(write_cluster(tmp_path, tuple(pods), tuple(ports), tuple(protocols),
                                                   policies, **labels)))


def verify(engine: PolicyEngine, reach: Reachability, port: int, protocol: str = "TCP") -> None:
    bad = reach.mismatches(engine, port, protocol)
    assert not bad, "\n".join(bad)


# -- NetworkPolicy between server and client (TCP) ------------------------------------------------------------------

def test_default_deny_ingress(tmp_path: Path) -> None:
    """should support a 'default-deny-ingress' policy"""
    pods = ("x/a", "x/b", "y/a", "y/b")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", DENY_INGRESS_ALL_X)])
    r = Reachability(pods)
    r.expect_peer((None, None), ("x", None), False)
    verify(e, r, 80)


def test_default_deny_all(tmp_path: Path) -> None:
    """should support a 'default-deny-all' policy"""
    pods = ("x/a", "x/b", "y/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress, Egress], ingress: [], egress: []}
""")])
    r = Reachability(pods)
    r.expect_peer((None, None), ("x", None), False)
    r.expect_peer(("x", None), (None, None), False)
    verify(e, r, 80)


def test_allow_from_pods_within_namespace_by_pod_selector(tmp_path: Path) -> None:
    """should enforce policy to allow traffic from pods within server namespace based on PodSelector"""
    pods = ("x/a", "x/b", "x/c", "y/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: x-a-allows-x-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
""")])
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    r.expect("x/b", "x/a", True)
    verify(e, r, 80)


def test_allow_ingress_for_a_target(tmp_path: Path) -> None:
    """should enforce policy to allow ingress traffic for a target"""
    pods = ("x/a", "x/b", "y/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: []}
"""), ("x", """
metadata: {name: allow-all-to-a}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {}
      namespaceSelector: {}
""")])
    r = Reachability(pods)
    r.expect_all_ingress("x/a", True)
    r.expect_all_ingress("x/b", False)
    verify(e, r, 80)


def test_allow_ingress_from_all_namespaces(tmp_path: Path) -> None:
    """should enforce policy to allow ingress traffic from pods in all namespaces"""
    pods = ("x/a", "x/b", "y/a", "z/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-from-another-ns}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {}}
""")])
    verify(e, Reachability(pods), 80)


NS_Y_TO_X_A = """
metadata: {name: allow-client-a-via-ns-selector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
"""


def test_allow_only_from_other_namespace_by_namespace_selector(tmp_path: Path) -> None:
    """should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector"""
    pods = ("x/a", "x/b", "y/a", "z/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", NS_Y_TO_X_A)])
    r = Reachability(pods)
    r.expect_peer(("x", None), ("x", "a"), False)
    r.expect_peer(("z", None), ("x", "a"), False)
    verify(e, r, 80)


def test_pod_selector_match_expressions(tmp_path: Path) -> None:
    """should enforce policy based on PodSelector with MatchExpressions"""
    pods = ("x/a", "x/b", "y/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: x-a-allows-x-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchExpressions: [{key: pod, operator: In, values: [b]}]
""")])
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    r.expect("x/b", "x/a", True)
    verify(e, r, 80)


def test_namespace_selector_match_expressions(tmp_path: Path) -> None:
    """should enforce policy based on NamespaceSelector with MatchExpressions"""
    pods = ("x/a", "x/b", "y/a", "z/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-ns-y-match-selector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [y]}]
""")])
    r = Reachability(pods)
    r.expect_peer(("x", None), ("x", "a"), False)
    r.expect_peer(("z", None), ("x", "a"), False)
    verify(e, r, 80)


def test_pod_selector_or_namespace_selector(tmp_path: Path) -> None:
    """should enforce policy based on PodSelector or NamespaceSelector"""
    pods = ("x/a", "x/b", "x/c", "y/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-ns-y-match-selector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
    - podSelector: {matchLabels: {pod: b}}
""")])
    r = Reachability(pods)
    r.expect("x/a", "x/a", False)
    r.expect("x/c", "x/a", False)
    verify(e, r, 80)


def test_pod_selector_and_namespace_selector(tmp_path: Path) -> None:
    """should enforce policy based on PodSelector and NamespaceSelector"""
    pods = ("x/a", "x/b", "y/a", "y/b", "z/b")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-ns-y-podselector-and-nsselector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
      podSelector: {matchLabels: {pod: b}}
""")])
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    r.expect("y/b", "x/a", True)
    r.expect("z/b", "x/a", True)
    verify(e, r, 80)


def test_multiple_pod_selectors_and_namespace_selectors(tmp_path: Path) -> None:
    """should enforce policy based on Multiple PodSelectors and NamespaceSelectors"""
    pods = ("x/a", "x/b", "y/a", "y/b", "y/c")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-ns-y-z-pod-b-c}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
      podSelector:
        matchExpressions: [{key: pod, operator: In, values: [b, c]}]
""")])
    r = Reachability(pods)
    r.expect_peer(("x", None), ("x", "a"), False)
    r.expect("y/a", "x/a", False)
    verify(e, r, 80)


def test_any_pod_selectors(tmp_path: Path) -> None:
    """should enforce policy based on any PodSelectors"""
    pods = ("x/a", "x/b", "x/c")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-ns-x-pod-b-c}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
    - podSelector: {matchLabels: {pod: c}}
""")])
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    r.expect("x/b", "x/a", True)
    r.expect("x/c", "x/a", True)
    verify(e, r, 80)


Y_A_TO_X_A = """
metadata: {name: allow-ns-y-pod-a-via-namespace-pod-selector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
      podSelector: {matchLabels: {pod: a}}
"""


def test_only_from_pod_in_other_namespace(tmp_path: Path) -> None:
    """should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and
    NamespaceSelector"""
    pods = ("x/a", "x/b", "y/a", "y/b", "z/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", Y_A_TO_X_A)])
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    r.expect("y/a", "x/a", True)
    verify(e, r, 80)


PORT_81_FROM_Y = """
metadata: {name: allow-client-a-via-ns-selector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
    ports:
    - {port: 81, protocol: TCP}
"""


def test_ports(tmp_path: Path) -> None:
    """should enforce policy based on Ports"""
    pods = ("x/a", "x/b", "y/a", "y/b", "z/a")
    e = engine_for(tmp_path, pods, [81], ["TCP"], [("x", PORT_81_FROM_Y)])
    r = Reachability(pods)
    r.expect_peer(("x", None), ("x", "a"), False)
    r.expect_peer(("y", None), ("x", "a"), True)
    r.expect_peer(("z", None), ("x", "a"), False)
    verify(e, r, 81)


def test_stacked_policies_overlapping_pod_selectors(tmp_path: Path) -> None:
    """should enforce multiple, stacked policies with overlapping podSelectors"""
    pods = ("x/a", "x/b", "y/a", "y/b", "z/a")
    allow = Reachability(pods)
    allow.expect_peer(("x", None), ("x", "a"), False)
    allow.expect_peer(("y", None), ("x", "a"), True)
    allow.expect_peer(("z", None), ("x", "a"), False)
    e = engine_for(tmp_path, pods, [80, 81], ["TCP"], [("x", PORT_81_FROM_Y)])
    verify(e, allow, 81)
    deny = Reachability(pods)
    deny.expect_all_ingress("x/a", False)
    verify(e, deny, 80)
    # "Verifying that we can add a policy to unblock port 80"
    e = engine_for(tmp_path, pods, [80, 81], ["TCP"], [("x", PORT_81_FROM_Y), ("x", """
metadata: {name: allow-client-a-via-ns-selector-80}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
    ports:
    - {port: 80, protocol: TCP}
""")])
    verify(e, allow, 80)


def test_allow_all(tmp_path: Path) -> None:
    """should support allow-all policy"""
    pods = ("x/a", "x/b", "y/a")
    e = engine_for(tmp_path, pods, [80, 81], ["TCP"], [("x", """
metadata: {name: allow-all}
spec: {podSelector: {matchLabels: {}}, policyTypes: [Ingress], ingress: [{}]}
""")])
    verify(e, Reachability(pods), 80)
    verify(e, Reachability(pods), 81)


def test_ingress_on_one_named_port(tmp_path: Path) -> None:
    """should allow ingress access on one named port"""
    pods = ("x/a", "x/b", "y/a")
    e = engine_for(tmp_path, pods, [80, 81], ["TCP"], [("x", """
metadata: {name: allow-all}
spec:
  podSelector: {matchLabels: {}}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - port: serve-81-tcp
""")])
    verify(e, Reachability(pods), 81)
    r = Reachability(pods)
    r.expect_peer((None, None), ("x", None), False)
    verify(e, r, 80)


def test_ingress_from_namespace_on_one_named_port(tmp_path: Path) -> None:
    """should allow ingress access from namespace on one named port"""
    pods = ("x/a", "x/b", "y/a", "z/a")
    e = engine_for(tmp_path, pods, [80, 81], ["TCP"], [("x", """
metadata: {name: allow-client-a-via-ns-selector-80}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
    ports:
    - {port: serve-80-tcp, protocol: TCP}
""")])
    r = Reachability(pods)
    r.expect_peer(("x", None), ("x", "a"), False)
    r.expect_peer(("z", None), ("x", "a"), False)
    verify(e, r, 80)
    fail = Reachability(pods)
    fail.expect_all_ingress("x/a", False)
    verify(e, fail, 81)


def test_egress_on_one_named_port(tmp_path: Path) -> None:
    """should allow egress access on one named port"""
    pods = ("x/a", "y/a")
    e = engine_for(tmp_path, pods, [80, 81], ["TCP"], [("x", """
metadata: {name: allow-egress}
spec:
  podSelector: {matchLabels: {}}
  policyTypes: [Egress]
  egress:
  - ports:
    - port: serve-80-tcp
""")])
    verify(e, Reachability(pods), 80)
    r = Reachability(pods)
    r.expect_peer(("x", None), (None, None), False)
    verify(e, r, 81)


def test_updated_policy(tmp_path: Path) -> None:
    """should enforce updated policy"""
    pods = ("x/a", "y/a")
    e = engine_for(tmp_path, pods, [81], ["TCP"], [("x", """
metadata: {name: allow-all-mutate-to-deny-all}
spec: {podSelector: {matchLabels: {}}, policyTypes: [Ingress], ingress: [{}]}
""")])
    verify(e, Reachability(pods), 81)
    e = engine_for(tmp_path, pods, [81], ["TCP"], [("x", """
metadata: {name: allow-all-mutate-to-deny-all}
spec: {podSelector: {matchLabels: {}}, policyTypes: [Ingress], ingress: []}
""")])
    r = Reachability(pods)
    r.expect_peer((None, None), ("x", None), False)
    verify(e, r, 81)


def test_ingress_from_updated_namespace(tmp_path: Path) -> None:
    """should allow ingress access from updated namespace"""
    pods = ("x/a", "y/a")
    policy = [("x", """
metadata: {name: allow-client-a-via-ns-selector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns2: updated}}
""")]
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    verify(engine_for(tmp_path, pods, [80], ["TCP"], policy), r, 80)
    labelled = engine_for(tmp_path, pods, [80], ["TCP"], policy, ns_labels={"y": {"ns2": "updated"}})
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    r.expect_peer(("y", None), (None, None), True)
    verify(labelled, r, 80)


def test_ingress_from_updated_pod(tmp_path: Path) -> None:
    """should allow ingress access from updated pod"""
    pods = ("x/a", "x/b")
    policy = [("x", """
metadata: {name: allow-client-a-via-pod-selector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b, pod2: updated}}
""")]
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    verify(engine_for(tmp_path, pods, [80], ["TCP"], policy), r, 80)
    labelled = engine_for(tmp_path, pods, [80], ["TCP"], policy, pod_labels={"x/b": {"pod2": "updated"}})
    r.expect("x/b", "x/a", True)
    verify(labelled, r, 80)


def test_deny_ingress_from_other_namespaces(tmp_path: Path) -> None:
    """should deny ingress from pods on other namespaces"""
    pods = ("x/a", "x/b", "y/a", "z/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: deny-empty-policy}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {}}
""")])
    r = Reachability(pods)
    r.expect_peer(("y", None), ("x", None), False)
    r.expect_peer(("z", None), ("x", None), False)
    verify(e, r, 80)


def test_deny_ingress_to_updated_pod(tmp_path: Path) -> None:
    """should deny ingress access to updated pod"""
    pods = ("x/a", "y/a")
    policy = [("x", """
metadata: {name: deny-ingress-via-label-selector}
spec: {podSelector: {matchLabels: {target: isolated}}, policyTypes: [Ingress], ingress: []}
""")]
    verify(engine_for(tmp_path, pods, [80], ["TCP"], policy), Reachability(pods), 80)
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    verify(engine_for(tmp_path, pods, [80], ["TCP"], policy, pod_labels={"x/a": {"target": "isolated"}}), r, 80)


def test_deny_egress_by_pod_selector(tmp_path: Path) -> None:
    """should deny egress from pods based on PodSelector"""
    pods = ("x/a", "x/b", "y/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: deny-egress-pod-a}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress], egress: []}
""")])
    r = Reachability(pods)
    r.expect_all_egress("x/a", False)
    verify(e, r, 80)


def test_deny_egress_from_all_pods_in_namespace(tmp_path: Path) -> None:
    """should deny egress from all pods in a namespace"""
    pods = ("x/a", "x/b", "y/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: deny-egress-ns-x}
spec: {podSelector: {}, policyTypes: [Egress], egress: []}
""")])
    r = Reachability(pods)
    r.expect_peer(("x", None), (None, None), False)
    verify(e, r, 80)


def test_ingress_and_egress_together(tmp_path: Path) -> None:
    """should work with Ingress, Egress specified together"""
    pods = ("x/a", "x/b", "x/c", "y/a")
    e = engine_for(tmp_path, pods, [80, 81], ["TCP"], [("x", """
metadata: {name: allow-client-a-via-pod-selector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress, Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
  egress:
  - ports:
    - port: 80
""")])
    r80 = Reachability(pods)
    r80.expect_all_ingress("x/a", False)
    r80.expect("x/b", "x/a", True)
    verify(e, r80, 80)
    r81 = Reachability(pods)
    r81.expect_all_ingress("x/a", False)
    r81.expect_all_egress("x/a", False)
    r81.expect("x/b", "x/a", True)
    verify(e, r81, 81)


def test_egress_denied_on_client_even_if_server_allows(tmp_path: Path) -> None:
    """should support denying of egress traffic on the client side (even if the server explicitly allows this
    traffic)"""
    pods = ("x/a", "y/a", "y/b")
    from_x_a = """
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}
      podSelector: {matchLabels: {pod: a}}
"""
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-to-ns-y-pod-a}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
      podSelector: {matchLabels: {pod: a}}
"""), ("y", """
metadata: {name: allow-from-xa-on-ya-match-selector}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
""" + from_x_a), ("y", """
metadata: {name: allow-from-xa-on-yb-match-selector}
spec:
  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Ingress]
""" + from_x_a)])
    r = Reachability(pods)
    r.expect_peer(("x", "a"), (None, None), False)
    r.expect_peer((None, None), ("y", "a"), False)
    r.expect_peer(("x", "a"), ("y", "a"), True)
    r.expect_peer((None, None), ("y", "b"), False)
    verify(e, r, 80)


def test_egress_to_server_in_other_namespace(tmp_path: Path) -> None:
    """should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and
    NamespaceSelector"""
    pods = ("x/a", "y/a", "y/b")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-to-ns-y-pod-a}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
      podSelector: {matchLabels: {pod: a}}
""")])
    r = Reachability(pods)
    r.expect_all_egress("x/a", False)
    r.expect("x/a", "y/a", True)
    verify(e, r, 80)


def test_ingress_any_port_on_specific_protocol(tmp_path: Path) -> None:
    """should enforce ingress policy allowing any port traffic to a server on a specific protocol"""
    pods = ("x/a", "y/a")
    e = engine_for(tmp_path, pods, [80], ["TCP", "UDP"], [("x", """
metadata: {name: allow-ingress-by-proto}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - protocol: TCP
""")])
    verify(e, Reachability(pods), 80, "TCP")
    r = Reachability(pods)
    r.expect_peer((None, None), ("x", "a"), False)
    verify(e, r, 80, "UDP")


def test_multiple_ingress_policies_allow_all_takes_precedence(tmp_path: Path) -> None:
    """should enforce multiple ingress policies with ingress allow-all policy taking precedence"""
    pods = ("x/a", "y/a")
    only80 = ("x", """
metadata: {name: allow-ingress-port-80}
spec:
  podSelector: {matchLabels: {}}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - port: 80
""")
    r = Reachability(pods)
    r.expect_peer((None, None), ("x", None), False)
    verify(engine_for(tmp_path, pods, [81], ["TCP"], [only80]), r, 81)
    e = engine_for(tmp_path, pods, [81], ["TCP"], [only80, ("x", """
metadata: {name: allow-ingress}
spec: {podSelector: {matchLabels: {}}, policyTypes: [Ingress], ingress: [{}]}
""")])
    verify(e, Reachability(pods), 81)


def test_multiple_egress_policies_allow_all_takes_precedence(tmp_path: Path) -> None:
    """should enforce multiple egress policies with egress allow-all policy taking precedence"""
    pods = ("x/a", "y/a")
    only80 = ("x", """
metadata: {name: allow-egress-port-80}
spec:
  podSelector: {matchLabels: {}}
  policyTypes: [Egress]
  egress:
  - ports:
    - port: 80
""")
    r = Reachability(pods)
    r.expect_peer(("x", None), (None, None), False)
    verify(engine_for(tmp_path, pods, [81], ["TCP"], [only80]), r, 81)
    e = engine_for(tmp_path, pods, [81], ["TCP"], [only80, ("x", """
metadata: {name: allow-egress}
spec: {podSelector: {matchLabels: {}}, policyTypes: [Egress], egress: [{}]}
""")])
    verify(e, Reachability(pods), 81)


def test_policies_deleted(tmp_path: Path) -> None:
    """should stop enforcing policies after they are deleted"""
    pods = ("x/a", "y/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress, Egress], ingress: [], egress: []}
""")])
    r = Reachability(pods)
    r.expect_peer(("x", None), (None, None), False)
    r.expect_peer((None, None), ("x", None), False)
    verify(e, r, 80)
    verify(engine_for(tmp_path / "..", pods, [80], ["TCP"], []), Reachability(pods), 80)


def test_egress_to_server_in_cidr_block(tmp_path: Path) -> None:
    """should allow egress access to server in CIDR block"""
    pods = ("x/a", "y/a", "y/b")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", f"""
metadata: {{name: allow-client-a-via-cidr-egress-rule}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {{cidr: {pod_ip('y/b')}/32}}
""")])
    r = Reachability(pods)
    r.expect_all_egress("x/a", False)
    r.expect("x/a", "y/b", True)
    verify(e, r, 80)


def _large_cidr_except(name: str, cidr: str) -> str:
    return f"""
metadata: {{name: {name}}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock:
        cidr: {cidr}
        except: [{pod_ip('x/b')}/32]
"""


def test_except_clause_in_cidr_block(tmp_path: Path) -> None:
    """should enforce except clause while egress access to server in CIDR block

    Upstream builds the CIDR with makeLargeCIDRForIP (the /4 around x/b's IP); older upstream versions wrote the
    IP itself with /4 (non-canonical): both must mean 0.0.0.0/4 here."""
    pods = ("x/a", "x/b", "x/c")
    r = Reachability(pods)
    r.expect("x/a", "x/b", False)
    for cidr in ("0.0.0.0/4", f"{pod_ip('x/b')}/4"):
        verify(engine_for(tmp_path, pods, [80], ["TCP"],
                          [("x", _large_cidr_except("allow-client-a-via-cidr-egress-rule", cidr))]), r, 80)


def test_ip_in_both_cidr_and_except(tmp_path: Path) -> None:
    """should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed

    The second step *updates* the policy of the same name to allow only x/b's /32."""
    pods = ("x/a", "x/b", "x/c")
    r = Reachability(pods)
    r.expect("x/a", "x/b", False)
    verify(engine_for(tmp_path, pods, [80], ["TCP"],
                      [("x", _large_cidr_except("allow-client-a-via-cidr-egress-rule", "0.0.0.0/4"))]), r, 80)
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", f"""
metadata: {{name: allow-client-a-via-cidr-egress-rule}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {{cidr: {pod_ip('x/b')}/32}}
""")])
    allow = Reachability(pods)
    allow.expect_all_egress("x/a", False)
    allow.expect("x/a", "x/b", True)
    verify(e, allow, 80)


def test_ingress_and_egress_controlled_independently(tmp_path: Path) -> None:
    """should enforce policies to check ingress and egress policies can be controlled independently based on
    PodSelector"""
    pods = ("x/a", "x/b", "y/a")
    egress = ("x", """
metadata: {name: allow-egress-for-target}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress], egress: [{}]}
""")
    verify(engine_for(tmp_path, pods, [80], ["TCP"], [egress]), Reachability(pods), 80)
    e = engine_for(tmp_path, pods, [80], ["TCP"], [egress, ("x", """
metadata: {name: deny-ingress-via-label-selector}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress], ingress: []}
""")])
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    verify(e, r, 80)


def test_sctp_is_not_tcp(tmp_path: Path) -> None:
    """should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP"""
    pods = ("x/a", "y/a")
    e = engine_for(tmp_path, pods, [81], ["TCP"], [("x", DENY_INGRESS_ALL_X), ("x", """
metadata: {name: allow-only-sctp-ingress-on-port-81}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - {port: 81, protocol: SCTP}
""")])
    r = Reachability(pods)
    r.expect_peer((None, None), ("x", None), False)
    verify(e, r, 81)


def test_sctp_policy_isolates(tmp_path: Path) -> None:
    """should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support
    SCTP"""
    pods = ("x/a", "y/a")
    e = engine_for(tmp_path, pods, [81], ["TCP"], [("x", """
metadata: {name: allow-only-sctp-ingress-on-port-80}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - {port: 80, protocol: SCTP}
""")])
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    verify(e, r, 81)


def test_udp_only_policy_denies_tcp(tmp_path: Path) -> None:
    """should not allow access by TCP when a policy specifies only UDP"""
    pods = ("x/a", "y/a")
    e = engine_for(tmp_path, pods, [81], ["TCP"], [("x", """
metadata: {name: allow-only-udp-ingress-on-port-81}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - {port: 81, protocol: UDP}
""")])
    r = Reachability(pods)
    r.expect_all_ingress("x/a", False)
    verify(e, r, 81)


def test_default_namespace_label_match_labels(tmp_path: Path) -> None:
    """should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label"""
    pods = ("x/a", "x/b", "y/a", "z/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-client-a-via-ns-selector-for-immutable-ns-label}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
""")])
    r = Reachability(pods)
    r.expect_peer(("x", None), ("x", "a"), False)
    r.expect_peer(("z", None), ("x", "a"), False)
    verify(e, r, 80)


def test_default_namespace_label_match_expressions_egress(tmp_path: Path) -> None:
    """should enforce policy based on NamespaceSelector with MatchExpressions using default ns label"""
    pods = ("x/a", "x/b", "y/a", "z/a")
    e = engine_for(tmp_path, pods, [80], ["TCP"], [("x", """
metadata: {name: allow-ns-y-match-selector-for-immutable-ns-label}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [y]}]
""")])
    r = Reachability(pods)
    r.expect_peer(("x", "a"), ("y", None), False)
    verify(e, r, 80)


def test_default_namespace_label_is_added_when_a_dump_lacks_it(tmp_path: Path) -> None:
    """should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label —
    with Namespace objects that do not list the label (hand-written dumps): the API server always sets it."""
    pods = ("x/a", "x/b", "y/a", "z/a")
    paths = write_cluster(tmp_path, pods, (80,), ("TCP",), [("x", NS_Y_TO_X_A)])
    text = Path(paths[0]).read_text().replace("kubernetes.io/metadata.name: y", "other: label")
    Path(paths[0]).write_text(text)
    e = PolicyEngine(load_cluster(paths))
    r = Reachability(pods)
    r.expect_peer(("x", None), ("x", "a"), False)
    r.expect_peer(("z", None), ("x", "a"), False)
    verify(e, r, 80)


# -- the same suite's UDP and SCTP contexts ---------------------------------------------------------------------------

def _ports_81_from_y(protocol: str) -> str:
    return f"""
metadata: {{name: allow-ingress-on-port-81-ns-x}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: y}}}}
    ports:
    - {{port: 81, protocol: {protocol}}}
"""


def test_udp_and_sctp_contexts(tmp_path: Path) -> None:
    """NetworkPolicy between server and client using UDP / using SCTP: should support a 'default-deny-ingress'
    policy; should enforce policy based on Ports; should enforce policy to allow traffic only from a pod in a
    different namespace based on PodSelector and NamespaceSelector"""
    for protocol in ("UDP", "SCTP"):
        pods = ("x/a", "x/b", "y/a", "y/b")
        e = engine_for(tmp_path, pods, [80], [protocol], [("x", """
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: []}
""")])
        r = Reachability(pods)
        r.expect_peer((None, None), ("x", None), False)
        verify(e, r, 80, protocol)

        pods = ("x/a", "x/b", "y/a", "z/a")
        e = engine_for(tmp_path, pods, [81], [protocol], [("x", _ports_81_from_y(protocol))])
        r = Reachability(pods)
        r.expect_peer(("x", None), ("x", "a"), False)
        r.expect_peer(("z", None), ("x", "a"), False)
        verify(e, r, 81, protocol)
        other = "TCP" if protocol != "TCP" else "UDP"
        denied = Reachability(pods)
        denied.expect_all_ingress("x/a", False)
        verify(e, denied, 81, other)   # the rule names one protocol only

        pods = ("x/a", "x/b", "y/a")
        e = engine_for(tmp_path, pods, [80], [protocol], [("x", Y_A_TO_X_A)])
        r = Reachability(pods)
        r.expect_all_ingress("x/a", False)
        r.expect("y/a", "x/a", True)
        verify(e, r, 80, protocol)


def test_matrix_command_prints_upstream_truth_table(tmp_path: Path, capsys) -> None:
    """``tracer policy matrix --json`` gives the 'default-deny-ingress' truth table over the full 3×3 model."""
    import json

    from tracer.cli import main

    paths = write_cluster(tmp_path, ALL_PODS, (80,), ("TCP",), [("x", DENY_INGRESS_ALL_X)])
    args = ["policy", "matrix", "--port", "80", "--json"]
    for p in paths:
        args += ["--cluster", p]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pods"] == sorted(ALL_PODS) and out["port"] == 80 and out["protocol"] == "TCP"
    r = Reachability(ALL_PODS)
    r.expect_peer((None, None), ("x", None), False)
    for i, f in enumerate(out["pods"]):
        for j, t in enumerate(out["pods"]):
            if f != t:
                assert out["allowed"][i][j] == r.expected[(f, t)], (f, t)
