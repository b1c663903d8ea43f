"""The packet index: merge order, incremental build, capture points, and reader counts against the MANIFEST."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

import capture_writers as W
from tracer.capture.index import IndexBuilder, load_index
from tracer.capture.points import point_for, split_point

T0 = 1_700_000_000_000_000_000


_BASE = bytes(Ether() / IP(src="10.244.1.3", dst="10.244.2.5", id=0) / TCP(sport=1234, dport=80))


def _frame(k: int) -> bytes:
    """The same TCP packet with IP ID ``k`` (bytes 18-19; the checksum is not checked by anyone here)."""
    return _BASE[:18] + (k & 0xFFFF).to_bytes(2, "big") + _BASE[20:]


def _write(path: Path, stamps: list[int], first_id: int = 0) -> None:
    path.write_bytes(W.pcap_bytes([(t, _frame(first_id + k)) for k, t in enumerate(stamps)], nano=True))


def test_files_merge_by_timestamp_ties_in_file_order(tmp_path: Path) -> None:
    """Two files interleave by ts; equal timestamps keep command-line order."""
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    _write(a, [T0 + 1, T0 + 3, T0 + 5], first_id=0)
    _write(b, [T0 + 2, T0 + 3, T0 + 6], first_id=10)
    index = load_index([str(a), str(b)])
    assert index["ts_ns"].tolist() == [T0 + 1, T0 + 2, T0 + 3, T0 + 3, T0 + 5, T0 + 6]
    assert index["i_ipid"].tolist() == [0, 10, 1, 11, 2, 12]
    assert [index.sources[s].file_id for s in index["source"].tolist()] == [0, 1, 0, 1, 0, 1]
    assert index.frame(1) == _frame(10)


def test_unsorted_file_in_a_merge_ends_sorted(tmp_path: Path) -> None:
    """A file whose timestamps go backwards still yields a fully merged (stable) order once complete."""
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    stamps = [T0 + int(x) for x in np.random.default_rng(1).integers(0, 10_000, 5000)]
    _write(a, stamps)
    _write(b, sorted(stamps[:100]), first_id=20000 % 65536)
    index = load_index([str(a), str(b)])
    ts = index["ts_ns"]
    assert len(index) == 5100 and bool(np.all(np.diff(ts) >= 0))


def test_single_file_keeps_file_order(tmp_path: Path) -> None:
    a = tmp_path / "a.pcap"
    _write(a, [T0 + 5, T0 + 1, T0 + 3])
    assert load_index([str(a)])["i_ipid"].tolist() == [0, 1, 2]


def test_builder_yields_first_rows_early(tmp_path: Path) -> None:
    """The first progress report comes after a small batch, long before a big file is read."""
    a = tmp_path / "big.pcap"
    frame = _frame(0)
    a.write_bytes(W.pcap_bytes([(T0 + k, frame) for k in range(200_000)]))
    builder = IndexBuilder([str(a)])
    started = time.perf_counter()
    first = next(iter(builder.run(batch=65536)))
    elapsed = time.perf_counter() - started
    assert 1000 <= first.rows < 200_000 and not first.done
    assert len(builder.index) == first.rows and 0 < first.fraction < 1
    assert elapsed < 1.0     # generous for a loaded CI box; the benchmark measures the real figure
    assert builder.finish() is builder.index and len(builder.index) == 200_000


def test_columns_are_read_only_and_complete_when_empty(tmp_path: Path) -> None:
    """Columns cannot be written through, and an empty capture still has every column (length 0)."""
    a = tmp_path / "a.pcap"
    _write(a, [T0])
    index = load_index([str(a)])
    with pytest.raises(ValueError):
        index["ts_ns"][0] = 1
    _write(a, [])
    empty = load_index([str(a)])
    assert len(empty) == 0 and all(len(empty[c]) == 0 for c in ("ts_ns", "o_src", "i_dport", "vni"))


@pytest.mark.parametrize("arg, path, point", [
    ("a.pcap@node1/eth0", "a.pcap", "node1/eth0"),
    ("plain.pcap", "plain.pcap", None),
    ("-", "-", None),
])
def test_split_point(arg: str, path: str, point: str | None) -> None:
    assert split_point(arg) == (path, point)


@pytest.mark.parametrize("file, iface, explicit, want", [
    ("x.pcap", "eth0", "n1/cni0", "n1/cni0"),            # FILE@POINT wins
    ("x.pcapng", "node-2/flannel.1", None, "node-2/flannel.1"),
    ("x.pcapng", "pod:prod/api-0", None, "pod:prod/api-0"),
    ("dir/node-3__eth0.pcap", None, None, "node-3/eth0"),
    ("node-3__vxlan.calico.pcapng", "vxlan.calico", None, "node-3/vxlan.calico"),
    ("capture.pcap", "tunl0", None, "tunl0"),
    ("capture.pcap", None, None, None),
])
def test_point_naming_rule(file: str, iface: str | None, explicit: str | None, want: str | None) -> None:
    """Capture point: FILE@POINT, then NODE/IFACE or pod:NS/NAME if_name, then NODE__IFACE file, then iface."""
    assert point_for(file, iface, explicit) == want


def test_point_suffix_on_the_command_line(tmp_path: Path) -> None:
    a = tmp_path / "a.pcap"
    _write(a, [T0])
    index = load_index([f"{a}@node-1/eth0"])
    assert index.sources[0].point == "node-1/eth0" and index.sources[0].node == "node-1"
    assert index.sources[0].file == str(a)


def _manifest_counts(public: Path) -> dict[str, int]:
    counts = {}
    for line in (public / "MANIFEST.md").read_text().splitlines():
        m = re.match(r"\| `([^`]+)` \|.*?\| (\d+) \| ", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


# Where tracer deliberately reads a different number of packets than tshark (the MANIFEST's source):
DIFFERENT = {
    # tshark lists pcapng Custom Blocks (0xBAD / 0x40000BAD) as frames; they carry no packet.
    "pcapng-suite-test102-all-block-types-be.pcapng": 8 - 3,
    "pcapng-suite-test202-multi-section-mixed-endian-be.pcapng": 11 - 3,
    # tshark shows record 2 (caplen 1 409 179 648) as a fake frame before failing; it is a garbage header.
    "corrupt-record-huge-caplen-suricata.pcap": 1,
    # tshark mis-identifies the 16-byte cut SHB as a MIME file with one "frame"; it is not a capture.
    "corrupt-pcapng-truncated-shb-libpcap.pcapng": 0,
}


def test_reader_counts_agree_with_manifest(public_captures: Path) -> None:
    """Every public capture: packets indexed == the MANIFEST's tshark count (except the documented cases)."""
    from tracer.errors import CaptureError

    counts = _manifest_counts(public_captures)
    assert len(counts) == 97
    wrong = []
    for name, want in counts.items():
        want = DIFFERENT.get(name, want)
        try:
            got = len(load_index([str(public_captures / name)]))
        except CaptureError:
            got = 0
        if got != want:
            wrong.append(f"{name}: {got} != {want}")
    assert not wrong


def _random_columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Columns that respect the contract's redundancy (o_* == i_* and vni -1 without a tunnel; TCP xor ICMP)."""
    from tracer.capture.index import SCHEMA

    cols = {name: rng.integers(0, np.iinfo(dt).max, n, dtype=np.int64, endpoint=True).astype(dt)
            if dt.kind == "u" else rng.integers(-1, 1 << 24, n).astype(dt) for name, dt in SCHEMA.items()}
    cols["encap"] = rng.choice(np.array([0, 0, 1, 3], np.uint8), n)
    cols["i_proto"] = rng.choice(np.array([1, 6, 17, 58], np.uint8), n)
    plain = cols["encap"] == 0
    for o in ("ver", "src", "dst", "proto", "ttl", "ipid", "sport", "dport"):
        cols["o_" + o][plain] = cols["i_" + o][plain]
    cols["vni"][plain] = -1
    icmp = np.isin(cols["i_proto"], (1, 58))
    for name in ("tcp_seq", "tcp_ack"):
        cols[name][icmp] = 0
    for name in ("icmp_id", "icmp_seq", "icmp_type", "icmp_code"):
        cols[name][~icmp] = 0
    cols["caplen"] = rng.integers(0, 2000, n).astype(np.uint32)
    cols["offset"] = np.cumsum(cols["caplen"].astype(np.int64) + 16)
    cols["origlen"] = cols["caplen"].copy()        # whole frames (no snap length)
    cols["source"] = rng.integers(0, 3, n).astype(np.uint16)
    return cols


@pytest.mark.parametrize("breaks", [None, "o_src", "vni", "tcp_seq", "icmp_code", "caplen", "offset", "source",
                                    "origlen"])
def test_compact_store_round_trip_is_exact(breaks: str | None) -> None:
    """Every column reads back exactly, also after a batch breaks a compaction rule (that group goes dense)."""
    from tracer.capture.index import SCHEMA
    from tracer.capture.store import ColumnStore

    rng = np.random.default_rng(7)
    batches = [_random_columns(rng, n) for n in (1000, 5000, 3000)]
    if breaks:
        b = batches[1]
        k = int(np.flatnonzero(b["encap"] == 0)[0]) if breaks in ("o_src", "vni") else \
            int(np.flatnonzero(np.isin(b["i_proto"], (1, 58)))[0]) if breaks == "tcp_seq" else \
            int(np.flatnonzero(~np.isin(b["i_proto"], (1, 58)))[0])
        big = {"caplen": 70000, "offset": 1 << 33, "source": 300, "icmp_code": 9, "origlen": 70000}
        b[breaks][k] = big.get(breaks, 12345)
    store = ColumnStore(SCHEMA)
    for b in batches:
        store.append(b)
    for name in SCHEMA:
        want = np.concatenate([b[name] for b in batches])
        got = store.column(name)
        assert got.dtype == SCHEMA[name] and np.array_equal(got, want), name
        assert np.array_equal(store.column(name, 4321, 7000), want[4321:7000]), name
    if breaks is None:
        assert store.nbytes() / len(store) < 60
        assert "origlen" not in store._phys  # noqa: SLF001 - equal to caplen: not stored
    if breaks == "origlen":                   # a cut frame: stored from then on, narrow until 70000 widened it
        assert store._phys["origlen"].data.dtype == np.uint32  # noqa: SLF001


def _ts_case(case: str, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Timestamps (int64 ns) and the batch sizes they are appended in, for one ``ts_ns`` storage case."""
    n = 6000
    steady = T0 + np.cumsum(rng.integers(0, 200_000, n))           # ~10 k packets/s
    sizes = [1000, 5000]
    if case == "gaps":                     # idle gaps longer than 2^32 ns (4.29 s), one of them inside a batch
        steady[1500:] += 5_000_000_000
        steady[4321:] += 3_600 * 10**9
    elif case == "backwards":              # steps back inside a batch and across batch boundaries
        for k in rng.choice(n, 40, replace=False):
            steady[k] -= int(rng.integers(1, 2 * 10**9))
        sizes = [331, 1000, 17, 2500, 2152]
        steady[331] = steady[330] - 1_500_000_000         # below the base of the block the last batch started
        steady[1331] = steady[1330] - 100_000_000          # 0.1 s back: within the room a started block leaves
    elif case == "late_exception":         # a block partly stored, then the next batch no longer fits its base
        steady[1000:] -= 3 * 10**9         # below the base of the block rows 960..999 started
        steady[3000:] += 10 * 10**9        # and above it, two batches later
        sizes = [1000, 2000, 3000]
    elif case == "unaligned":              # batches of any size, one row at a time included
        sizes = [1, 1, 63, 1, 64, 65, 127, 500, 1]
        sizes.append(n - sum(sizes))
    elif case == "extremes":               # garbage times: the int64 range, negatives, no order at all
        steady = rng.integers(-(1 << 63), (1 << 63) - 1, n, dtype=np.int64, endpoint=True)
        steady[:4] = [-(1 << 63), (1 << 63) - 1, 0, -1]
        sizes = [3, 1000, 4997]
    return steady, sizes


@pytest.mark.parametrize("case", ["steady", "gaps", "backwards", "late_exception", "unaligned", "extremes"])
def test_compact_store_ts_round_trip_is_exact(case: str) -> None:
    """ts_ns (block base + uint32 offset) reads back exactly after every batch: whole, windows, take, slices,
    reordered and trimmed; a block that does not fit is an exception on its own, the column stays compact."""
    from tracer.capture.index import SCHEMA
    from tracer.capture.store import TS_BLOCK, ColumnStore

    rng = np.random.default_rng(11)
    want, sizes = _ts_case(case, rng)
    cols = _random_columns(rng, len(want))
    cols["ts_ns"] = want
    store = ColumnStore(SCHEMA)
    stored = 0
    early = None
    for size in sizes:
        store.append({name: v[stored:stored + size] for name, v in cols.items()})
        stored += size
        if early is None and stored > 500:
            early = (stored, store.slice(0, stored))      # a reader's view taken before later batches
        assert np.array_equal(store.column("ts_ns"), want[:stored]), stored
        lo = int(rng.integers(0, stored))
        assert np.array_equal(store.column("ts_ns", lo, lo + 64), want[lo:min(lo + 64, stored)]), (stored, lo)
    assert np.array_equal(early[1].column("ts_ns"), want[:early[0]])
    rows = rng.integers(0, len(want), 40)
    for got in (store.take("ts_ns", rows), store.take("ts_ns", np.concatenate([rows] * 10))):
        assert got.dtype == np.int64 and np.array_equal(got, want[np.resize(rows, len(got))])
    window = store.slice(900, 4000)
    assert np.array_equal(window.column("ts_ns"), want[900:4000])
    assert np.array_equal(window.take("ts_ns", np.array([0, 3099, 100])), want[[900, 3999, 1000]])
    for k in range(0, len(want), 997):                      # single rows across block edges
        assert int(store.column("ts_ns", k, k + 1)[0]) == int(want[k])
    order = np.argsort(want, kind="stable")
    assert np.array_equal(store.reordered(order).column("ts_ns"), want[order])
    store.trim()
    assert np.array_equal(store.column("ts_ns", 0, len(want)), want)
    blocks = -(-len(want) // TS_BLOCK)
    exceptions = len(store._tsx[0])  # noqa: SLF001 - the blocks stored with high parts
    if case == "extremes":
        assert exceptions > blocks * 0.9
    else:
        assert exceptions <= {"steady": 0, "unaligned": 0, "gaps": 2, "backwards": 41, "late_exception": 2}[case]
        assert store.nbytes() / len(store) < 60
    others = sum(g.data.nbytes for name, g in store._phys.items()  # noqa: SLF001
                 if not name.startswith("ts_"))
    ts_bytes = store.nbytes() - others
    assert ts_bytes <= 4 * len(want) + 8 * blocks + exceptions * (8 + 4 * TS_BLOCK)


def test_ts_reader_on_another_thread_sees_exact_values() -> None:
    """A reader thread reading ts_ns windows, takes and whole columns while batches (with gaps that make
    exceptions, and steps back) are appended only ever sees the exact values of the rows already stored."""
    import threading

    from tracer.capture.index import SCHEMA
    from tracer.capture.store import ColumnStore

    rng = np.random.default_rng(5)
    n = 40_000
    want = T0 + np.cumsum(rng.integers(-50_000, 300_000, n))
    want[rng.choice(n, 30, replace=False)] += 6 * 10**9
    cols = _random_columns(rng, n)
    cols["ts_ns"] = want
    store = ColumnStore(SCHEMA)
    done = threading.Event()
    wrong: list[str] = []

    def read() -> None:
        r = np.random.default_rng(6)
        while not done.is_set() and not wrong:
            n_seen = len(store)
            if not n_seen:
                continue
            lo = int(r.integers(0, n_seen))
            if not np.array_equal(store.column("ts_ns", lo, lo + 64), want[lo:min(lo + 64, n_seen)]):
                wrong.append(f"window at {lo}")
            rows = r.integers(0, n_seen, 20)
            if not np.array_equal(store.take("ts_ns", rows), want[rows]):
                wrong.append("take")
            whole = store.column("ts_ns")
            if not np.array_equal(whole, want[:len(whole)]):
                wrong.append("whole")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    at = 0
    while at < n:
        size = int(rng.integers(1, 700))
        store.append({name: v[at:at + size] for name, v in cols.items()})
        at += size
    done.set()
    reader.join(10)
    assert not wrong, wrong[:3]
    assert np.array_equal(store.column("ts_ns"), want)


def test_index_of_the_benchmark_mix_is_compact(shared_dir, tmp_path: Path) -> None:
    """The benchmark's overlay mix: under 60 index bytes a packet (ts_ns 4 + a little), timestamps exact."""
    import subprocess
    import sys

    from tracer.capture.pcap import PcapReader
    from tracer.capture.source import open_capture

    out = tmp_path / "mix.pcap"
    subprocess.run([sys.executable, str(shared_dir / "tools" / "gen_overlay_pcap.py"), "20000", str(out)],
                   check=True, capture_output=True)
    index = load_index([str(out)])
    assert index.bytes_used() / len(index) < 60
    assert np.array_equal(index["ts_ns"], PcapReader(open_capture(str(out))).read(1 << 20).ts_ns)


def test_compact_store_matches_dense_decode_on_real_captures(public_captures: Path) -> None:
    """The index of real captures equals decode_frames' dense columns (no compaction loss on real data)."""
    from tracer.capture.pcap import PcapReader
    from tracer.capture.source import open_capture
    from tracer.decode.addr6 import Addr6Table
    from tracer.decode.fields import decode_frames

    for name in ("vxlan-4789-ssh-dns-ntp-vni5569041-suricata.pcap", "gre-within-gre-zeek.pcap",
                 "ipv6-fragments-pcapplusplus.pcap", "geneve-6081-ssh-icmp-vni10-11-tcpdump.pcap"):
        path = str(public_captures / name)
        index = load_index([path])
        reader = PcapReader(open_capture(path))
        recs = reader.read(1 << 20)
        buf = np.frombuffer(reader.cf.mapping(), np.uint8)
        dense = decode_frames(buf, recs.offset, recs.caplen, np.full(len(recs), reader.interfaces[0].linktype,
                                                                     np.uint16),
                              vxlan_ports=frozenset((4789, 8472)), addr6=Addr6Table())
        dense.update(ts_ns=recs.ts_ns, offset=recs.offset, caplen=recs.caplen, origlen=recs.origlen)
        for col, want in dense.items():
            assert np.array_equal(index[col], want), (name, col)


def test_followed_file_is_read_as_it_grows(tmp_path: Path) -> None:
    """follow=True: packets appended while the build runs are indexed; stop() ends it after the last one."""
    path = tmp_path / "live.pcapng"
    frames = [_frame(k) for k in range(5)]
    path.write_bytes(W.shb() + W.idb(name="node-1/eth0") + W.epb("<", 0, 1, frames[0]) + W.epb("<", 0, 2, frames[1]))
    builder = IndexBuilder([str(path)], follow=True)
    steps = builder.run()
    next(steps)
    assert len(builder.index) == 2
    with open(path, "ab") as fh:
        fh.write(W.epb("<", 0, 3, frames[2]) + W.epb("<", 0, 4, frames[3])[:20])   # the last block half-written
    deadline = time.monotonic() + 10
    while len(builder.index) < 3 and time.monotonic() < deadline:
        next(steps)
    assert len(builder.index) == 3
    with open(path, "ab") as fh:
        fh.write(W.epb("<", 0, 4, frames[3])[20:])
    builder.stop()
    for _ in steps:
        pass
    assert len(builder.index) == 4 and builder.index.warnings == []
    assert builder.index.frame(3) == frames[3]


def test_stop_while_waiting_for_an_empty_followed_file(tmp_path: Path) -> None:
    """A followed file that never receives a byte: stop() from another thread ends the wait with an error."""
    import threading

    from tracer.errors import CaptureError

    path = tmp_path / "empty.pcapng"
    path.write_bytes(b"")
    builder = IndexBuilder([str(path)], follow=True)
    outcome: list[BaseException | None] = []

    def build() -> None:
        try:
            builder.finish()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=build, daemon=True)
    worker.start()
    time.sleep(0.3)
    builder.stop()
    worker.join(20)
    assert not worker.is_alive(), "stop() did not end the wait"
    assert isinstance(outcome[0], CaptureError) and "empty" in str(outcome[0])


def test_sll2_interface_index_gives_one_source_each(tmp_path: Path) -> None:
    """`tcpdump -i any` (SLL2): packets keep their interface index as separate Sources of the same file."""
    from scapy.layers.l2 import CookedLinuxV2

    frames = [bytes(CookedLinuxV2(proto=0x0800, ifindex=k) / IP(src="10.0.0.1", dst="10.0.0.2", id=k) / TCP())
              for k in (3, 7, 3)]
    path = tmp_path / "node-1__any.pcap"
    path.write_bytes(W.pcap_bytes([(T0 + k, f) for k, f in enumerate(frames)], linktype=276))
    index = load_index([str(path)])
    srcs = [index.sources[s] for s in index["source"].tolist()]
    assert [s.ifindex for s in srcs] == [3, 7, 3]
    assert srcs[0].id == srcs[2].id != srcs[1].id
    assert {s.point for s in srcs} == {"node-1/any"} and all(s.linktype == 276 for s in srcs)
    assert index["i_ipid"].tolist() == [3, 7, 3]


READER_AGREEMENT = [   # one file per reader feature (tshark starts in ~1 s, so not the whole corpus)
    "pcap-big-endian-nanosecond-http-pcapplusplus.pcap", "pcap-gzip-compressed-tls-scapy.pcap.gz",
    "sll-nanosecond-invalid-subsecond-tcpdump.pcap", "pcapng-suite-test102-all-block-types-be.pcapng",
    "pcapng-suite-test202-multi-section-mixed-endian-be.pcapng", "pcapng-timestamp-2106-overflow-tcpdump.pcapng",
    "pcapng-lo-sll-plus-eth-snaplen128-pcapplusplus.pcapng", "udp-8472-first-fragment-snaplen46-tcpdump.pcap",
]


@pytest.mark.parametrize("name", READER_AGREEMENT)
def test_readers_agree_with_tshark(public_captures: Path, name: str) -> None:
    """Per packet: timestamp (to the ns), wire length and captured length equal tshark's, computed now.

    tshark lists pcapng Custom Blocks as frames ("data", no time): they are not packets and are skipped; Simple
    Packet Blocks have no time in tshark (tracer gives them the previous packet's), so their time is not compared.
    """
    import shutil
    import subprocess

    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (CI installs it)")
    out = subprocess.run(["tshark", "-n", "-r", str(public_captures / name), "-T", "fields", "-e", "frame.protocols",
                          "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len"],
                         capture_output=True, text=True, timeout=60).stdout
    want = []
    for line in out.splitlines():
        protocols, epoch, length, caplen = line.split("\t")
        if protocols == "data" and not epoch:
            continue
        sec, _, frac = epoch.partition(".")
        ts = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")) if epoch and not sec.startswith("-") else None
        want.append((ts, int(length), int(caplen)))
    index = load_index([str(public_captures / name)])
    got = list(zip(index["ts_ns"].tolist(), index["origlen"].tolist(), index["caplen"].tolist()))
    assert len(got) == len(want)
    for (g_ts, g_len, g_cap), (w_ts, w_len, w_cap) in zip(got, want):
        assert (g_len, g_cap) == (w_len, w_cap)
        if w_ts is not None and w_ts < 1 << 63:   # beyond int64 ns: a garbage time, not comparable
            assert g_ts == w_ts


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    given = None

if given is not None:
    _packets = st.lists(st.tuples(st.integers(0, 2**40), st.binary(min_size=0, max_size=300)), min_size=0,
                        max_size=40)

    def _container(kind: str, packets: list[tuple[int, bytes]]) -> tuple[bytes, list[int]]:
        """Write ``packets`` (ts in µs) as ``kind``; return the bytes and the timestamps the file can carry (ns)."""
        if kind.startswith("pcap-"):
            order = "<" if "le" in kind else ">"
            nano = kind.endswith("ns")
            return (W.pcap_bytes([(t * 1000, d) for t, d in packets], order=order, nano=nano),
                    [t * 1000 for t, _ in packets])
        order = "<" if kind == "pcapng-le" else ">"
        body = b"".join(W.epb(order, 0, t, d) for t, d in packets)
        return W.shb(order) + W.idb(order, name="n/eth0") + body, [t * 1000 for t, _ in packets]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(files=st.lists(st.tuples(st.sampled_from(["pcap-le-us", "pcap-be-ns", "pcapng-le", "pcapng-be"]),
                                    _packets), min_size=1, max_size=3))
    def test_written_captures_read_back_exactly(tmp_path_factory, files) -> None:
        """Any frames in any container, one to three files: every frame comes back with its time and bytes,
        merged in stable timestamp order (ties in file order)."""
        tmp = tmp_path_factory.mktemp("prop")
        paths, expect = [], []
        for k, (kind, packets) in enumerate(files):
            data, stamps = _container(kind, packets)
            path = tmp / f"f{k}.cap"
            path.write_bytes(data)
            paths.append(str(path))
            expect += [(ts, k, pos, d) for pos, (ts, (_, d)) in enumerate(zip(stamps, packets))]
        if not any(packets for _, packets in files):
            return
        index = load_index(paths)
        if len(files) > 1:
            expect.sort(key=lambda e: (e[0], e[1], e[2]))
        got = [(int(t), index.sources[int(s)].file_id, index.frame(r))
               for r, (t, s) in enumerate(zip(index["ts_ns"], index["source"]))]
        assert got == [(ts, k, d) for ts, k, _, d in expect]
        assert index["caplen"].tolist() == [len(d) for *_, d in expect]
        assert index.warnings == []
