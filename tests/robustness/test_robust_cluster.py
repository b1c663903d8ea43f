"""Hostile cluster files: alias bombs, huge and deep documents, code-executing tags, wrong types, unknown kinds.

Cluster dumps are copied off clusters an attacker may have touched. ``load_cluster`` must read them with
safe_load rules only, refuse bombs within bounded time and memory, and report bad input as one
``ClusterError`` line naming the file and the field; the CLI turns it into exit status 2.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import yaml

from .runner import need_command, run_cli, time_bound

REPO = Path(__file__).resolve().parents[2]
DEMO_CLUSTER = REPO / "captures" / "demo" / "cluster.yaml"
PEAK_CAP = 256 * 2**20


def _load(path: Path):
    from tracer.k8s.cluster import load_cluster

    return load_cluster([str(path)])


def _expect_cluster_error(path: Path, *, seconds: float = 20.0, must_name: tuple[str, ...] = ()) -> str:
    """load_cluster(path) must raise one ClusterError line naming the file (and ``must_name`` words) in time."""
    from tracer.errors import ClusterError

    tracemalloc.start()
    try:
        with time_bound(seconds), pytest.raises(ClusterError) as info:
            _load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "\n" not in message.strip(), f"error is not one line: {message!r}"
    assert str(path) in message or path.name in message, f"error does not name the file: {message!r}"
    for word in must_name:
        assert word in message, f"error does not name {word!r}: {message!r}"
    assert peak < PEAK_CAP, f"refusing {path.name} took {peak / 2**20:.0f} MiB"
    return message


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
kind: Pod
metadata: {name: lol, namespace: default, labels: *i}
"""

# The bomb hidden where a parser will walk it: the labels of a pod inside a List.
BOMB_IN_LIST = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: p
    namespace: default
    annotations: &x0 {k: v, k2: v}
  spec: {nodeName: n}
""" + "".join(f"- &x{i} [*x{i - 1}, *x{i - 1}, *x{i - 1}, *x{i - 1}, *x{i - 1}, *x{i - 1}, *x{i - 1}, *x{i - 1}]\n"
              for i in range(1, 12))


@pytest.mark.parametrize("name, text", [("billion-laughs.yaml", BILLION_LAUGHS), ("bomb-in-list.yaml", BOMB_IN_LIST)])
def test_alias_bombs_are_refused(tmp_path: Path, name: str, text: str) -> None:
    """YAML alias bombs are refused quickly, in bounded memory, with one line naming the file."""
    path = tmp_path / name
    path.write_text(text)
    _expect_cluster_error(path)


def test_recursive_alias_does_not_hang(tmp_path: Path) -> None:
    """A self-referencing alias (a cyclic document) is refused or read, never looped over forever."""
    from tracer.errors import ClusterError

    path = tmp_path / "cycle.yaml"
    path.write_text("kind: Pod\nmetadata: &m {name: p, namespace: default, labels: {}, owner: *m}\nspec: {}\n")
    with time_bound(10):
        try:
            _load(path)
        except ClusterError as exc:
            assert "\n" not in str(exc).strip()


def test_oversized_file_is_refused_without_reading(tmp_path: Path) -> None:
    """A file over the size limit is refused before it is read (a sparse file costs no disk)."""
    from tracer.k8s import objects

    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.truncate(objects.MAX_FILE_BYTES + 1)
    _expect_cluster_error(path, seconds=5)


DEEP = 60_000  # nesting levels: libyaml's C composer overflows the stack somewhere past 20,000
DEEP_DOCUMENTS = {
    "flow": "kind: Pod\nmetadata: {name: p, namespace: default}\nspec: " + "[" * DEEP + "]" * DEEP + "\n",
    # Closing brackets in a quoted string or a comment, before the real nesting: a bracket count that subtracts
    # them underestimates the depth.
    "quoted-closers": 'a: "' + "]" * DEEP + '"\nkind: Pod\nspec: ' + "[" * DEEP + "]" * DEEP + "\n",
    "comment-closers": "# " + "}" * DEEP + "\nkind: Pod\nspec: " + "[" * DEEP + "]" * DEEP + "\n",
    # Block nesting on one line: compact sequences and explicit-key mappings.
    "compact-sequences": "kind: Pod\nspec:\n" + "- " * DEEP + "x\n",
    "explicit-keys": "kind: Pod\nspec:\n  " + "? " * DEEP + "x\n",
    "json": "[" * DEEP + "]" * DEEP,
}


@pytest.mark.parametrize("variant", sorted(DEEP_DOCUMENTS))
def test_deeply_nested_document(tmp_path: Path, variant: str) -> None:
    """60,000 nesting levels (however spelled): one ClusterError line, never a crash of the process.

    Run in a subprocess: the failure this guards against is a segmentation fault (libyaml's recursive
    composer), which would take the test run down with it.
    """
    path = tmp_path / ("deep.json" if variant == "json" else "deep.yaml")
    path.write_text(DEEP_DOCUMENTS[variant])
    code = ("import sys\nfrom tracer.errors import ClusterError\nfrom tracer.k8s.cluster import load_cluster\n"
            "try:\n    load_cluster([sys.argv[1]])\nexcept ClusterError as exc:\n    print(exc)\n    sys.exit(2)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode in (0, 2), f"exit {proc.returncode} (-11 is SIGSEGV); stderr: {proc.stderr[-500:]}"
    if proc.returncode == 2:
        assert len(proc.stdout.strip().splitlines()) == 1 and path.name in proc.stdout, proc.stdout


def test_many_objects_load_in_bounded_time(tmp_path: Path) -> None:
    """A large but honest dump (20,000 pods) loads, in bounded time: size alone is not an error."""
    items = [{"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": f"p{i}", "namespace": "default", "labels": {"app": f"a{i % 50}"}},
              "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
              "status": {"podIP": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"}} for i in range(20_000)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    with time_bound(60):
        cluster = _load(path)
    assert len(cluster.pods) == 20_000


@pytest.mark.parametrize("text", [
    "!!python/object/apply:os.system ['touch {marker}']\n",
    "kind: Pod\nmetadata: !!python/object/apply:os.system ['touch {marker}']\n",
    "kind: !!python/name:os.system Pod\n",
    "--- !!python/object/new:subprocess.Popen [['touch', '{marker}']]\n",
])
def test_code_executing_tags_are_refused(tmp_path: Path, text: str) -> None:
    """Python object tags are a YAML error under safe_load rules: refused, and nothing runs."""
    marker = tmp_path / "pwned"
    path = tmp_path / "tags.yaml"
    path.write_text(text.format(marker=marker))
    _expect_cluster_error(path)
    assert not marker.exists(), "a YAML tag executed code"


@pytest.mark.parametrize("content", [
    b"\x00\x01\x02\xff\xfe garbage",
    b"\xff\xfe" + "kind: Pod".encode("utf-16-le"),
    b"kind: Pod\nmetadata: {name: [unclosed\n",
    b"- just\n- a\n- list\n",
    b"42\n",
    b"{\"kind\": \"Pod\", \"metadata\": {\"name\": NaN}}",
    b"kind: List\nitems: 7\n",
    b"kind: List\nitems: [1, 2]\n",
    b"kind:\n  - Pod\n",
    b"metadata: {name: nokind}\n",
])
def test_malformed_files_are_one_line_errors(tmp_path: Path, content: bytes) -> None:
    """Not YAML, not UTF-8, not an object, no kind: one ClusterError line naming the file."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    _expect_cluster_error(path)


def test_unknown_kinds_are_skipped_or_named(tmp_path: Path) -> None:
    """Kinds tracer does not model (CRDs, made-up kinds) are skipped, or refused with the kind named."""
    from tracer.errors import ClusterError

    path = tmp_path / "kinds.yaml"
    # The second kind holds Rich markup and an ESC (a YAML escape in a double-quoted scalar).
    path.write_text('kind: FooBar\nmetadata: {name: x}\n---\nkind: "[bold red]x\\e[31m"\nmetadata: {name: y}\n'
                    "---\nkind: Namespace\nmetadata: {name: ok}\n")
    try:
        cluster = _load(path)
    except ClusterError as exc:
        assert "FooBar" in str(exc) and "\n" not in str(exc).strip()
    else:
        assert "ok" in cluster.namespaces


# --- wrong types in every field --------------------------------------------------------------------------

WRONG = [7, "x", ["x"], {"x": 1}, None, True, -1, 2**70, "10.0.0.0/99", {"matchLabels": "x"}]


def _paths(node, prefix=()):
    """Every key path inside a parsed object (mappings and list elements)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _replace(doc, path, value):
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _mutations():
    base = yaml.safe_load(DEMO_CLUSTER.read_text())
    n = 0
    for i, item in enumerate(base["items"]):
        for path in _paths(item):
            # Every path gets two wrong values in rotation; NetworkPolicy paths get all of them.
            values = WRONG if item["kind"] == "NetworkPolicy" else [WRONG[n % len(WRONG)], WRONG[(n + 3) % len(WRONG)]]
            n += 1
            for value in values:
                yield item["kind"], ("items", i, *path), value, base


def test_wrong_types_in_every_field(tmp_path: Path) -> None:
    """Each field of a real cluster dump replaced by a wrong type: loaded, or one ClusterError naming the file
    and the field; then every pod pair is judged without an exception."""
    if not DEMO_CLUSTER.exists():
        pytest.skip(f"{DEMO_CLUSTER} not present")
    from tracer.errors import ClusterError
    from tracer.k8s.cluster import load_cluster
    from tracer.k8s.policy import PolicyEngine

    problems = []
    tried = 0
    path = tmp_path / "cluster.json"
    for kind, field_path, value, base in _mutations():
        tried += 1
        path.write_text(json.dumps(_replace(base, field_path, value)))
        where = f"{kind} {'.'.join(map(str, field_path[2:]))} = {value!r}"
        try:
            with time_bound(10):
                cluster = load_cluster([str(path)])
                engine = PolicyEngine(cluster)
                pods = cluster.pods[:4]
                for src in pods:
                    for dst in pods:
                        engine.check(src.key, dst.key, 80, protocol="TCP")
        except ClusterError as exc:
            msg = str(exc)
            names = [str(k) for k in field_path[2:] if isinstance(k, str)]
            if "\n" in msg.strip() or str(path) not in msg:
                problems.append(f"{where}: error is not one line naming the file: {msg!r}")
            elif names and not any(n in msg for n in names):
                problems.append(f"{where}: error names no part of the field: {msg!r}")
        except Exception as exc:  # noqa: BLE001 - collected below
            problems.append(f"{where}: {type(exc).__name__}: {exc}")
    assert tried > 500
    assert not problems, f"{len(problems)} of {tried} mutations fail:\n" + "\n".join(problems[:40])


# --- through the CLI: exit 2, one line -----------------------------------------------------------------

def test_policy_cli_on_hostile_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tracer policy check --cluster BAD`: exit status 2 and one line naming the file."""
    need_command("policy")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(b"\x00\x01\xff")
    for path in (bomb, garbage, tmp_path / "missing.yaml"):
        result = run_cli(["policy", "check", "--cluster", str(path), "--from", "default/a", "--to", "default/b",
                          "--port", "80"], capsys)
        assert result.problem() is None, result.problem()
        assert result.code == 2, (path.name, result.code, result.err)
        assert path.name in result.err


def test_show_with_hostile_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tracer show FILE --cluster BOMB`: the cluster is refused with one line and exit 2, never a traceback."""
    need_command("show")
    capture = REPO / "captures" / "demo" / "merged.pcapng"
    if not capture.exists():
        pytest.skip("demo capture not present")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    result = run_cli(["show", "--format", "jsonl", "--cluster", str(bomb), str(capture)], capsys)
    assert result.problem() is None, result.problem()
    assert result.code == 2 and bomb.name in result.err, (result.code, result.err)


def test_safe_loader_only() -> None:
    """The k8s package parses YAML with a safe loader: no full/unsafe Loader anywhere in its source."""
    src = "\n".join(p.read_text() for p in (REPO / "tracer" / "k8s").glob("*.py"))
    for unsafe in ("yaml.load(", "UnsafeLoader", "FullLoader", "yaml.Loader", "unsafe_load", "full_load"):
        assert unsafe not in src, f"tracer/k8s uses {unsafe}"
    assert os.path.getsize(DEMO_CLUSTER) > 0
