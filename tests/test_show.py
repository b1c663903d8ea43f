"""`tracer show` and `tracer stats`: public keys, null rules, formats, filters, escaping, every public capture."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

import capture_writers as W
from tracer.capture.rows import KEYS
from tracer.cli import main

T0 = 1_700_000_000_000_000_000


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _overlay(tmp_path: Path) -> Path:
    pkts = [
        Ether() / IP(src="172.31.7.111", dst="172.31.7.112", ttl=64, id=7) / UDP(sport=51000, dport=8472)
        / VXLAN(vni=1) / Ether() / IP(src="10.244.1.3", dst="10.244.2.5", ttl=63, id=99)
        / TCP(sport=41000, dport=80, flags="SA"),
        Ether() / IP(src="10.244.1.3", dst="10.244.1.4", ttl=64, id=5) / ICMP(type=8),
        Ether() / IP(src="172.31.7.111", dst="172.31.7.113", proto=4)
        / IP(src="10.244.128.2", dst="10.244.130.9") / UDP(sport=5, dport=53),
    ]
    path = tmp_path / "node-1__eth0.pcap"
    path.write_bytes(W.pcap_bytes([(T0 + k * 1000, bytes(p)) for k, p in enumerate(pkts)], nano=True))
    return path


def test_jsonl_keys_and_values(tmp_path: Path, capsys) -> None:
    """Every row has exactly the public keys; outer/inner/null rules as issue 2 states."""
    code, out, _ = _run(["show", "--format", "jsonl", str(_overlay(tmp_path))], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    # Issue 2's keys first, in order; later work (hop analysis) appends its own keys after them.
    assert [list(r)[:len(KEYS)] for r in rows] == [list(KEYS)] * 3
    vx, icmp, ipip = rows
    assert vx["no"] == 1 and vx["ts"] == pytest.approx(T0 / 1e9)
    assert (vx["src"], vx["dst"], vx["proto"], vx["sport"], vx["dport"]) == ("172.31.7.111", "172.31.7.112", 17,
                                                                           51000, 8472)
    assert (vx["encap"], vx["vni"], vx["inner_src"], vx["inner_dst"], vx["inner_proto"]) == (
        "vxlan", 1, "10.244.1.3", "10.244.2.5", 6)
    assert (vx["inner_sport"], vx["inner_dport"], vx["tcp_flags"], vx["ttl"], vx["ip_id"]) == (41000, 80, "SA", 63, 99)
    assert vx["point"] == "node-1/eth0" and vx["linktype"] == 1 and vx["icmp_type"] is None
    assert icmp["encap"] is None and icmp["vni"] is None and icmp["inner_src"] is None
    assert icmp["sport"] is None and icmp["icmp_type"] == 8 and icmp["tcp_flags"] is None
    assert ipip["encap"] == "ipip" and ipip["proto"] == 4 and ipip["sport"] is None
    assert (ipip["inner_src"], ipip["inner_dport"]) == ("10.244.128.2", 53)


def test_csv_matches_jsonl(tmp_path: Path, capsys) -> None:
    path = str(_overlay(tmp_path))
    _, out_json, _ = _run(["show", "--format", "jsonl", path], capsys)
    _, out_csv, _ = _run(["show", "--format", "csv", path], capsys)
    rows = list(csv.DictReader(io.StringIO(out_csv)))
    for js, cs in zip((json.loads(x) for x in out_json.splitlines()), rows, strict=True):
        assert {k: "" if v is None else str(v) for k, v in js.items() if k != "ts"} == \
            {k: v for k, v in cs.items() if k != "ts"}


def test_vxlan_port_option(tmp_path: Path, capsys) -> None:
    """UDP 6080 is VXLAN only when asked for."""
    pkt = Ether() / IP() / UDP(sport=20000, dport=6080) / VXLAN(vni=55001) / Ether() / IP(src="1.2.3.4") / ICMP()
    path = tmp_path / "p.pcap"
    path.write_bytes(W.pcap_bytes([(T0, bytes(pkt))]))
    _, plain, _ = _run(["show", "--format", "jsonl", str(path)], capsys)
    _, asked, _ = _run(["show", "--format", "jsonl", "--vxlan-port", "6080", str(path)], capsys)
    assert json.loads(plain)["encap"] is None
    assert json.loads(asked)["vni"] == 55001


def test_table_escapes_control_characters(tmp_path: Path, capsys) -> None:
    """An interface name carrying an escape sequence reaches the terminal escaped."""
    data = W.shb() + W.idb(name="evil\x1b[2J\x9b/eth0") + W.epb("<", 0, 1, bytes(Ether() / IP() / ICMP()))
    path = tmp_path / "e.pcapng"
    path.write_bytes(data)
    code, out, _ = _run(["show", str(path)], capsys)
    assert code == 0 and "\x1b" not in out and "\x9b" not in out and "\\x1b[2J" in out


def test_filter_is_applied(tmp_path: Path, capsys) -> None:
    pytest.importorskip("tracer.capture.filter")
    code, out, _ = _run(["show", "--format", "jsonl", "--filter", "icmp", str(_overlay(tmp_path))], capsys)
    assert code == 0
    assert [json.loads(x)["no"] for x in out.splitlines()] == [2]


def test_bad_filter_is_one_line(tmp_path: Path, capsys) -> None:
    pytest.importorskip("tracer.capture.filter")
    code, out, err = _run(["show", "--filter", "ip.src ==", str(_overlay(tmp_path))], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("tracer: ")


def test_stats_json(tmp_path: Path, capsys) -> None:
    code, out, _ = _run(["stats", "--json", str(_overlay(tmp_path))], capsys)
    info = json.loads(out)
    assert code == 0 and info["packets"] == 3
    assert info["encap"] == {"vxlan": 1, "none": 1, "ipip": 1}
    assert info["vni"] == {"vxlan 1": 1}
    assert info["points"] == {"node-1/eth0": 3}
    assert info["ip_proto"] == {"ICMP": 1, "TCP": 1, "UDP": 1}
    assert info["packets_per_second"] > 0


def test_python_m_tracer_is_the_same(tmp_path: Path) -> None:
    path = str(_overlay(tmp_path))
    out = subprocess.run([sys.executable, "-m", "tracer", "show", "--format", "jsonl", path],
                         capture_output=True, text=True, check=True).stdout
    assert len(out.splitlines()) == 3


def _corpus(public: Path) -> list[Path]:
    return sorted(p for p in public.rglob("*") if p.is_file() and p.name != "MANIFEST.md")


def test_every_public_capture_through_show(public_captures: Path, capsys) -> None:
    """All 97 public files: rows and exit 0, or one `tracer:` line and exit 2; never a traceback."""
    files = _corpus(public_captures)
    assert len(files) == 97
    for path in files:
        for fmt in ("table", "jsonl"):
            code, out, err = _run(["show", "--format", fmt, str(path)], capsys)
            assert "Traceback" not in err and "internal error" not in err, (path.name, err)
            assert all(line.startswith("tracer: ") for line in err.splitlines()), (path.name, err)
            if code == 2:
                assert out == "" and err.count("\n") == 1, path.name
            else:
                assert code == 0, (path.name, err)
                assert err.count("\n") <= 1
                if fmt == "jsonl":
                    assert all(list(json.loads(line))[:len(KEYS)] == list(KEYS) for line in out.splitlines())


def test_non_ip_frames_say_what_they_are(public_captures: Path, capsys) -> None:
    """ARP over SLL and over 802.1Q Ethernet is named from its link header, not 'non-IP frame'."""
    for name in ("sll-arp-zeek.pcap", "vlan-dot1q-vid123-icmp-arp-zeek.pcap"):
        _, out, _ = _run(["show", "--format", "jsonl", str(public_captures / name)], capsys)
        rows = [json.loads(x) for x in out.splitlines()]
        arp = [r for r in rows if r["src"] is None]
        assert arp and all(r["info"] == "ARP" for r in arp)


def test_stdin_filter_numbers_stay_absolute_across_batches(tmp_path: Path) -> None:
    """A filter on a capture streamed from stdin sees `frame.number` of the whole capture, not of each batch."""
    n = 70_000  # more than one indexing batch
    frame = bytes(Ether() / IP(src="10.244.1.3", dst="10.244.2.5") / UDP(sport=1, dport=2))
    path = tmp_path / "many.pcap"
    path.write_bytes(W.pcap_bytes([(T0 + k * 1000, frame) for k in range(n)], nano=True))
    with path.open("rb") as stdin:
        out = subprocess.run([sys.executable, "-m", "tracer", "show", "-", "--format", "jsonl", "--filter",
                              "frame.number <= 2 or frame.number == 69999"],
                             stdin=stdin, capture_output=True, text=True, check=True).stdout
    assert [json.loads(x)["no"] for x in out.splitlines()] == [1, 2, 69999]


DEMO = Path(__file__).resolve().parent.parent / "captures" / "demo"


def test_cluster_filter_fields_match_the_pod_columns(capsys) -> None:
    """`--filter 'k8s.ns == python'` keeps exactly the rows whose src_pod or dst_pod is in namespace python."""
    cap, cluster = str(DEMO / "merged.pcapng"), str(DEMO / "cluster.yaml")
    code, out, _ = _run(["show", "--format", "jsonl", "--cluster", cluster, cap], capsys)
    assert code == 0
    rows = [json.loads(x) for x in out.splitlines()]
    expected = [r["no"] for r in rows
                if any(p and p.startswith("python/") for p in (r["src_pod"], r["dst_pod"]))]
    code, out, _ = _run(["show", "--format", "jsonl", "--cluster", cluster, "--filter", "k8s.ns == python", cap],
                        capsys)
    assert code == 0 and expected
    assert [json.loads(x)["no"] for x in out.splitlines()] == expected
    code, out, _ = _run(["show", "--format", "jsonl", "--cluster", cluster, "--filter", "verdict == deny", cap],
                        capsys)
    denied = [json.loads(x) for x in out.splitlines()]
    assert denied and all(r["verdict"] == "deny" for r in denied)
    assert len(denied) == sum(r["verdict"] == "deny" for r in rows)
