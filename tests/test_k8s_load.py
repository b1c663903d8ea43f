"""Loading cluster state: v1 Lists, multi-document YAML, JSON, single objects, directories; and bad input as one
ClusterError line naming file, object and field (exit status 2 through the CLI, never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tracer.cli import main
from tracer.errors import ClusterError
from tracer.k8s import load_cluster
from tracer.k8s import objects

TUTORIAL = Path(__file__).parent / "fixtures" / "k8s" / "tutorial"

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns1", "labels": {"a": "b"}},
       "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}, "status": {"podIP": "10.0.0.1"}}
POLICY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "ns1"},
          "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}}


@pytest.mark.parametrize("form", ["list-yaml", "list-json", "multi-doc", "single-files", "directory"])
def test_input_forms(tmp_path: Path, form: str) -> None:
    """The same objects load from a v1 List (YAML or JSON), a multi-document stream, single files or a directory."""
    items = [POD, POLICY, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}]
    if form == "list-yaml":
        (tmp_path / "c.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
        paths = [tmp_path / "c.yaml"]
    elif form == "list-json":
        (tmp_path / "c.json").write_text(json.dumps({"apiVersion": "v1", "kind": "PodList", "items": items}))
        paths = [tmp_path / "c.json"]
    elif form == "multi-doc":
        (tmp_path / "c.yaml").write_text("---\n" + yaml.safe_dump_all(items) + "---\n")
        paths = [tmp_path / "c.yaml"]
    else:
        for i, item in enumerate(items):
            (tmp_path / f"{i}.yml").write_text(yaml.safe_dump(item))
        (tmp_path / "notes.txt").write_text("not read")
        paths = [tmp_path] if form == "directory" else sorted(tmp_path.glob("*.yml"))
    c = load_cluster([str(p) for p in paths])
    assert [p.key for p in c.pods] == ["ns1/p"]
    assert [p.key for p in c.policies] == ["ns1/np"]
    assert c.skipped == {"ConfigMap": 1}
    assert c.namespaces["ns1"].label_map == {"kubernetes.io/metadata.name": "ns1"}   # referenced only


def _bad(tmp_path: Path, obj) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(obj if isinstance(obj, str) else yaml.safe_dump(obj))
    with pytest.raises(ClusterError) as info:
        load_cluster([str(path)])
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def _policy(**spec) -> dict:
    return dict(POLICY, spec=spec)


@pytest.mark.parametrize(("obj", "words"), [
    ({k: v for k, v in POLICY.items() if k != "spec"}, ["NetworkPolicy ns1/np", "spec", "missing"]),
    (_policy(ingress=[]), ["spec.podSelector", "missing"]),
    (_policy(podSelector={}, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]),
     ["spec.ingress[0].from[0].ipBlock.cidr", "10.0.0.300/8"]),
    (_policy(podSelector={}, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]), ["ipBlock.cidr"]),
    (_policy(podSelector={}, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["fd00::/64"]}}]}]),
     ["ipBlock.except[0]", "IPv6"]),
    (_policy(podSelector={}, ingress=[{"ports": [{"protocol": "ICMP", "port": 1}]}]),
     ["spec.ingress[0].ports[0].protocol", "unknown protocol 'ICMP'"]),
    (_policy(podSelector={}, egress=[{"ports": [{"port": 70000}]}]), ["spec.egress[0].ports[0].port", "70000"]),
    (_policy(podSelector={}, egress=[{"ports": [{"port": "Not_A_Name"}]}]), ["spec.egress[0].ports[0].port"]),
    (_policy(podSelector={}, egress=[{"ports": [{"port": "http", "endPort": 90}]}]), ["endPort", "named"]),
    (_policy(podSelector={}, egress=[{"ports": [{"port": 90, "endPort": 80}]}]), ["endPort", "80"]),
    (_policy(podSelector={}, ingress=[{"from": [{}]}]), ["spec.ingress[0].from[0]", "needs"]),
    (_policy(podSelector={}, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]),
     ["spec.ingress[0].from[0]", "ipBlock cannot be combined"]),
    (_policy(podSelector={}, ingress={"from": []}), ["spec.ingress", "list"]),
    (_policy(podSelector={}, policyTypes=["Ingres"]), ["spec.policyTypes[0]", "Ingres"]),
    (_policy(podSelector={"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}),
     ["spec.podSelector.matchExpressions[0].operator"]),
    (_policy(podSelector="app=web"), ["spec.podSelector", "mapping"]),
    (dict(POLICY, apiVersion="extensions/v1beta1"), ["apiVersion"]),
    (dict(POD, status={"podIP": "10.0.0.999"}), ["Pod ns1/p", "status.podIP", "10.0.0.999"]),
    (dict(POD, spec={"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}),
     ["spec.containers[0].ports[0].containerPort"]),
    (dict(POD, spec={"containers": [{"name": "c", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}]}),
     ["spec.containers[0].ports[0].protocol", "HTTP"]),
    (dict(POD, metadata={"name": "p", "namespace": "ns1", "labels": {"version": 2}}), ["metadata.labels.version"]),
    (dict(POD, metadata={"name": "p", "namespace": "Bad/NS"}), ["metadata.namespace"]),
    (dict(POD, metadata={"namespace": "ns1"}), ["metadata.name", "missing"]),
    (dict(POD, spec={"hostNetwork": "yes"}), ["spec.hostNetwork"]),
    ({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
      "status": {"addresses": [{"type": "InternalIP", "address": "node-1"}]}}, ["status.addresses[0].address"]),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "ns1"},
      "spec": {"ports": [{"port": 80, "protocol": "tcpx"}]}}, ["spec.ports[0].protocol"]),
    ({"metadata": {"name": "x"}}, ["kind", "missing"]),
    ("kind: Pod\nmetadata: {name: [unclosed\n", ["not valid YAML", "line"]),
    ("- a\n- b\n", ["expected a Kubernetes object"]),
    ("kind: List\nitems: 3\n", ["items", "list"]),
])
def test_bad_input_names_file_object_and_field(tmp_path: Path, obj, words: list[str]) -> None:
    """Wrong input is one ClusterError line naming the file, the object and the field."""
    message = _bad(tmp_path, obj)
    for word in words:
        assert word in message, message


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    """A billion-laughs document is refused with a clear message, quickly."""
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(7)]
    message = _bad(tmp_path, "\n".join(levels) + "\nkind: Pod\nmetadata: {name: p, labels: *h}\n")
    assert "alias" in message


def test_honest_anchors_are_fine(tmp_path: Path) -> None:
    """A manifest that reuses a selector through an anchor loads."""
    text = ("kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\nmetadata: {name: np, namespace: ns1}\n"
            "spec:\n  podSelector: &sel {matchLabels: {app: web}}\n  ingress:\n  - from:\n    - podSelector: *sel\n")
    (tmp_path / "np.yaml").write_text(text)
    assert load_cluster([str(tmp_path / "np.yaml")]).policies[0].pod_selector.describe() == "app=web"


def test_huge_file_is_refused(tmp_path: Path, monkeypatch) -> None:
    """A file over the size limit is refused before it is read, with the limit in the message."""
    monkeypatch.setattr(objects, "MAX_FILE_BYTES", 1024)
    message = _bad(tmp_path, "# " + "x" * 2000 + "\nkind: Namespace\nmetadata: {name: a}\n")
    assert "MiB" in message


def test_deep_nesting_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """Deeply nested flow and block collections end in a ClusterError (libyaml's composer would crash)."""
    for text in ("kind: Pod\nspec: " + "[" * 50_000 + "]" * 50_000 + "\n", "- " * 50_000 + "x\n"):
        (tmp_path / "deep.yaml").write_text(text)
        with pytest.raises(ClusterError):
            load_cluster([str(tmp_path / "deep.yaml")])


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="no such file"):
        load_cluster([str(tmp_path / "nope.yaml")])


# -- the CLI ------------------------------------------------------------------------------------------------------

def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("content", [
    "kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\nmetadata: {name: np, namespace: a}\n",
    "kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\nmetadata: {name: np, namespace: a}\nspec:\n"
    "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 300.1.1.1/8}}]}]\n",
    "\x00\x01 not yaml",
])
def test_cli_bad_cluster_exits_2_with_one_line(tmp_path: Path, capsys, content: str) -> None:
    """``tracer policy check`` on bad cluster state: exit 2, one line on stderr naming the file, no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, out, err = cli(capsys, "policy", "check", "--cluster", str(bad), "--from", "a/x", "--to", "a/y",
                         "--port", "80")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("tracer: ") and str(bad) in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("probes", "words"), [
    ("from: a\n", ["expected a YAML list"]),
    ("- {to: python/nginx, port: 80}\n", ["probe 1", "from"]),
    ("- {from: python/nginx, to: python/tomcat, port: 80, protocol: HTTP}\n", ["probe 1", "unknown protocol"]),
    ("- {from: python/nginx, to: python/tomcat, port: 99999}\n", ["probe 1", "port"]),
    ("- {from: python/nginx, to: python/tomcat}\n", ["probe 1", "port: missing"]),
    ("- {from: python/nginx, to: python/nosuch, port: 80}\n", ["no pod python/nosuch"]),
    ("- {from: python/nginx, to: 'a/b/c', port: 80}\n", ["neither NAMESPACE/POD nor an IP"]),
])
def test_cli_bad_probes(tmp_path: Path, capsys, probes: str, words: list[str]) -> None:
    """Bad probe files and unknown endpoints: exit 2 and a line that says what is wrong."""
    path = tmp_path / "probes.yaml"
    path.write_text(probes)
    code, out, err = cli(capsys, "policy", "check", "--cluster", str(TUTORIAL / "cluster.yaml"), "--probes", str(path))
    assert code == 2 and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


def test_cli_text_and_json_single_check(capsys) -> None:
    """Without --json the explanation is printed; with --json one object with the documented keys."""
    base = ["policy", "check", "--cluster", str(TUTORIAL / "cluster.yaml"), "--cluster",
            str(TUTORIAL / "06-namespace-selector.yaml"), "--from", "10.244.1.10", "--to", "python/tomcat",
            "--port", "8080"]
    code, out, _ = cli(capsys, *base)
    assert code == 0 and out.startswith("allowed: linux/nginx → python/tomcat on TCP/8080")
    code, out, _ = cli(capsys, *base, "--json")
    obj = json.loads(out)
    assert obj["from"] == "10.244.1.10" and obj["src"] == "linux/nginx" and obj["verdict"] == "allow"
    assert obj["ingress"]["matched"][0]["policy"] == "tomcat-from-linux--networkpolicy"
    assert obj["egress"]["isolated"] is False


def test_cli_matrix_text_and_namespace_filter(capsys) -> None:
    """The matrix prints '.'/'X' like upstream; --namespace narrows the pods."""
    code, out, _ = cli(capsys, "policy", "matrix", "--cluster", str(TUTORIAL / "cluster.yaml"), "--cluster",
                       str(TUTORIAL / "04-whole-namespace.yaml"), "--namespace", "python", "--namespace", "linux",
                       "--port", "8080")
    lines = out.splitlines()
    assert code == 0 and "TCP/8080" in lines[0]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    # columns: linux/nginx linux/tomcat python/nginx python/tomcat
    assert rows["linux/nginx"] == [".", ".", "X", "X"]
    assert rows["python/nginx"] == [".", ".", ".", "."]


def test_cli_explain_unknown_policy(capsys) -> None:
    code, _, err = cli(capsys, "policy", "explain", "--cluster", str(TUTORIAL / "cluster.yaml"), "--cluster",
                       str(TUTORIAL / "01-ingress-podselector.yaml"), "python/nope")
    assert code == 2 and "tomcat-access--networkpolicy" in err


def test_hostile_text_never_reaches_the_terminal_raw(tmp_path: Path, capsys) -> None:
    """Control characters smuggled in through JSON/YAML escapes are shown escaped, in output and in errors."""
    pod = json.loads(json.dumps(POD))
    pod["metadata"]["labels"] = {"app": "\x1b[31mred\x07"}
    other = dict(json.loads(json.dumps(POD)), metadata={"name": "q", "namespace": "ns1"})
    other["status"] = {"podIP": "10.0.0.2"}
    deny = _policy(podSelector={}, ingress=[])
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"kind": "List", "items": [pod, other, deny]}))
    code, out, _ = cli(capsys, "policy", "check", "--cluster", str(path), "--from", "ns1/p", "--to", "ns1/q",
                       "--port", "80")
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "\\x1b[31mred\\x07" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text('kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\nmetadata: {name: "x\\e[2J", namespace: a}\n')
    code, _, err = cli(capsys, "policy", "check", "--cluster", str(bad), "--from", "a/x", "--to", "a/y", "--port", "1")
    assert code == 2 and "\x1b" not in err and "\\x1b[2J" in err


def test_later_objects_replace_earlier_ones() -> None:
    """An object given again replaces the earlier one (kubectl apply): a fixed policy file answers "what if"."""
    from tracer.k8s import PolicyEngine

    cluster = TUTORIAL / "cluster.yaml"
    before = PolicyEngine(load_cluster([str(cluster), str(TUTORIAL / "02-single-port.yaml")]))
    after = PolicyEngine(load_cluster([str(cluster), str(TUTORIAL / "02-single-port.yaml"),
                                       str(TUTORIAL / "03-multiple-ports.yaml")]))
    assert not before.check("python/nginx", "python/tomcat", 8443).allowed
    assert after.check("python/nginx", "python/tomcat", 8443).allowed
    assert len(after.cluster.policies) == 1 and after.cluster.skipped["replaced NetworkPolicy"] == 1
    twice = load_cluster([str(cluster), str(cluster)])
    assert len(twice.pods) == len(load_cluster([str(cluster)]).pods)
