"""``PacketIndex.take(name, rows)``: the contract's values at any rows, from every storage form of the compact
store (dense, narrow, outer-only-where-encapsulated, TCP/ICMP union), without caching a rebuilt column."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tracer.capture.index import load_index


def test_take_equals_the_whole_column_at_those_rows(shared_dir, tmp_path) -> None:
    out = tmp_path / "mix.pcap"
    subprocess.run([sys.executable, str(shared_dir / "tools" / "gen_overlay_pcap.py"), "3000", str(out)],
                   check=True, capture_output=True)
    index = load_index([str(out)])
    n = len(index)
    assert (np.asarray(index["encap"]) != 0).any() and (np.asarray(index["encap"]) == 0).any()
    rng = np.random.default_rng(7)
    few = rng.choice(n, 40, replace=False)            # one by one
    many = rng.choice(n, 1000, replace=False)         # one uncached rebuild
    for name in index.columns:
        index.drop_cache()
        for rows in (few, many, np.array([n - 1, 0, 5, 5])):
            got = index.take(name, rows)
            assert got.dtype == index[name].dtype, name
            assert np.array_equal(got, np.asarray(index[name])[rows]), name
            index.drop_cache()
        assert not index._store._cache, name  # noqa: SLF001 - take never leaves a rebuilt column behind
    window = index.slice(100, 200)
    for name in ("o_src", "vni", "tcp_seq", "icmp_id", "source", "ts_ns"):
        assert np.array_equal(window.take(name, np.array([0, 99, 50])), np.asarray(index[name])[[100, 199, 150]])
