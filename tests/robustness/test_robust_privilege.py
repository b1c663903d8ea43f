"""Least privilege: every command but `live` and `lab` works as an unprivileged user; `live` says why it cannot.

A root child process runs each command once (so every module it needs is imported while the interpreter under
/root is still readable), then drops to nobody (setgroups/setgid/setuid: the capability sets are cleared by
the kernel on the uid change), proves the drop (/root is no longer listable), and runs each command again
from a directory it cannot write, with HOME unusable. The unprivileged run must succeed with the same output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .runner import commands

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "captures" / "demo"
NOBODY = 65534

CHILD = r"""
import contextlib, io, json, os, sys
from tracer.cli import main

def run(argv):
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:
            code = f"{type(exc).__name__}: {exc}"
    out.flush(); err.flush()
    return [code, out.buffer.getvalue().decode(errors="replace"), err.buffer.getvalue().decode(errors="replace")]

cmds = json.loads(sys.argv[1])
warm = [run(argv) for argv in cmds]
os.setgroups([]); os.setgid(%(id)d); os.setuid(%(id)d)
os.chdir("/")
try:
    os.listdir("/root"); denied = False
except PermissionError:
    denied = True
cold = [run(argv) for argv in cmds]
live = run(["live", "-i", "lo", "--quiet", "--duration", "0.2"])
print(json.dumps({"uid": os.geteuid(), "denied": denied, "warm": warm, "cold": cold, "live": live}))
""" % {"id": NOBODY}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
def test_commands_run_unprivileged(public_captures: Path) -> None:
    """show, stats, path, flows, reach, policy and ifaces work as nobody with identical output; live refuses
    with one line."""
    if not (DEMO / "merged.pcapng").exists():
        pytest.skip("demo capture not present")
    work = Path(tempfile.mkdtemp(prefix="tracer-unpriv-", dir="/tmp"))
    try:
        work.chmod(0o755)
        cap, cluster, gz = work / "demo.pcapng", work / "cluster.yaml", work / "tls.pcap.gz"
        shutil.copy(DEMO / "merged.pcapng", cap)
        shutil.copy(DEMO / "cluster.yaml", cluster)
        shutil.copy(public_captures / "pcap-gzip-compressed-tls-scapy.pcap.gz", gz)
        for f in (cap, cluster, gz):
            f.chmod(0o644)
        wanted = [
            ("show", ["show", "--format", "jsonl", str(cap)]),
            ("show", ["show", "--format", "jsonl", str(gz)]),  # gzip is spooled to a temporary file
            ("show", ["show", "--format", "jsonl", "--cluster", str(cluster), str(cap)]),
            ("stats", ["stats", "--json", str(cap)]),
            ("path", ["path", "--packet", "1", "--json", "--cluster", str(cluster), str(cap)]),
            ("flows", ["flows", "--json", "--cluster", str(cluster), str(cap)]),
            ("reach", ["reach", "--json", "--cluster", str(cluster), str(cap)]),
            ("policy", ["policy", "matrix", "--json", "--cluster", str(cluster)]),
            ("ifaces", ["ifaces", "--json"]),
        ]
        cmds = [argv for name, argv in wanted if name in commands()]
        assert len(cmds) >= 4, "too few commands exist yet to test"
        env = {**os.environ, "HOME": "/nonexistent", "TMPDIR": "/tmp"}
        env.pop("TRACER_DEBUG", None)
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cmds)], capture_output=True, text=True,
                              timeout=300, env=env, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        res = json.loads(proc.stdout.splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert res["uid"] == NOBODY and res["denied"], "the privilege drop did not take effect"
    problems = []
    for argv, (wcode, wout, werr), (code, out, err) in zip(cmds, res["warm"], res["cold"]):
        name = " ".join(argv[:2])
        if wcode != 0:
            problems.append(f"{name}: fails even as root ({wcode}): {werr.strip()[-300:]}")
        elif code != 0:
            problems.append(f"{name}: exit {code} as nobody: {err.strip()[-300:]}")
        elif argv[0] not in ("stats", "ifaces") and out != wout:  # stats times itself; ifaces may change
            problems.append(f"{name}: output as nobody differs from root's")
    assert not problems, "\n".join(problems)
    if "live" in commands():
        code, _, err = res["live"]
        assert code == 2, f"`tracer live` as nobody: exit {code}, {err!r}"
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
