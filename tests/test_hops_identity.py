"""The same packet at every capture point: packet_id across hops, encapsulation, TTL and MAC rewrites, DNAT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tracer.capture.index import load_index
from tracer.hops.clocks import crossing_delays, estimate_offsets
from tracer.hops.identity import assign_packet_ids, components, group_by_key


def gen_hops(shared_dir: Path, tmp_path: Path, records: int, seed: int = 1) -> Path:
    out = tmp_path / f"hops-{records}-{seed}.pcapng"
    subprocess.run([sys.executable, str(shared_dir / "tools" / "gen_overlay_pcap.py"), str(records), str(out),
                    "--pcapng", "--hops", "--seed", str(seed)], check=True, capture_output=True)
    return out


def generator_truth(iface_of_row: list[str]) -> np.ndarray:
    """Logical packets as gen_overlay_pcap --hops writes them (its docstring): veth→cni0→flannel.1→eth0 for
    VXLAN, cali→tunl0→eth0 for IPIP, veth→cni0→veth on one node; consecutive records, in that order."""
    truth = np.empty(len(iface_of_row), dtype=np.int64)
    i = g = 0
    while i < len(iface_of_row):
        name = iface_of_row[i]
        if name.startswith("cali"):
            k = 3
        elif name.startswith("veth"):
            k = 4 if i + 2 < len(iface_of_row) and iface_of_row[i + 2] == "flannel.1" else 3
        else:
            raise AssertionError(f"record {i} starts a packet on {name}")
        truth[i:i + k] = g
        i += k
        g += 1
    return truth


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Two labelings group the rows identically (labels themselves may differ)."""
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("seed", [1, 7])
def test_packet_id_matches_the_generator(shared_dir: Path, tmp_path: Path, seed: int) -> None:
    """Every record of one logical packet (veth, cni0, flannel.1, eth0 / cali, tunl0, eth0) gets one packet_id,
    and different logical packets never share one — across TTL decrement, MAC rewrite and encapsulation."""
    path = gen_hops(shared_dir, tmp_path, 6000, seed)
    index = load_index([str(path)])
    names = [index.sources[s].iface for s in index["source"].tolist()]
    pid = assign_packet_ids(index, index["ts_ns"].astype(np.int64))
    truth = generator_truth(names)
    # The generator may cut the last logical packet short; it still forms one group.
    assert (pid >= 0).all()
    assert same_partition(pid, truth)
    assert len(np.unique(pid)) > 1500


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    names = ["i_ver", "i_proto", "i_ipid", "i_len", "tcp_seq", "tcp_ack", "icmp_type", "icmp_id", "icmp_seq",
             "i_src", "i_sport", "i_dst", "i_dport", "flags"]
    return {n: np.array([r.get(n, 0) for r in rows], dtype=np.int64) for n in names}


BASE = dict(i_ver=4, i_proto=6, i_ipid=4242, i_len=60, tcp_seq=1000, tcp_ack=0, i_src=0x0AF40105, i_sport=40123,
            i_dst=0x0A60002A, i_dport=80)


def test_dnat_keeps_one_packet() -> None:
    """kube-proxy DNAT changes destination and port; IP ID, source port and seq stay: still one packet."""
    before = dict(BASE)
    after = dict(BASE, i_dst=0x0AF40207, i_dport=8080)
    other = dict(BASE, i_ipid=4243, tcp_seq=1001)
    cols = _columns([before, before, after, after, other])
    ts = np.array([0, 2_000, 9_000, 16_000, 30_000])
    pid = assign_packet_ids(cols, ts)
    assert pid[0] == pid[1] == pid[2] == pid[3] != pid[4]


def test_reply_un_dnat_keeps_one_packet() -> None:
    """A reply's source is rewritten back to the Service address; its destination, IP ID and seq stay."""
    from_pod = dict(BASE, i_src=0x0AF40207, i_sport=8080, i_dst=0x0AF40105, i_dport=40123, tcp_ack=1001)
    from_svc = dict(from_pod, i_src=0x0A60002A, i_sport=80)
    pid = assign_packet_ids(_columns([from_pod, from_pod, from_svc]), np.array([0, 5_000, 12_000]))
    assert len(set(pid.tolist())) == 1


def test_equal_keys_far_apart_are_different_packets() -> None:
    """The same key a second later (a retransmission without a new IP ID, IPv6) is another packet."""
    pid = assign_packet_ids(_columns([BASE, BASE, BASE, BASE]), np.array([0, 5_000, 1_000_000_000, 1_000_005_000]))
    assert pid[0] == pid[1] != pid[2] == pid[3]


def test_non_ip_rows_have_no_packet() -> None:
    pid = assign_packet_ids(_columns([dict(BASE), dict(i_ver=0)]), np.array([0, 1]))
    assert pid[1] == -1 and pid[0] >= 0


def test_group_by_key_window() -> None:
    key = np.array([5, 5, 5, 9], dtype=np.uint64)
    ts = np.array([0, 10, 100, 0])
    g = group_by_key(key, ts, 50)
    assert g[0] == g[1] != g[2] and g[3] not in (g[0], g[2])


def test_components_chain() -> None:
    """Rows linked through either grouping end in one component (a → b by key 1, b → c by key 2)."""
    a = np.array([0, 0, 1, 2])
    b = np.array([5, 6, 6, 7])
    lab = components(a, b)
    assert lab[0] == lab[1] == lab[2] != lab[3]


def test_clock_offsets_ntp_style() -> None:
    """Node B runs 3 ms ahead: A→B packets look 3 ms slower, B→A 3 ms faster; the estimate recovers +3 ms and
    the symmetric one-way delay."""
    delay, skew = 40_000, 3_000_000
    rows = []   # (packet, node, ts, src_node, dst_node)
    for k in range(20):
        t = k * 1_000_000
        jitter = (k * 7919) % 5000
        rows += [(2 * k, 0, t, 0, 1), (2 * k, 1, t + delay + jitter + skew, 0, 1)]
        rows += [(2 * k + 1, 1, t + skew, 1, 0), (2 * k + 1, 0, t + delay + jitter, 1, 0)]
    arr = np.array(rows, dtype=np.int64)
    s, d, dl = crossing_delays(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4])
    est = estimate_offsets(["a", "b"], s, d, dl, {"a": 10})
    assert est.reference == "a"
    assert est.offsets_ns["b"] == skew
    assert est.one_way_ns[("a", "b")] == delay
    assert est.seconds() == {"a": 0.0, "b": 0.003}


def test_one_way_traffic_is_not_an_estimate() -> None:
    """Packets in one direction only cannot separate delay from offset: nothing is reported."""
    arr = np.array([(0, 0, 0, 0, 1), (0, 1, 5_000_000, 0, 1)], dtype=np.int64)
    s, d, dl = crossing_delays(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4])
    est = estimate_offsets(["a", "b"], s, d, dl)
    assert est.seconds() == {} and est.estimated["b"] is False


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def observed_packets(draw):
    """Packets (random 5-tuples, IP IDs, seq) each observed at 1-8 points a few µs apart, some rewritten by DNAT
    part-way (destination and port change), with TTL/MAC changes that the columns do not carry anyway."""
    n = draw(st.integers(1, 40))
    rows, truth, ts = [], [], []
    t = 0
    for k in range(n):
        proto = draw(st.sampled_from([6, 17, 1]))
        base = dict(i_ver=4, i_proto=proto, i_ipid=draw(st.integers(0, 65535)), i_len=draw(st.integers(28, 1500)),
                    i_src=draw(st.integers(1, 2**32 - 1)), i_dst=draw(st.integers(1, 2**32 - 1)))
        if proto == 6:
            base.update(i_sport=draw(st.integers(1, 65535)), i_dport=draw(st.integers(1, 65535)),
                        tcp_seq=draw(st.integers(0, 2**32 - 1)), tcp_ack=draw(st.integers(0, 2**32 - 1)))
        elif proto == 17:
            base.update(i_sport=draw(st.integers(1, 65535)), i_dport=draw(st.integers(1, 65535)))
        else:
            base.update(icmp_type=8, icmp_id=draw(st.integers(1, 65535)), icmp_seq=draw(st.integers(0, 65535)))
        hops = draw(st.integers(1, 8))
        nat_at = draw(st.integers(1, 9))
        t += draw(st.integers(200_000_000, 400_000_000))   # packets far enough apart not to be confused
        for h in range(hops):
            obs = dict(base)
            if h >= nat_at and proto != 1:
                obs.update(i_dst=base["i_dst"] ^ 0x5A5A, i_dport=(base["i_dport"] + 7) % 65536 or 1)
            rows.append(obs)
            truth.append(k)
            t += draw(st.integers(1_000, 40_000))
            ts.append(t)
    return rows, np.array(truth), np.array(ts, dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(observed_packets())
def test_identity_property(sample) -> None:
    """Whatever the tuples, the hop count and where DNAT happens: one packet_id per physical packet."""
    rows, truth, ts = sample
    pid = assign_packet_ids(_columns(rows), ts)
    assert same_partition(pid, truth)
