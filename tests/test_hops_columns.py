"""The hop analysis's per-row columns are derived from per-packet/per-flow tables (tracer/hops/columns.py): they
must say what the per-packet reports say, hold no per-row Python objects, and the filter fields built on them
(tracer/hops/fields.py) must select the rows the columns name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tracer.capture.index import load_index
from tracer.hops.analysis import analyze
from tracer.hops.columns import LabelColumn, RowColumns, ValueColumn
from tracer.hops.fields import FieldContext, make_resolvers
from tracer.k8s import load_cluster

REPO = Path(__file__).resolve().parent.parent
BUNDLED = ("demo", "host-gw", "calico-vxlan", "calico-ipip")


@pytest.fixture(scope="module", params=BUNDLED)
def bundled(request):
    base = REPO / "captures" / request.param
    index = load_index([str(base / "merged.pcapng")])
    return index, analyze(index, cluster=load_cluster([str(base / "cluster.yaml")]))


def test_row_columns_agree_with_each_packets_path(bundled) -> None:
    """Every row's columns equal what ``path(row)`` (built from the packet's own observations) reports."""
    index, a = bundled
    cols = a.columns
    n = len(index)
    checked = 0
    for row in range(n):
        p = a.path(row)
        if p.packet_id is None:
            assert cols["packet_id"][row] == -1 and cols["flow_id"][row] == -1
            assert cols["src_pod"][row] is None and cols["verdict"][row] is None and not cols["dropped"][row]
            continue
        assert cols["packet_id"][row] == p.packet_id
        assert cols["flow_id"][row] == p.flow_id
        assert cols["hop_count"][row] == len(p.hops)
        assert (cols["src_pod"][row], cols["dst_pod"][row]) == (p.src_pod, p.dst_pod)
        assert cols["service"][row] == p.service
        assert cols["verdict"][row] == p.verdict
        assert cols["last_seen"][row] == p.last_seen
        assert bool(cols["dropped"][row]) == (p.dropped_after is not None)
        seen_here = [h for h in p.hops if h.row == row]
        if seen_here:
            hop = seen_here[0]
            assert cols["hop_index"][row] == hop.index
            assert cols["point"][row] == hop.point and cols["node"][row] == hop.node
            checked += 1
    assert checked > n // 2          # most rows are placed on their ladder
    # Whole-column reads give the same values as row-by-row ones.
    for name in ("verdict", "src_pod", "node", "flow_id", "dropped"):
        whole = np.asarray(cols[name])
        assert len(whole) == n
        assert whole.tolist() == [cols[name][r] for r in range(n)]


def test_denied_flow_is_named_in_the_columns(bundled) -> None:
    """The bundled scenario's denied connection (nginx in python → tomcat in linux) is deny in every row of its
    flow, allow elsewhere, and a filter on it selects exactly those rows."""
    index, a = bundled
    verdict = np.asarray(a.columns["verdict"])
    deny = np.flatnonzero(verdict == "deny")
    assert len(deny)
    src, dst = a.columns["src_pod"][deny], a.columns["dst_pod"][deny]
    pods = {(s, d) for s, d in zip(src.tolist(), dst.tolist())}
    assert all({x.split("/")[0] for x in pair if x} >= {"linux"} for pair in pods), pods
    ctx = FieldContext(index=index, total=len(index), analysis=a, cluster=object())
    fields = make_resolvers(ctx)
    assert np.array_equal(np.flatnonzero(fields["verdict"](index, "==", "deny")), deny)
    roles = np.asarray(a.columns["role"])
    for role in set(roles.tolist()) - {None}:
        assert np.array_equal(fields["hop.role"](index, "==", role), roles == role)


def test_analysis_holds_no_per_row_objects(shared_dir, tmp_path) -> None:
    """The memory design: per row only packet id (4 B) and hop number (1 B) are stored, per packet under 12 B;
    no object array as long as the capture is kept anywhere in the analysis."""
    out = tmp_path / "mix.pcap"
    subprocess.run([sys.executable, str(shared_dir / "tools" / "gen_overlay_pcap.py"), "20000", str(out)],
                   check=True, capture_output=True)
    index = load_index([str(out)])
    a = analyze(index)
    n = len(index)
    assert isinstance(a.columns, RowColumns)
    assert a.columns.nbytes() <= 5 * n
    per_row = per_packet = 0
    n_pk = len(a._pk_flow)  # noqa: SLF001
    for name, value in vars(a).items():
        arrays = value.values() if isinstance(value, dict) else [value]
        for arr in arrays:
            if isinstance(arr, np.ndarray) and arr.ndim == 1:
                assert not (arr.dtype == object and len(arr) >= min(n, n_pk)), name
                per_row += arr.nbytes if len(arr) == n else 0
                per_packet += arr.nbytes if len(arr) == n_pk and len(arr) != n else 0
    assert per_row <= 5 * n + (8 * n if n_pk == n else 0)
    assert per_packet <= 8 * n_pk
    # …and still answers for the rows asked for.
    assert isinstance(a.columns["role"], LabelColumn) and isinstance(a.columns["flow_id"], ValueColumn)
    assert (np.asarray(a.columns["flow_id"]) >= 0).sum() == (a.columns["packet_id"] >= 0).sum()


def test_label_column_indexing_and_mask() -> None:
    labels = ["a", "b", None, "c"]
    codes = np.array([0, 1, -1, 3, 0, 2, 7])      # 7: out of the table → None, like -1
    col = LabelColumn(len(codes), lambda rows: codes[rows], labels)
    assert len(col) == 7 and col.dtype == object
    assert col[0] == "a" and col[-1] is None and col[2] is None and col[3] == "c"
    assert col[1:4].tolist() == ["b", None, "c"]
    assert col[np.array([4, 0])].tolist() == ["a", "a"]
    assert col[codes == 0].tolist() == ["a", "a"]
    assert np.asarray(col).tolist() == ["a", "b", None, "c", "a", None, None]
    calls = []
    mask = col.mask(lambda s: calls.append(s) or s in ("a", None))
    assert mask.tolist() == [True, False, True, False, True, True, True]
    assert len(calls) == len(labels) + 1            # once per label and once for None, not once per row
    with pytest.raises(IndexError):
        col[7]
    values = ValueColumn(3, lambda rows: rows * 10, np.int32)
    assert values[2] == 20 and (values >= 10).tolist() == [False, True, True] and values.any()


def test_verdict_filter_without_cluster_is_an_error_not_an_empty_list(capsys) -> None:
    """Without --cluster no packet has a verdict: `verdict == deny` says so in one line (exit 2) instead of
    printing nothing; with the cluster it selects the denied rows."""
    from tracer.cli import main

    cap = str(REPO / "captures" / "demo" / "merged.pcapng")
    assert main(["show", "--filter", "verdict == deny", cap]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--cluster" in err and "Traceback" not in err
    assert main(["show", "--format", "jsonl", "--filter", "verdict == deny", "--cluster",
                 str(REPO / "captures" / "demo" / "cluster.yaml"), cap]) == 0
    out, _ = capsys.readouterr()
    assert out.count("\n") >= 1 and '"verdict": "deny"' in out


@pytest.mark.parametrize(("expr", "named"), [("verdict == dney", "allow, deny, unknown"),
                                             ("hop.role == brige", "bridge"),
                                             ("hop.role != 'vxlan'", "vxlan-device")])
def test_a_typo_in_an_enumerated_field_is_an_error(expr, named, capsys) -> None:
    """`verdict` and `hop.role` have fixed values: a misspelt one is an error listing them (exit 2), where it
    used to match nothing (==) or everything (!=) without a word."""
    from tracer.cli import main

    base = REPO / "captures" / "demo"
    assert main(["show", "--cluster", str(base / "cluster.yaml"), "--filter", expr,
                 str(base / "merged.pcapng")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and named in err
    assert main(["show", "--cluster", str(base / "cluster.yaml"), "--filter", "hop.role contains brid",
                 str(base / "merged.pcapng")]) == 0          # contains/matches take any text
    assert "cni0" in capsys.readouterr()[0]
