"""``tracer lab capture OUTDIR``: capture every node interface of the lab while its traffic mix runs.

Writes into OUTDIR:
  ``merged.pcapng``            every capture point in one file, timestamp order, IDB ``if_name`` = ``NODE/IFACE``
  ``points/NODE__IFACE.pcapng`` the same packets, one file per capture point
  ``cluster.yaml``             the lab as a Kubernetes List (tracer.lab.cluster), with the NetworkPolicy
  ``traffic.json``             the flows generated and whether each was answered (what the capture must show)
The NetworkPolicy deny (tracer.lab.policy) is applied first unless ``deny=False``, so one flow dies on the
destination veth. The capture is made with the live capture engine, all nodes at once from one process (each
socket opened inside its node's namespace), so every point shares one clock.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field

from tracer.capture.live import CapturePoint, LiveCapture, split_name
from tracer.lab import policy, state, traffic
from tracer.lab.cluster import write_cluster_yaml
from tracer.lab.plan import LabPlan
from tracer.node.discover import discover
from tracer.safe_write import write_replacing

CAPTURE_ROLES = ("host-eth0", "bridge", "vxlan-device", "ipip-device", "veth", "cali")
SNAPLEN = 512     # headers plus the lab's small payloads: keeps the bundled demos small


@dataclass
class LabCaptureResult:
    outdir: str
    merged: str
    points: list[str]
    cluster: str
    flows: list[dict]
    captured: int
    dropped: int
    per_point: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        ok = sum(1 for f in self.flows if f["ok"])
        return (f"captured {self.captured} packets at {len(self.points)} points (kernel drops: {self.dropped}); "
                f"{ok}/{len(self.flows)} flows answered\n  {self.merged}\n  {os.path.dirname(self.points[0])}/ "
                f"({len(self.points)} files)\n  {self.cluster}")


def capture_points(plan: LabPlan, *, pods: bool = False, skew_ms: dict[str, float] | None = None
                   ) -> list[CapturePoint]:
    """Every interface on a packet's path in every node (discovered, not assumed from the plan); with ``pods``
    also each pod's own eth0 as point ``pod:NS/NAME``. ``skew_ms`` shifts a node's timestamps (a node whose
    clock is off), for exercising clock-offset estimation on real traffic."""
    skew = {k: int(v * 1_000_000) for k, v in (skew_ms or {}).items()}
    points = []
    for n in plan.nodes:
        info = discover(n.netns, hostname=n.name)
        for link in info.links:
            if link.role in CAPTURE_ROLES and link.state != "down":
                points.append(CapturePoint(link.name, n.name, n.netns, ts_offset_ns=skew.get(n.name, 0)))
    if pods:
        for p in plan.pods:
            points.append(CapturePoint("eth0", p.node, p.netns, label=f"pod:{p.namespace}/{p.name}",
                                       ts_offset_ns=skew.get(p.node, 0)))
    return points


def write_traffic_json(plan: LabPlan, path: str, flows: list[dict], skew_ms: dict[str, float] | None = None
                       ) -> None:
    """``traffic.json``: the flows generated and whether each was answered (temporary file + rename, so a link
    planted at the name in a directory another user controls is replaced, never written through)."""
    write_replacing(path, json.dumps({"mode": plan.mode, "policy": plan.policy, "clock_skew_ms": skew_ms or {},
                                      "flows": flows}, indent=1))


def run(plan: LabPlan, outdir: str, *, deny: bool = True, settle: float = 0.3, pods: bool = False,
        skew_ms: dict[str, float] | None = None) -> LabCaptureResult:
    unknown = set(skew_ms or {}) - {n.name for n in plan.nodes}
    if unknown:
        from tracer.lab.build import LabError

        raise LabError(f"--skew names no lab node: {', '.join(sorted(unknown))} (nodes: "
                       f"{', '.join(n.name for n in plan.nodes)})")
    os.makedirs(outdir, exist_ok=True)
    if deny:
        policy.apply(plan, policy.default_deny(plan))
        state.save(plan)
    merged = os.path.join(outdir, "merged.pcapng")
    points_dir = os.path.join(outdir, "points")
    points = capture_points(plan, pods=pods, skew_ms=skew_ms)
    cap = LiveCapture(points, spool=merged + ".part", write_path=merged, split_dir=points_dir, snaplen=SNAPLEN,
                      buffer_bytes=4 << 20)
    cap.open()
    stop = threading.Event()
    worker = threading.Thread(target=cap.run, args=(stop,), daemon=True)
    worker.start()
    try:
        time.sleep(settle)
        flows = [asdict(f) for f in traffic.run(plan)]
        time.sleep(settle)
    finally:
        stop.set()
        worker.join()
        cap.close()
    if cap.error:
        raise cap.error
    cluster = os.path.join(outdir, "cluster.yaml")
    write_cluster_yaml(plan, cluster)
    write_traffic_json(plan, os.path.join(outdir, "traffic.json"), flows, skew_ms)
    captured, _, dropped = cap.totals()
    return LabCaptureResult(outdir=outdir, merged=merged,
                            points=[os.path.join(points_dir, split_name(p)) for p in points],
                            cluster=cluster, flows=flows, captured=captured, dropped=dropped,
                            per_point={s.point: s.captured for s in cap.snapshot()})
