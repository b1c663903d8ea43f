"""`tracer live` on a flannel-vxlan lab node (root): capture points, one packet recognised at every hop, clean stop
on SIGINT, a readable spool after SIGKILL, a bounded ring under a flood, kernel drops reported, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import needs_root
from tests.live_helpers import isb_counters, walk_pcapng

pytestmark = [needs_root(), pytest.mark.root]
PY = sys.executable


def _live(*args: str) -> list[str]:
    return [PY, "-m", "tracer", "live", *args]


def _agent(ns: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net=/run/netns/{ns}", PY, "-m", "tracer.lab.agent", *args],
                          capture_output=True, text=True, timeout=30)


_SPAWNED: list[subprocess.Popen] = []


def _spawn(argv: list[str], **kw) -> subprocess.Popen:
    """Popen that the autouse fixture below kills if the test ends (or fails) with it still running."""
    proc = subprocess.Popen(argv, **kw)
    _SPAWNED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _no_stray_processes():
    yield
    while _SPAWNED:
        proc = _SPAWNED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _wait_for(path: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)
    time.sleep(0.3)    # the rings are bound before the spool opens; give the kernel a moment


@pytest.fixture(scope="module")
def lab():
    from tracer.lab import lifecycle

    try:
        yield lifecycle.up("flannel-vxlan", 2)
    finally:
        lifecycle.down()


@pytest.fixture()
def floodns():
    """A namespace with a veth pair fa <-> fb for floods, always removed."""
    from pyroute2 import IPRoute
    from pyroute2 import netns as pnetns

    name = "trl-test-flood"
    if os.path.exists(f"/run/netns/{name}"):
        pnetns.remove(name)
    pnetns.create(name)
    try:
        with IPRoute(netns=name, flags=0) as ipr:
            ipr.link("add", ifname="fa", kind="veth", peer="fb")
            for n in ("fa", "fb"):
                ipr.link("set", index=ipr.link_lookup(ifname=n)[0], state="up")
        yield name
    finally:
        pnetns.remove(name)


def test_one_packet_at_every_hop(lab, tmp_path) -> None:
    """Capturing veth, cni0, flannel.1 and eth0 of node1 while nginx pings tomcat on node2: every echo request
    (same inner IP ID) is seen at all four points, in path order, VXLAN VNI 1 on eth0 only; rows name the points."""
    from tracer.capture.index import load_index

    nginx = lab.pod("linux/nginx")
    tomcat = lab.pod("linux/tomcat")
    out = tmp_path / "hops.pcapng"
    ifaces = [nginx.host_iface, "cni0", "flannel.1", "eth0"]
    proc = _spawn(_live("--netns", "trl-node1", *sum((["-i", i] for i in ifaces), []), "--no-ui",
                                  "--format", "jsonl", "--write", str(out), "--duration", "4"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(str(out) + ".part")
    assert _agent(nginx.netns, "ping", tomcat.ip, "3").returncode == 0
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    points = [f"node1/{i}" for i in ifaces]
    assert {r["point"] for r in rows} >= set(points)
    index = load_index([str(out)])
    point = np.array([index.sources[s].point for s in index["source"]])
    req = (index["i_proto"] == 1) & (index["icmp_type"] == 8) & (index["i_src"] == _ip(nginx.ip))
    ids = sorted(set(index["i_ipid"][req].tolist()))
    assert len(ids) == 3
    for ipid in ids:
        rows_of = np.flatnonzero(req & (index["i_ipid"] == ipid))
        assert point[rows_of].tolist() == points          # in path order, once each
        assert np.all(np.diff(index["ts_ns"][rows_of]) >= 0)
        encap = index["encap"][rows_of].tolist()
        assert encap == [0, 0, 0, 1] and index["vni"][rows_of][-1] == 1


def test_two_nodes_from_one_command(lab, tmp_path) -> None:
    """NETNS:IFACE captures another namespace's interface: node1/eth0 and node2/eth0 in one capture, and each
    VXLAN datagram leaving node1 is seen arriving on node2 (same outer IP ID, later or equal timestamp)."""
    out = tmp_path / "two.pcapng"
    proc = _spawn(_live("-i", "trl-node1:eth0", "-i", "trl-node2:eth0", "--no-ui", "--format", "jsonl",
                                  "--write", str(out), "--duration", "3"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(str(out) + ".part")
    assert _agent(lab.pod("linux/nginx").netns, "ping", lab.pod("linux/tomcat").ip, "2").returncode == 0
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    vx = [r for r in rows if r["encap"] == "vxlan" and r["src"] == lab.nodes[0].ip]
    by_point = {p: {r["ip_id"]: r["ts"] for r in vx if r["point"] == p} for p in ("node1/eth0", "node2/eth0")}
    assert len(by_point["node1/eth0"]) >= 2
    assert by_point["node1/eth0"].keys() == by_point["node2/eth0"].keys()


def _ip(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def test_default_interfaces_are_the_cni_ones(lab) -> None:
    """Without --iface, tracer live picks the node's CNI interfaces and says which."""
    res = subprocess.run(_live("--netns", "trl-node1", "--no-ui", "--duration", "0.5"), capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    line = next(l for l in res.stderr.splitlines() if "capturing on" in l)
    for iface in ("eth0", "cni0", "flannel.1", lab.pod("linux/nginx").host_iface):
        assert iface in line
    assert "flannel-vxlan" in line


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_sigint_leaves_a_valid_pcapng(lab, tmp_path) -> None:
    """SIGINT stops the capture; --write holds a complete pcapng that tshark reads, with every captured packet."""
    out = tmp_path / "int.pcapng"
    proc = _spawn(_live("--netns", "trl-node1", "-i", "eth0", "-i", "cni0", "--quiet", "--write", str(out)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(str(out) + ".part")
    _agent(lab.pod("linux/nginx").netns, "get", f"http://{lab.pod('linux/tomcat').ip}:8080/")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert out.exists() and not (tmp_path / "int.pcapng.part").exists()
    captured = int(stderr.split("captured ")[1].split()[0])
    ts = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.interface_name"],
                        capture_output=True, text=True)
    assert ts.returncode == 0, ts.stderr
    names = [l for l in ts.stdout.splitlines() if l]
    assert captured > 0 and len(names) == captured
    assert set(names) == {"node1/eth0", "node1/cni0"}
    assert set(isb_counters(out.read_bytes())) == {0, 1}


def test_sigkill_keeps_old_file_and_readable_spool(lab, tmp_path) -> None:
    """SIGKILL mid-capture: the --write target keeps its old content; the spool reads up to its last complete
    block (tracer show, no traceback)."""
    out = tmp_path / "kill.pcapng"
    out.write_bytes(b"old capture")
    proc = _spawn(_live("--netns", "trl-node1", "-i", "eth0", "--quiet", "--write", str(out)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = str(out) + ".part"
    _wait_for(part)
    _agent(lab.pod("linux/nginx").netns, "ping", lab.pod("linux/tomcat").ip, "2")
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert out.read_bytes() == b"old capture"
    blocks, _ = walk_pcapng(open(part, "rb").read())
    epbs = sum(1 for t, _ in blocks if t == 6)
    assert epbs >= 4
    res = subprocess.run([PY, "-m", "tracer", "show", "--format", "jsonl", part], capture_output=True, text=True)
    assert "Traceback" not in res.stderr
    assert len([l for l in res.stdout.splitlines() if l]) == epbs


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_ring_bounds_the_spool_under_a_flood(floodns, tmp_path) -> None:
    """--ring-mb 1 under a 2 s flood: the spool on disk stays near 1 MB, the oldest segments are rotated away (and
    said so), and the kept capture is a valid multi-section pcapng."""
    out = tmp_path / "ring.pcapng"
    proc = _spawn(["nsenter", f"--net=/run/netns/{floodns}", *_live("-i", "fb", "--quiet", "--ring-mb", "1",
                                                                          "--write", str(out))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(str(out) + ".part.0000")
    flood = _spawn(["nsenter", f"--net=/run/netns/{floodns}", PY, "-m", "tracer.lab.flood", "fa", "50000",
                              "2", "200"], stdout=subprocess.PIPE, text=True)
    peak = 0
    while flood.poll() is None:
        peak = max(peak, _spool_size(tmp_path, "ring.pcapng.part.*"))
        time.sleep(0.05)
    sent = json.loads(flood.stdout.read())["sent"]
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert sent > 50000
    assert peak <= 1_000_000 + 300_000, peak
    assert "rotated away" in stderr
    assert out.stat().st_size <= 1_300_000
    ts = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.number"], capture_output=True,
                        text=True)
    assert ts.returncode == 0, ts.stderr
    assert 0 < len(ts.stdout.split()) < sent


def _spool_size(directory, pattern: str) -> int:
    """Bytes in the spool segments present now (a segment may be rotated away between listing and stat)."""
    total = 0
    for p in directory.glob(pattern):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


def test_kernel_drops_are_reported(floodns, tmp_path) -> None:
    """A capture that stalls under a flood (SIGSTOP) loses packets in the kernel; a warning says so while it runs,
    the count is reported on exit and written into the file's interface statistics."""
    out = tmp_path / "drops.pcapng"
    proc = _spawn(["nsenter", f"--net=/run/netns/{floodns}",
                             *_live("-i", "fb", "--quiet", "--buffer-mb", "2", "--write", str(out))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(str(out) + ".part")
    pid = proc.pid      # nsenter (without --fork) execs tracer in place: the same process
    os.kill(pid, signal.SIGSTOP)
    try:
        subprocess.run(["nsenter", f"--net=/run/netns/{floodns}", PY, "-m", "tracer.lab.flood", "fa", "50000", "1",
                        "1000"], capture_output=True, check=True, timeout=30)
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "warning: the kernel dropped" in stderr          # said while capturing, not only at the end
    dropped = int(stderr.split("captured ")[1].split("kernel dropped ")[1].split(";")[0].split()[0])
    assert dropped > 0
    recv, drop = isb_counters(out.read_bytes())[0]
    assert drop == dropped and recv >= drop


def test_unknown_interface_lists_available(lab) -> None:
    """An unknown interface is one line listing the ones that exist, exit 2."""
    res = subprocess.run(_live("--netns", "trl-node1", "-i", "nope0", "--no-ui", "--duration", "0.2"),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert res.stderr.startswith("tracer: no interface 'nope0'") and "flannel.1" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_filter_is_one_line() -> None:
    """A capture filter that does not compile: one line, exit 2."""
    res = subprocess.run(_live("-i", "lo", "--filter", "port ((", "--no-ui", "--duration", "0.2"),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "capture filter" in res.stderr


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
def test_without_permission_says_how_to_fix() -> None:
    """Without CAP_NET_RAW: one line naming the capability and the setcap fix, exit 2."""
    # Root without CAP_NET_RAW in its bounding set: the capability is gone, file access (the interpreter under
    # /root) is not.
    res = subprocess.run(["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw",
                          *_live("-i", "lo", "--no-ui", "--duration", "0.2")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1
    assert "CAP_NET_RAW" in res.stderr and "setcap cap_net_raw" in res.stderr


def test_lab_capture_writes_points_merged_and_cluster(lab, tmp_path) -> None:
    """`lab capture --pods --skew node2=25` writes per-point NODE__IFACE files, a merged pcapng and cluster.yaml;
    the denied SYN reaches node2/cni0 but never linux/tomcat's veth, while the allowed nginx → tomcat SYN does."""
    import yaml

    from tracer.capture.index import load_index

    res = subprocess.run([PY, "-m", "tracer", "lab", "capture", str(tmp_path), "--pods", "--skew", "node2=25"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    tomcat, ptomcat, nginx = lab.pod("linux/tomcat"), lab.pod("python/tomcat"), lab.pod("linux/nginx")
    names = {p.name for p in (tmp_path / "points").iterdir()}
    assert {"node1__eth0.pcapng", "node2__flannel.1.pcapng", f"node2__{tomcat.host_iface}.pcapng"} <= names
    docs = yaml.safe_load((tmp_path / "cluster.yaml").read_text())
    kinds = {i["kind"] for i in docs["items"]}
    assert docs["kind"] == "List" and kinds == {"Namespace", "Node", "Pod", "Service", "EndpointSlice",
                                                 "NetworkPolicy"}
    index = load_index([str(tmp_path / "merged.pcapng")])
    point = np.array([index.sources[s].point for s in index["source"]])
    syn = (index["i_proto"] == 6) & (index["tcp_flags"] & 0x12 == 0x02) & (index["i_dport"] == 8080)
    denied = set(point[syn & (index["i_src"] == _ip(ptomcat.ip))].tolist())
    allowed = set(point[syn & (index["i_src"] == _ip(nginx.ip)) & (index["i_dst"] == _ip(tomcat.ip))].tolist())
    assert "node2/cni0" in denied and f"node2/{tomcat.host_iface}" not in denied
    assert f"node2/{tomcat.host_iface}" in allowed
    flows = json.loads((tmp_path / "traffic.json").read_text())["flows"]
    assert [f["label"] for f in flows if not f["ok"]] == ["http python/tomcat->linux/tomcat (denied)"]
    # --pods: the pods' own eth0 are points; --skew node2=25: every VXLAN datagram seen on both eth0s is stamped
    # 25 ms later on node2 than the wire allows, in both directions.
    assert f"pod:{nginx.namespace}/{nginx.name}" in {s.point for s in index.sources}
    assert f"pod_{nginx.namespace}_{nginx.name}.pcapng" in names
    vx = index["encap"] == 1
    deltas = []
    for ipid in set(index["o_ipid"][vx & (point == "node1/eth0")].tolist()):
        a = np.flatnonzero(vx & (point == "node1/eth0") & (index["o_ipid"] == ipid))
        b = np.flatnonzero(vx & (point == "node2/eth0") & (index["o_ipid"] == ipid))
        if len(a) == 1 and len(b) == 1 and index["o_src"][a[0]] == index["o_src"][b[0]]:
            deltas.append(int(index["ts_ns"][b[0]]) - int(index["ts_ns"][a[0]]))
    assert len(deltas) > 10
    assert all(24_000_000 < d < 26_000_000 for d in deltas), sorted(deltas)[:3]
    bad = subprocess.run([PY, "-m", "tracer", "lab", "capture", str(tmp_path / "x"), "--skew", "node9=1"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "node9" in bad.stderr


def test_user_drops_privileges_after_opening() -> None:
    """--user: the capture runs as that user once the socket is open, and the file still gets written."""
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="tracer-test-user-", dir="/tmp"))   # reachable by nobody, unlike tmp_path
    try:
        d.chmod(0o777)
        out = d / "u.pcapng"
        proc = _spawn(_live("-i", "lo", "--user", "nobody", "--quiet", "--write", str(out), "--duration",
                                      "1.5"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(str(out) + ".part")
        with open(f"/proc/{proc.pid}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        assert set(uids) == {"65534"}
        assert out.exists() and out.stat().st_uid == 65534
    finally:
        shutil.rmtree(d, ignore_errors=True)
