"""The NetworkPolicy tutorial's nine cases (tests/fixtures/k8s/tutorial/): namespaces linux and python, an nginx and
a tomcat pod in each, one manifest per case, and the verdicts the tutorial walks through.

Each case is checked both through the engine and through ``tracer policy check --probes … --json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracer.cli import main
from tracer.k8s import PolicyEngine, load_cluster

TUTORIAL = Path(__file__).parent / "fixtures" / "k8s" / "tutorial"
CLUSTER = TUTORIAL / "cluster.yaml"
DNS = "kube-system/coredns-5d78c9869d-x2x7q"

# (case file, [(from, to, port, protocol, expected verdict)], expects the DNS warning for python/nginx)
CASES = [
    ("01-ingress-podselector.yaml", [
        ("python/nginx", "python/tomcat", 8080, "TCP", "allow"),    # podSelector app=nginx, any port
        ("python/nginx", "python/tomcat", 8009, "TCP", "allow"),
        ("linux/nginx", "python/tomcat", 8080, "TCP", "deny"),      # podSelector alone: the policy's namespace
        ("linux/tomcat", "python/tomcat", 8080, "TCP", "deny"),
        ("python/tomcat", "python/nginx", 80, "TCP", "allow"),      # nginx is not selected: not isolated
        ("linux/nginx", "linux/tomcat", 8080, "TCP", "allow"),      # other namespace: untouched
    ], False),
    ("02-single-port.yaml", [
        ("python/nginx", "python/tomcat", 8080, "TCP", "allow"),
        ("python/nginx", "python/tomcat", 8009, "TCP", "deny"),     # not the allowed port
        ("python/nginx", "python/tomcat", 8080, "UDP", "deny"),     # the port entry is TCP
        ("linux/nginx", "python/tomcat", 8080, "TCP", "deny"),
    ], False),
    ("03-multiple-ports.yaml", [
        ("python/nginx", "python/tomcat", 8080, "TCP", "allow"),
        ("python/nginx", "python/tomcat", 8443, "TCP", "allow"),    # named port https → containerPort 8443
        ("python/nginx", "python/tomcat", 8009, "TCP", "deny"),
        ("linux/nginx", "python/tomcat", 8443, "TCP", "deny"),
    ], False),
    ("04-whole-namespace.yaml", [
        ("python/nginx", "python/tomcat", 8080, "TCP", "allow"),
        ("python/tomcat", "python/nginx", 80, "TCP", "allow"),
        ("linux/nginx", "python/tomcat", 8080, "TCP", "deny"),
        ("linux/tomcat", "python/nginx", 80, "TCP", "deny"),
        (DNS, "python/nginx", 80, "TCP", "deny"),
        ("python/nginx", "linux/tomcat", 8080, "TCP", "allow"),     # ingress policy: egress is open
    ], False),
    ("05-ipblock-except.yaml", [
        ("linux/tomcat", "python/tomcat", 8080, "TCP", "allow"),    # 10.244.2.10 in 10.244.0.0/16
        ("linux/nginx", "python/tomcat", 8080, "TCP", "deny"),      # 10.244.1.10 in the except block
        ("python/nginx", "python/tomcat", 8080, "TCP", "deny"),     # 10.244.1.20 too: ipBlock applies to pod IPs
        ("10.244.3.7", "python/tomcat", 8080, "TCP", "allow"),
        ("172.16.0.9", "python/tomcat", 8080, "TCP", "deny"),
        ("172.31.7.112", "python/tomcat", 8080, "TCP", "allow"),  # tomcat's own node (kubelet probes)
        ("172.31.7.111", "python/tomcat", 8080, "TCP", "deny"),   # another node is just an address
    ], False),
    ("06-namespace-selector.yaml", [
        ("linux/nginx", "python/tomcat", 8080, "TCP", "allow"),
        ("linux/tomcat", "python/tomcat", 8009, "UDP", "allow"),    # no ports: every port and protocol
        ("python/nginx", "python/tomcat", 8080, "TCP", "deny"),     # python is not project=linux
        (DNS, "python/tomcat", 8080, "TCP", "deny"),
    ], False),
    ("07-egress-ipblock-ports.yaml", [
        ("python/nginx", "python/tomcat", 8080, "TCP", "allow"),    # 10.244.2.20 in 10.244.2.0/24
        ("python/nginx", "linux/tomcat", 8080, "TCP", "allow"),
        ("python/nginx", "linux/tomcat", 8443, "TCP", "deny"),
        ("python/nginx", "linux/nginx", 80, "TCP", "deny"),         # 10.244.1.10: outside the block
        ("python/nginx", DNS, 53, "UDP", "deny"),                   # the pitfall: DNS is cut
        ("python/nginx", "8.8.8.8", 443, "TCP", "deny"),
        ("python/tomcat", "python/nginx", 80, "TCP", "allow"),      # egress policy only: ingress open
    ], True),
    ("08-egress-podselector.yaml", [
        ("python/nginx", "python/tomcat", 8080, "TCP", "allow"),
        ("python/nginx", "python/tomcat", 5000, "UDP", "allow"),    # no ports: all
        ("python/nginx", "linux/tomcat", 8080, "TCP", "deny"),      # podSelector alone: own namespace
        ("python/nginx", DNS, 53, "UDP", "deny"),
        ("linux/nginx", "python/nginx", 80, "TCP", "allow"),
    ], True),
    ("09-egress-namespace-selector.yaml", [
        ("python/nginx", "linux/nginx", 80, "TCP", "allow"),
        ("python/nginx", "linux/tomcat", 8080, "TCP", "allow"),
        ("python/nginx", "python/tomcat", 8080, "TCP", "deny"),
        ("python/nginx", DNS, 53, "UDP", "allow"),                  # the DNS rule (ns + pod selector, AND'ed)
        ("python/nginx", DNS, 53, "TCP", "allow"),
        ("python/nginx", DNS, 9153, "TCP", "deny"),
    ], False),
]


@pytest.mark.parametrize(("case", "probes", "dns_warning"), CASES, ids=[c[0][:-5] for c in CASES])
def test_tutorial_case(case: str, probes: list, dns_warning: bool) -> None:
    """Each tutorial manifest gives the verdicts the tutorial reports, with the DNS warning where egress forgets it."""
    engine = PolicyEngine(load_cluster([str(CLUSTER), str(TUTORIAL / case)]))
    for src, dst, port, proto, want in probes:
        v = engine.check(src, dst, port, proto)
        assert v.verdict == want, (case, src, dst, port, proto, v.explanation)
        assert v.allowed is (want == "allow")
        warned = any("DNS" in w for w in v.warnings)
        if src == "python/nginx":
            assert warned is dns_warning, v.explanation


@pytest.mark.parametrize(("case", "probes", "dns_warning"), CASES, ids=[c[0][:-5] for c in CASES])
def test_tutorial_case_cli(case: str, probes: list, dns_warning: bool, tmp_path: Path, capsys) -> None:
    """``tracer policy check --probes FILE --json`` answers the same, in order, with the documented keys."""
    probe_file = tmp_path / "probes.yaml"
    probe_file.write_text("".join(f"- {{from: {s}, to: {d}, port: {p}, protocol: {pr}, note: ignored}}\n"
                                  for s, d, p, pr, _ in probes))
    rc = main(["policy", "check", "--cluster", str(CLUSTER), "--cluster", str(TUTORIAL / case),
               "--probes", str(probe_file), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["verdict"] for r in out] == [w for *_, w in probes]
    for r, (s, d, p, pr, _) in zip(out, probes, strict=True):
        assert (r["from"], r["to"], r["port"], r["protocol"]) == (s, d, p, pr)
        assert {"ingress", "egress", "explanation"} <= set(r)
        assert r["explanation"].startswith("allowed" if r["verdict"] == "allow" else "denied")


def test_explanation_names_policy_rule_and_peer() -> None:
    """A denial names the isolating policy, the peer with its labels and the flow; an allow names the rule."""
    engine = PolicyEngine(load_cluster([str(CLUSTER), str(TUTORIAL / "02-single-port.yaml")]))
    denied = engine.check("python/nginx", "python/tomcat", 8009)
    first = denied.explanation.splitlines()[0]
    assert first.startswith("denied: python/tomcat is isolated for ingress by tomcat-access--networkpolicy; "
                            "no ingress rule allows from python/nginx (app=nginx; namespace project=python) "
                            "on TCP/8009")
    assert "only allows TCP/8080" in first
    allowed = engine.check("python/nginx", "python/tomcat", 8080)
    assert allowed.ingress.matches[0].policy == "tomcat-access--networkpolicy"
    assert allowed.ingress.matches[0].rule == 0 and allowed.ingress.matches[0].peer == 0
    assert "allowed by tomcat-access--networkpolicy ingress rule 1 (peer 1: pods app=nginx in namespace python; " \
           "port TCP/8080)" in allowed.explanation


def test_dns_warning_text_and_explain(capsys) -> None:
    """The egress-without-DNS pitfall is spelled out by check and by explain."""
    rc = main(["policy", "explain", "--cluster", str(CLUSTER), "--cluster",
               str(TUTORIAL / "07-egress-ipblock-ports.yaml"), "python/nginx-egress--networkpolicy"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "selects: pods app=nginx in namespace python: nginx" in out
    assert "rule 1: allow to ipBlock 10.244.2.0/24 on TCP/8080" in out
    assert "no egress rule allows DNS (UDP/53, TCP/53)" in out


def test_service_is_judged_at_its_backend() -> None:
    """A ClusterIP or NodePort is judged at the backend pod on the target port (named targetPort resolved)."""
    engine = PolicyEngine(load_cluster([str(CLUSTER), str(TUTORIAL / "02-single-port.yaml")]))
    v = engine.check("python/nginx", "10.96.120.15", 80)
    assert v.allowed and [str(b.dst) for b in v.backends] == ["python/tomcat"] and v.backends[0].port == 8080
    assert not engine.check("linux/nginx", "10.96.120.15", 80).allowed
    node_port = engine.check("python/nginx", "172.31.7.111", 30080)
    assert node_port.dst.kind == "service" and node_port.allowed


def test_default_test_pod_is_outside_both_namespaces() -> None:
    """The busybox test pod in default is refused by the whole-namespace policy and admitted by ipBlock 10.244/16."""
    whole = PolicyEngine(load_cluster([str(CLUSTER), str(TUTORIAL / "04-whole-namespace.yaml")]))
    assert not whole.check("default/test", "python/nginx", 80).allowed
    block = PolicyEngine(load_cluster([str(CLUSTER), str(TUTORIAL / "05-ipblock-except.yaml")]))
    assert not block.check("default/test", "python/tomcat", 8080).allowed   # 10.244.1.30: in the except block


DEMO = Path(__file__).resolve().parent.parent / "captures" / "demo" / "cluster.yaml"


def test_demo_cluster_dump() -> None:
    """The bundled demo's dump (the lab's cluster as kubectl lists it): tomcat in linux accepts TCP 8080 from
    linux only; EndpointSlices give the Service backends; the rest of the cluster is open."""
    if not DEMO.exists():
        pytest.skip(f"{DEMO} not present")
    engine = PolicyEngine(load_cluster([str(DEMO)]))
    linux_nginx, linux_tomcat = (f"linux/{p.name}" for p in sorted(engine.cluster.pods_in("linux"),
                                                                    key=lambda p: p.name))
    python_nginx = next(p.key for p in engine.cluster.pods_in("python") if p.label_map.get("app") == "nginx")
    assert engine.check(linux_nginx, linux_tomcat, 8080).allowed
    denied = engine.check(python_nginx, linux_tomcat, 8080)
    assert not denied.allowed
    assert denied.explanation.startswith(f"denied: {linux_tomcat} is isolated for ingress by tomcat-allow-linux; "
                                         f"no ingress rule allows from {python_nginx}")
    assert not engine.check("default/test", linux_tomcat, 8080).allowed
    assert not engine.check(linux_nginx, linux_tomcat, 80).allowed          # isolated: only 8080 is open
    assert not engine.check(linux_nginx, linux_tomcat, None, "ICMP").allowed
    assert engine.check(python_nginx, "10.96.100.11", 8080).verdict == "deny"   # via the Service ClusterIP
    assert engine.check(linux_nginx, "10.96.100.11", 8080).verdict == "allow"
    assert engine.check(python_nginx, linux_nginx, 80).allowed              # nginx is not selected


def test_node_addresses_on_the_pod_network() -> None:
    """A node talks to its pods from its flannel cni0/flannel.1 addresses too (kubelet probes come from cni0):
    those are the node, so its own pods accept them whatever the policy; another node's are just addresses."""
    if not DEMO.exists():
        pytest.skip(f"{DEMO} not present")
    engine = PolicyEngine(load_cluster([str(DEMO)]))
    tomcat = next(p for p in engine.cluster.pods_in("linux") if p.label_map.get("app") == "tomcat")
    own = engine.cluster.node(tomcat.node)
    other = next(n for n in engine.cluster.nodes if n.name != tomcat.node)
    bridge = str(__import__("ipaddress").ip_network(own.pod_cidrs[0]).network_address + 1)
    assert engine.cluster.resolve_ip(bridge).kind == "node"
    v = engine.check(bridge, tomcat.key, 8080)
    assert v.allowed and v.ingress.note == "own node"
    other_bridge = str(__import__("ipaddress").ip_network(other.pod_cidrs[0]).network_address + 1)
    assert not engine.check(other_bridge, tomcat.key, 8080).allowed
