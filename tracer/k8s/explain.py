"""Plain-words explanations of verdicts and policies, in the spirit of policy-assistant's walkthrough.

Text only (no markup): callers that render it in a terminal UI escape it. A verdict explanation starts with one
line that answers the question ("denied: python/tomcat is isolated for ingress by tomcat-access; no ingress rule
allows python/nginx (app=nginx) on TCP/8080"), then one line per direction and any warnings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: policy imports this module
    from tracer.k8s.cluster import Endpoint
    from tracer.k8s.netpol import NetworkPolicy, Rule
    from tracer.k8s.policy import DirectionVerdict, PolicyEngine, Verdict

NAME_LABEL = "kubernetes.io/metadata.name"


def flow_text(protocol: str, port: int | None) -> str:
    """``TCP/8080``; ``ICMP`` for portless protocols."""
    if port is None:
        return protocol if protocol not in ("TCP", "UDP", "SCTP") else f"{protocol}/any port"
    return f"{protocol}/{port}"


def labels_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def endpoint_text(ep: Endpoint, ns_labels: Any = None) -> str:
    """An endpoint as a person reads it: ``python/nginx (app=nginx; namespace project=python)``."""
    if not ep.is_policy_pod:
        return str(ep)
    parts = []
    if ep.labels:
        parts.append(labels_text(ep.labels))
    extra = {k: v for k, v in (ns_labels.labels if ns_labels is not None else {}).items() if k != NAME_LABEL}
    if extra:
        parts.append(f"namespace {labels_text(extra)}")
    return f"{ep.namespace}/{ep.name}" + (f" ({'; '.join(parts)})" if parts else " (no labels)")


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def direction_reason(d: DirectionVerdict) -> str:
    """Why one direction allows or denies, in one sentence."""
    kind = d.direction
    if not d.applies:
        if d.note == "hostNetwork":
            return (f"{d.subject} uses the host network: NetworkPolicy does not select it, its traffic is node "
                    f"traffic ({kind} not restricted)")
        return f"{d.subject} is not a pod: no {kind} policy applies to it"
    if d.note == "own node":
        if kind == "egress":
            return (f"{d.subject} may always reach its own node ({d.peer_ep})"
                    + (f", whatever {_names(d.policies)} says" if d.policies else ""))
        return (f"{d.subject} accepts traffic from its own node ({d.peer_ep}): kubelet probes are always allowed"
                + (f", whatever {_names(d.policies)} says" if d.policies else ""))
    if d.note == "itself":
        return (f"{d.subject} talks to itself: a pod cannot block access to itself"
                + (f" ({_names(d.policies)} notwithstanding)" if d.policies else ""))
    if not d.isolated:
        ns = d.subject_ep.namespace
        return (f"{d.subject} is not isolated for {kind}: no policy in namespace {ns} selects it with policyType "
                f"{kind.capitalize()}")
    head = f"{d.subject} is isolated for {kind} by {_names(d.policies)}"
    if d.allowed:
        m = d.matches[0]
        peer = "any peer (no from)" if m.peer is None and kind == "ingress" else \
            "any peer (no to)" if m.peer is None else f"peer {m.peer + 1}: {m.peer_text}"
        port = "any port (no ports)" if m.port_text == "any port" else f"port {m.port_text}"
        more = f" (and {len(d.matches) - 1} more rule{'s' if len(d.matches) > 2 else ''})" if len(d.matches) > 1 else ""
        return f"{head}; allowed by {m.policy} {kind} rule {m.rule + 1} ({peer}; {port}){more}"
    side = "from" if kind == "ingress" else "to"
    text = f"{head}; no {kind} rule allows {side} {d.peer} on {d.flow}"
    if d.near:
        text += " (" + "; ".join(near_text(n, side) for n in d.near[:3]) + ")"
    return text


def near_text(near: tuple, side: str) -> str:
    """A rule that half matched: ``p rule 1 matches the peer but only allows TCP/8080`` (or the reverse)."""
    policy, rule, matched, port_hit = near
    if matched == "peer":
        ports = ", ".join(p.describe() for p in rule.ports or ())
        return f"{policy.name} rule {rule.index + 1} matches the peer but only allows {ports}"
    allows = "any port" if port_hit is None else port_hit.describe()
    return (f"{policy.name} rule {rule.index + 1} allows {allows} but only {side} "
            + "; ".join(p.describe(policy.namespace) for p in rule.peers or ()))


def verdict_text(v: Verdict) -> str:
    """The full explanation: the answer, then each direction, then warnings."""
    flow = flow_text(v.protocol, v.port)
    lines = []
    if v.backends:
        ok = sum(b.allowed for b in v.backends)
        word = "allowed" if v.allowed else "denied"
        lines.append(f"{word}: {v.src} → {v.dst} on {flow}: {ok} of {len(v.backends)} backends allow it "
                     "(kube-proxy DNATs to a backend; NetworkPolicy judges the backend pod and target port)")
        for b in v.backends:
            lines.append(f"  backend {b.dst} {flow_text(b.protocol, b.port)}: " + b.explanation.split("\n")[0])
    elif v.allowed:
        lines.append(f"allowed: {v.src} → {v.dst} on {flow}")
    else:
        denied = [d for d in (v.egress, v.ingress) if not d.allowed]
        lines.append("denied: " + "; and ".join(direction_reason(d) for d in denied))
    if v.reply:
        lines.insert(0, f"reply of the connection {v.src} → {v.dst} on {flow} (stateful: judged as that "
                     "connection)")
    if not v.backends:
        # A denial's first line already gives the denying direction(s); list the rest, so nothing is said twice.
        for d in (v.egress, v.ingress):
            if v.allowed or d.allowed:
                lines.append(f"  {d.direction}: {direction_reason(d)}")
    lines += [f"warning: {w}" for w in v.warnings]
    return "\n".join(lines)


def rule_text(policy: NetworkPolicy, rule: Rule, direction: str) -> str:
    """One rule in plain words: ``allow from pods app=nginx in namespace python on TCP/8080``."""
    side = "from" if direction == "ingress" else "to"
    if rule.peers is None:
        who = "from anywhere" if direction == "ingress" else "to anywhere"
    else:
        who = f"{side} " + " or ".join(p.describe(policy.namespace) for p in rule.peers)
    ports = "on any port and protocol" if rule.ports is None else \
        "on " + ", ".join(p.describe() for p in rule.ports)
    return f"allow {who} {ports}"


def policy_text(policy: NetworkPolicy, engine: PolicyEngine) -> str:
    """What ``tracer policy explain`` prints: the pods a policy selects and what it allows, in plain words."""
    pods = engine.selected_pods(policy)
    sel = policy.pod_selector.describe()
    lines = [f"NetworkPolicy {policy.key} ({policy.source})",
             f"selects: {'every pod' if policy.pod_selector.empty else 'pods ' + sel} in namespace "
             f"{policy.namespace}: " + (", ".join(p.name for p in pods) if pods else "no pods in the cluster state"),
             f"policyTypes: {', '.join(policy.policy_types()) or 'none'}"]
    for direction, on, rules in (("ingress", policy.ingress_isolates, policy.ingress),
                                 ("egress", policy.egress_isolates, policy.egress)):
        if not on:
            if rules:
                lines.append(f"{direction}: rules present but ignored (policyTypes has no "
                             f"{direction.capitalize()})")
            continue
        if not rules:
            lines.append(f"{direction}: denies all (isolates the selected pods and allows nothing"
                         f"{' in' if direction == 'ingress' else ' out'})")
            continue
        lines.append(f"{direction}: isolates the selected pods, then:")
        for rule in rules:
            lines.append(f"  rule {rule.index + 1}: {rule_text(policy, rule, direction)}")
            for pr in rule.ports or ():
                if isinstance(pr.port, str):
                    resolved = sorted({f"{p.name}={p.named_port(pr.port, pr.protocol)}" for p in
                                       (pods if direction == "ingress" else engine.cluster.pods)
                                       if p.named_port(pr.port, pr.protocol) is not None})
                    lines.append(f"    named port {pr.port!r} resolves on the destination pods"
                                 + (f": {', '.join(resolved[:8])}" if resolved else ": on no pod here"))
    if policy.egress_isolates:
        for pod in pods[:1]:
            warn = engine.dns_warning(pod)
            if warn:
                lines.append(f"warning: {warn}")
    return "\n".join(lines)
