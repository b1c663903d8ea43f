"""Nothing lost: SIGKILL during an export or a live capture leaves the old file or a complete new one, and the
live spool reads up to its last complete block; a flood keeps memory bounded.

Files are judged by the independent walker (``capwalk``), not by tracer's readers. Live tests capture on
loopback only (traffic from this test to 127.0.0.1) and need root (AF_PACKET); they skip otherwise.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tracer.fuzz import build as B

from .capwalk import walk
from .runner import record_figure

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]
KILLS = 4
OLD = B.pcapng_file([B.Section(records=[B.Record(b"\x02" * 60)])])  # a valid one-packet pcapng: "the old file"


def _big_capture(path: Path, packets: int) -> None:
    frame = B.ethernet(B.ipv4(B.udp(b"p" * 200, 40000, 8472), B.IP_UDP), B.ETH_IPV4)
    path.write_bytes(B.pcap_file([B.Record(frame, ts_sec=1_700_000_000 + k // 1000, ts_frac=k % 1000)
                                  for k in range(packets)]))


EXPORT_CHILD = """
import sys
from tracer.capture.index import load_index
from tracer.ui.export import export_pcapng
index = load_index([sys.argv[1]])
print("ready", flush=True)
n = export_pcapng(index, range(len(index)), sys.argv[2])
print("done", n, flush=True)
"""


def _export_child(source: Path, target: Path) -> subprocess.Popen:
    proc = subprocess.Popen([PY, "-c", EXPORT_CHILD, str(source), str(target)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def test_export_killed_leaves_old_or_complete_file(tmp_path: Path) -> None:
    """SIGKILL at random moments of a pcapng export: the target is the old file byte for byte or a complete
    export with every packet, never a torn file."""
    pytest.importorskip("tracer.ui.export", reason="the TUI export is not written yet")
    packets = 60_000
    source = tmp_path / "big.pcap"
    _big_capture(source, packets)
    target = tmp_path / "export.pcapng"
    # How long does an export take here? Kill moments are spread over that.
    target.write_bytes(OLD)
    proc = _export_child(source, target)
    started = time.monotonic()
    out, err = proc.communicate(timeout=300)
    duration = time.monotonic() - started
    assert proc.returncode == 0 and out.split() == ["done", str(packets)], err
    assert len(walk(target.read_bytes()).packet_ends) == packets
    rng = random.Random(7)
    torn_writes = outcomes = 0
    for delay in sorted(rng.uniform(0.05, 1.2) * duration for _ in range(KILLS)):
        target.write_bytes(OLD)
        proc = _export_child(source, target)
        time.sleep(delay)
        mid_export = any(p.name.startswith(".tracer-export-") for p in tmp_path.iterdir())
        proc.kill()
        proc.communicate(timeout=60)
        data = target.read_bytes()
        if data == OLD:
            outcomes += 1
            torn_writes += mid_export
        else:
            w = walk(data)
            assert w.anomaly is None and len(w.packet_ends) == packets, \
                f"killed after {delay:.2f} s: target is neither the old file nor complete ({w.anomaly})"
            outcomes += 1
        for leftover in tmp_path.glob(".tracer-export-*"):
            leftover.unlink()  # a killed export leaves its temporary file; the target is what must be whole
    assert outcomes == KILLS
    assert torn_writes >= 1, "no kill landed while the export was writing; the test proved nothing"
    record_figure("export_kills", KILLS)


# --- live capture ------------------------------------------------------------------------------------------

needs_live = pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root (AF_PACKET on lo)")


class UdpFlood:
    """Send UDP datagrams to 127.0.0.1 from a thread until stopped (loopback only)."""

    def __init__(self, size: int = 200, pace: float = 0.0) -> None:
        self.size, self.pace, self.sent = size, pace, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        payload = b"f" * self.size
        try:
            while not self._stop.is_set():
                for _ in range(64):
                    sock.sendto(payload, ("127.0.0.1", 9))  # discard port; nobody listens, ICMP is fine
                    self.sent += 1
                if self.pace:
                    time.sleep(self.pace)
        finally:
            sock.close()

    def __enter__(self) -> UdpFlood:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _live(*args: str) -> list[str]:
    return [PY, "-m", "tracer", "live", "-i", "lo", *args]


def _wait_for(path: str, proc: subprocess.Popen, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f"tracer live exited {proc.returncode}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)


@needs_live
def test_live_write_killed_keeps_old_file_and_spool(tmp_path: Path, capsys) -> None:
    """SIGKILL during `tracer live --write` under traffic: the target keeps its old bytes, and `tracer show`
    on the spool gives exactly its complete packet blocks (the torn tail block, if any, dropped)."""
    from .runner import run_cli

    rng = random.Random(11)
    tried = 0
    for attempt in range(2):
        out = tmp_path / f"live{attempt}.pcapng"
        out.write_bytes(OLD)
        part = str(out) + ".part"
        proc = subprocess.Popen(_live("--quiet", "--write", str(out), "--filter", "udp port 9"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        try:
            _wait_for(part, proc)
            with UdpFlood(pace=0.001):
                time.sleep(0.3 + rng.uniform(0, 0.7))
                proc.kill()
                proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert out.read_bytes() == OLD, "the --write target changed although the capture never finished"
        spool = Path(part).read_bytes()
        w = walk(spool)
        assert w.kind == "pcapng" and len(w.packet_ends) > 0, f"spool unreadable or empty ({w.anomaly})"
        assert w.anomaly in (None, "block cut", "block header cut"), f"spool damaged mid-file: {w.anomaly}"
        result = run_cli(["show", "--format", "jsonl", part], capsys)
        assert result.problem() is None, result.problem()
        rows = [line for line in result.out.splitlines() if line.strip()]
        assert len(rows) == len(w.packet_ends), f"{len(rows)} rows, spool holds {len(w.packet_ends)} complete packets"
        tried += 1
    record_figure("live_kills", tried)


def _spool_bytes(directory: Path, pattern: str) -> int:
    """Bytes in the spool segments now (a segment can be rotated away between listing and stat)."""
    total = 0
    for p in directory.glob(pattern):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@needs_live
def test_live_flood_memory_and_disk_stay_bounded(tmp_path: Path) -> None:
    """`tracer live --ring-mb 2` under an unpaced loopback flood: resident memory stays bounded, the spool stays
    near 2 MB on disk, and the kept capture is readable."""
    out = tmp_path / "flood.pcapng"
    proc = subprocess.Popen(_live("--quiet", "--ring-mb", "2", "--write", str(out), "--filter", "udp port 9"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    peak_rss = peak_disk = 0
    try:
        _wait_for(str(out) + ".part.0000", proc)
        with UdpFlood() as flood:
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                peak_rss = max(peak_rss, _rss_kb(proc.pid))
                peak_disk = max(peak_disk, _spool_bytes(tmp_path, "flood.pcapng.part*"))
                time.sleep(0.05)
        peak_rss = max(peak_rss, _rss_kb(proc.pid, "VmHWM"))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert flood.sent > 20_000, f"the flood sent only {flood.sent} datagrams"
    record_figure("flood_datagrams", flood.sent)
    record_figure("flood_peak_rss_kb", peak_rss)
    record_figure("flood_peak_spool_bytes", peak_disk)
    assert peak_rss < 400 * 1024, f"peak RSS {peak_rss / 1024:.0f} MiB under a flood"
    assert peak_disk < 2_000_000 * 1.3, f"spool grew to {peak_disk} bytes with --ring-mb 2"
    w = walk(out.read_bytes())
    assert w.anomaly is None and 0 < len(w.packet_ends) <= flood.sent * 2


@needs_live
@pytest.mark.parametrize("extra", [[], ["--ring-mb", "1"]], ids=["single spool", "ring segments"])
def test_live_write_never_follows_planted_symlinks(tmp_path: Path, extra: list[str]) -> None:
    """`tracer live --write DIR/x.pcapng` as root, where DIR belongs to another user who planted symlinks at
    every name tracer writes (x.pcapng.part, .part.0000…, .tmp): the symlinks' targets stay untouched (CWE-59)."""
    import shutil
    import tempfile

    victim = tmp_path / "victim"  # a root-only file the other user wants overwritten
    victim.write_bytes(b"precious")
    shared = Path(tempfile.mkdtemp(prefix="tracer-symlink-", dir="/tmp"))
    try:
        os.chown(shared, 65534, 65534)  # the other user's directory: not sticky, so no protected_symlinks
        shared.chmod(0o755)
        target = shared / "x.pcapng"
        for suffix in (".part", ".part.0000", ".part.0001", ".tmp"):
            link = Path(str(target) + suffix)
            link.symlink_to(victim)
            os.lchown(link, 65534, 65534)
        proc = subprocess.run(_live("--quiet", "--duration", "0.4", "--write", str(target), *extra),
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        assert victim.read_bytes() == b"precious", "tracer followed a planted symlink and overwrote its target"
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        if proc.returncode == 0:
            assert not target.is_symlink() and walk(target.read_bytes()).anomaly is None
        else:
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
            assert len([line for line in lines if not line.startswith("tracer: spooling")]) == 1, lines
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@needs_live
def test_live_write_over_a_directory_is_one_line(tmp_path: Path) -> None:
    """A directory squatting the spool's name: exit 2 and one line, not an internal error."""
    target = tmp_path / "x.pcapng"
    Path(str(target) + ".part").mkdir()
    proc = subprocess.run(_live("--quiet", "--duration", "0.2", "--write", str(target)), capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "internal error" not in proc.stderr, proc.stderr
