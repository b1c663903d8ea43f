"""The lab's plan and its cluster.yaml (no root needed): addresses follow each CNI's conventions, and the cluster
file, read by tracer's own Kubernetes model, says what the lab's datapath enforces."""

from __future__ import annotations

import ipaddress

import pytest

from tracer.lab import policy
from tracer.lab.cluster import write_cluster_yaml
from tracer.lab.plan import make_plan


@pytest.mark.parametrize("mode", ["flannel-vxlan", "host-gw", "calico-vxlan", "calico-ipip", "calico-bgp"])
def test_pods_live_in_their_nodes_pod_cidr(mode) -> None:
    """Every pod IP is inside its node's podCIDR; interface names fit IFNAMSIZ and follow the CNI's pattern."""
    plan = make_plan(mode, 3)
    for p in plan.pods:
        node = plan.node(p.node)
        assert ipaddress.ip_address(p.ip) in ipaddress.ip_network(node.pod_cidr)
        assert len(p.host_iface) <= 15
        assert p.host_iface.startswith("cali" if mode.startswith("calico") else "veth")
    assert all(n.netns.startswith("trl-") for n in plan.nodes)
    assert all(p.netns.startswith("trl-") for p in plan.pods)
    # nginx -> tomcat crosses nodes in both namespaces (the tutorial's scenario).
    assert plan.pod("linux/nginx").node != plan.pod("linux/tomcat").node


@pytest.mark.parametrize("mode", ["flannel-vxlan", "calico-vxlan"])
def test_cluster_yaml_agrees_with_the_enforced_deny(mode, tmp_path) -> None:
    """tracer's policy engine, reading the lab's cluster.yaml, denies exactly the flow the lab drops and allows the
    others; Services resolve to their ClusterIPs and the Nodes carry the CNI's annotations."""
    from tracer.k8s.cluster import load_cluster
    from tracer.k8s.policy import PolicyEngine

    plan = make_plan(mode, 2)
    plan.policy = policy.default_deny(plan)
    path = tmp_path / "cluster.yaml"
    write_cluster_yaml(plan, str(path))
    cluster = load_cluster([str(path)])
    engine = PolicyEngine(cluster)
    tomcat = plan.pod("linux/tomcat")
    for p in plan.pods:
        if p is tomcat:
            continue
        v = engine.check(p.key, tomcat.key, 8080, protocol="TCP")
        assert v.allowed == (p.namespace == "linux"), (p.key, v.explanation)
        # The nft rule drops exactly the sources the policy denies.
        assert (p.ip in plan.policy["allow_ips"]) == v.allowed
    assert engine.check(plan.pod("default/test").key, plan.pod("linux/nginx").key, 80).allowed
    svc = cluster.resolve_ip("10.96.100.11")
    assert svc.kind == "service"
    text = path.read_text()
    assert ("flannel.alpha.coreos.com/backend-type: vxlan" in text) == (mode == "flannel-vxlan")
    assert ("projectcalico.org/IPv4VXLANTunnelAddr" in text) == (mode == "calico-vxlan")
