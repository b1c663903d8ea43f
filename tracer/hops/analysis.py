"""``analyze(index)``: every packet placed on its CNI hop path, across all capture points, with verdicts.

The pipeline, all on the index's numpy columns (Python runs per capture point, per flow or per distinct path
shape, never per packet):

1. capture points and their roles (by name, else inferred from traffic);
2. the CNI mode (``detect``) and which node every address lives on (``topology``);
3. clock offsets between nodes (``clocks``) from a coarse first grouping, then ``packet_id`` (``identity``) on
   corrected timestamps;
4. per packet the representative (post-DNAT, pod-level) tuple, its Service, its flow and direction;
5. per (route, sequence of points seen): the expected path (``models``) and each observation's hop (``align``);
6. per packet where it was last seen and whether a later captured hop missed it; per flow the NetworkPolicy
   verdict (stateful: replies of an allowed connection are allowed).

``HopAnalysis.columns`` holds the per-row results (derived on demand from per-packet and per-flow tables:
``tracer.hops.columns``); ``path(row)`` and ``flows()`` build the reports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from tracer.capture.memory import release_freed_memory
from tracer.errors import TracerError
from tracer.hops import detect as D
from tracer.hops import explain as X
from tracer.hops import models as M
from tracer.hops import roles as R
from tracer.hops import topology as T
from tracer.hops.align import Alignment, align
from tracer.hops.clocks import ClockEstimate, crossing_delays, estimate_offsets
from tracer.hops.cluster_facts import ClusterFacts, load_facts
from tracer.hops.columns import LabelColumn, RowColumns, ValueColumn
from tracer.hops.identity import assign_packet_ids, group_by_key, hash_columns, packet_keys, renumber_by_first_row
from tracer.hops.pmtu import for_sender, pmtu_errors
from tracer.hops.results import Flow, HopView, PacketPath, PointInfo
from tracer.hops.segments import Segments, first_in_group
from tracer.hops.udp_backend import inner_columns
from tracer.hops.verdicts import PROTO_NAMES, flow_verdicts

COARSE_WINDOW_NS = 10_000_000_000  # first grouping, before clock correction: tolerates 10 s of skew
TAIL_MARGIN_NS = 1_000_000          # a packet this close to the end of its node's capture may just be cut off
GSO_SUSPECT_LEN = 9216              # above a jumbo frame: a segmentation-offload aggregate, not a wire packet
LATER_COLUMNS = ("i_ver", "i_src", "i_dst", "i_proto", "i_sport", "i_dport", "i_len", "tcp_flags", "icmp_id",
                 "icmp_type")
COLUMNS = ("ts_ns", "source", "encap", "vni", "o_ver", "o_src", "o_dst", "o_proto", "o_ttl", "o_sport", "o_dport",
           "i_ver", "i_src", "i_dst", "i_proto", "i_ttl", "i_ipid", "i_sport", "i_dport", "i_len", "tcp_flags",
           "tcp_seq", "tcp_ack", "icmp_type", "icmp_code", "icmp_id", "icmp_seq", "flags", "origlen")


class HopAnalysis:
    """The result of ``analyze``: per-row columns plus per-packet and per-flow reports built on demand.

    Memory: per row only the packet id (int32) and hop number (int8) are stored; per packet its flow with
    direction, alignment ("combo"), Service and drop flag (~8 bytes); everything else is per flow, per route or
    per capture point. Index fields of a row are read from the index when a report needs them (``_pick``).
    """

    def __init__(self) -> None:
        self.columns: Mapping[str, Any] = RowColumns({}, {})
        self.points: list[PointInfo] = []
        self.mode: str = M.FLANNEL_VXLAN
        self.mode_reason: str = ""
        self.forced = False
        self.clocks = ClockEstimate()
        self.facts = ClusterFacts()
        self.topology = T.Topology()
        self.index: Any = None
        self._n = 0
        # Per row.
        self._packet_id = np.empty(0, dtype=np.int32)
        self._hop = np.empty(0, dtype=np.int8)            # hop number (1-based) on the packet's route, -1 none
        # Per packet.
        self._pk_flow = np.empty(0, dtype=np.int32)      # flow id, ~flow (negative) for the reverse direction
        self._pk_combo = np.empty(0, dtype=np.int32)     # which (route, sequence of points) alignment
        self._pk_service = np.empty(0, dtype=np.int8)    # index into _service_names, -1 none; empty: none at all
        self._dropped_ids = np.empty(0, dtype=np.int32)  # sorted ids of packets that stopped at their last point
                                                         # while the next one captured (rare: kept as a list)
        # Per combo / route / point / index source.
        self._combo_route = np.empty(0, dtype=np.int64)
        self._combo_last_point = np.empty(0, dtype=np.int64)
        self._combo_align: list[Alignment] = []
        self._routes: list[tuple[str, list[M.Hop]]] = []
        self._route_len = np.zeros(1, dtype=np.int64)
        self._hop_node = np.full((1, 1), -1, dtype=np.int64)   # node code per (route, hop)
        self._src_point = np.empty(0, dtype=np.int64)          # index source id → point id
        self._point_node = np.full(1, -1, dtype=np.int64)      # topology node code per point (-1: none)
        self._point_offset = np.zeros(1, dtype=np.int64)       # clock offset (ns) per point, trailing 0
        # Per flow (see _flow_fates and _analyze step 6).
        self._fl: dict[str, np.ndarray] = {}
        self._flow_verdict: list[tuple[str | None, str, Any]] = []
        self._service_names: list[str] = []
        self._flows: list[Flow] | None = None
        self._pmtu: list = []
        # Rows whose inner fields the analysis read itself (flannel's UDP backend): name → (rows, values).
        self._overrides: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._csr: tuple[np.ndarray, np.ndarray] | None = None  # rows by packet, only while flows() builds

    def __len__(self) -> int:
        return self._n

    # ------------------------------------------------------------------ reading rows back
    def _take(self, name: str, rows: np.ndarray, raw: bool = False) -> np.ndarray:
        """Index column ``name`` at ``rows`` (with the analysis's own inner fields for flannel-UDP rows, unless
        ``raw``: the wire as the index decoded it)."""
        rows = np.asarray(rows, dtype=np.int64)
        take = getattr(self.index, "take", None)
        values = take(name, rows) if take is not None else np.asarray(self.index[name])[rows]
        over = None if raw else self._overrides.get(name)
        if over is not None and len(rows):
            o_rows, o_vals = over
            pos = np.minimum(np.searchsorted(o_rows, rows), len(o_rows) - 1)
            hit = o_rows[pos] == rows
            if hit.any():
                values = np.array(values, dtype=np.result_type(values.dtype, o_vals.dtype))
                values[hit] = o_vals[pos[hit]]
        return values

    def _pick(self, rows: list[int]) -> _Pick:
        return _Pick(self, rows)

    def _point_of(self, rows: np.ndarray) -> np.ndarray:
        return self._src_point[self._take("source", rows).astype(np.int64)]

    def _ts_of(self, rows: np.ndarray) -> np.ndarray:
        """Timestamps on the corrected (common) clock."""
        rows = np.asarray(rows, dtype=np.int64)
        return self._take("ts_ns", rows).astype(np.int64) - self._point_offset[self._point_of(rows)]

    def _flow(self, pid: Any) -> Any:
        """Flow id of packet(s) ``pid``."""
        f = self._pk_flow[pid]
        return _unsigned(f) if isinstance(f, np.ndarray) else (int(~f) if f < 0 else int(f))

    def _forward(self, pid: int) -> bool:
        return bool(self._pk_flow[pid] >= 0)

    def _is_dropped(self, pids: np.ndarray) -> np.ndarray:
        """Per packet id: whether it is one of the dropped packets (a binary search in the sorted list)."""
        ids = self._dropped_ids
        if not len(ids):
            return np.zeros(len(pids), dtype=bool)
        pos = np.minimum(np.searchsorted(ids, pids), len(ids) - 1)
        return ids[pos] == pids

    def _route(self, pid: int) -> int:
        return int(self._combo_route[int(self._pk_combo[pid])])

    # ------------------------------------------------------------------ per packet
    def rows_of(self, packet_id: int) -> np.ndarray:
        """Index rows of one packet, in corrected-time order."""
        if self._csr is not None:
            order, starts = self._csr
            return order[starts[packet_id]:starts[packet_id + 1]]
        rows = np.flatnonzero(self._packet_id == packet_id)
        return rows[np.argsort(self._ts_of(rows), kind="stable")]

    def _rep(self, pid: int, rows: np.ndarray) -> int:
        """The packet's representative observation: the most pod-like endpoints (post-DNAT), earliest first —
        the same choice ``_analyze`` step 4 makes for every packet at once."""
        rows = np.sort(rows)
        pick = self._pick(rows.tolist())
        topo = self.topology
        podlike = np.r_[np.isin(topo.addr_kind, (T.KIND_POD, T.KIND_NODE)), False].astype(np.int64)
        ver = pick.array("i_ver")
        score = (podlike[topo.lookup(T.addr_key(ver, pick.array("i_src")))]
                 + podlike[topo.lookup(T.addr_key(ver, pick.array("i_dst")))])
        return int(rows[np.lexsort((self._ts_of(rows), -score))[0]])

    def path(self, row: int) -> PacketPath:
        """The hop ladder of the packet observed at index row ``row`` (see ``PacketPath``)."""
        pid = int(self._packet_id[row])
        offsets = self.clocks.seconds()
        if pid < 0:
            return PacketPath(None, [], None, None, None, offsets, None,
                              "not an IP packet: no hop path (ARP, LLDP and the like stay on one link)", None)
        mode, hops = self._routes[self._route(pid)]
        al = self._combo_align[int(self._pk_combo[pid])]
        rows = self.rows_of(pid)
        rep = self._rep(pid, rows)
        c = self._pick(rows.tolist() + [rep])
        row_point = dict(zip(rows.tolist(), self._point_of(rows).tolist()))
        corrected = dict(zip(rows.tolist(), self._ts_of(rows).tolist()))
        # The encapsulation on the wire, from the index's own decode (not the UDP backend's inner fields).
        wire = dict(zip(rows.tolist(), D.wire_class({name: self._take(name, rows, raw=True) for name in
                                                     ("encap", "vni", "o_dport", "o_proto", "o_sport")}).tolist()))
        views: list[HopView] = []
        obs_for_hop: dict[int, int] = {}
        unplaced = []
        for k, r in enumerate(rows.tolist()):
            h = al.hop_of_obs[k] if k < len(al.hop_of_obs) else -1
            if h >= 0 and h not in obs_for_hop:
                obs_for_hop[h] = r
            else:
                unplaced.append({"point": self.points[row_point[r]].name, "no": r + 1, "ts": corrected[r] / 1e9})
        prev_ts = None
        prev_row = None
        for h, hop in enumerate(hops):
            r = obs_for_hop.get(h)
            if r is not None:
                p = self.points[row_point[r]]
                ts = corrected[r]
                delta = None if prev_ts is None else (ts - prev_ts) / 1000.0
                prev_ts = ts
                encap = D.WIRE_ENCAP.get(wire[r])
                nat = self._nat_note(c, r, prev_row)
                prev_row = r
                views.append(HopView(h + 1, p.name, hop.role, p.node or hop.node, True, r + 1, r, int(c["ts_ns"][r]),
                                     delta, encap, int(c["i_ttl"][r]), True, nat, p.inferred))
            else:
                ep = al.expect_point[h]
                name = self.points[ep].name if ep >= 0 else self._hop_label(hop, pid, mode)
                views.append(HopView(h + 1, name, hop.role, hop.node, False, None, None, None, None, hop.encap,
                                     None, al.captured[h]))
        dropped = self._pk_dropped_point(pid)
        last = None if al.last_seen < 0 else views[al.last_seen].point
        nxt = None
        if dropped is not None and al.next_expected >= 0:
            nxt = views[al.next_expected].point
        fid = self._flow(pid)
        verdict, vtext, vobj = self._flow_verdict[fid]
        explanation = X.packet_explanation(
            hops=hops, views=views, alignment=al, dropped=dropped is not None, verdict=verdict, verdict_text=vtext,
            verdict_obj=vobj, forward=self._forward(pid), inner_len=int(c["i_len"][rep]), mode=mode,
            cluster=self.facts.present)
        files = {self.points[row_point[r]].file for r in obs_for_hop.values()
                 if self.points[row_point[r]].node is None}
        if len(files) >= 2 and not offsets:
            explanation += (" Its observations come from several capture files with no node names: Δt between "
                            "them includes each machine's clock offset (name the points FILE@NODE/IFACE or "
                            "NODE__IFACE.pcap to have it estimated).")
        return PacketPath(pid, views, dropped, nxt, last, offsets, verdict if self.facts.present else None,
                          explanation, mode, fid, self._service_name(pid), self._pod_name(pid, "src"),
                          self._pod_name(pid, "dst"), unplaced, vtext or None,
                          self.mode_reason if mode == self.mode else "this flow's own encapsulation on the wire")

    def _nat_note(self, c: _Pick, row: int, prev: int | None) -> str | None:
        """What netfilter rewrote between the previous seen hop (``prev``) and this one, or None."""
        if prev is None:
            return None
        notes = []
        ver = int(c["i_ver"][row])
        if c["i_dst"][row] != c["i_dst"][prev] or c["i_dport"][row] != c["i_dport"][prev]:
            a = f"{self._addr(ver, int(c['i_dst'][prev]))}:{int(c['i_dport'][prev])}"
            b = f"{self._addr(ver, int(c['i_dst'][row]))}:{int(c['i_dport'][row])}"
            notes.append(f"destination {a} → {b}")
        if c["i_src"][row] != c["i_src"][prev] or c["i_sport"][row] != c["i_sport"][prev]:
            a = f"{self._addr(ver, int(c['i_src'][prev]))}:{int(c['i_sport'][prev])}"
            b = f"{self._addr(ver, int(c['i_src'][row]))}:{int(c['i_sport'][row])}"
            notes.append(f"source {a} → {b}")
        return "; ".join(notes) or None

    def _addr(self, ver: int, value: int) -> str:
        if self.index is not None and hasattr(self.index, "addr"):
            return self.index.addr(ver, value) or "?"
        return str(value)

    def _hop_label(self, hop: M.Hop, pid: int, mode: str) -> str:
        """A name for a hop no capture point stands for: ``node/iface`` as the CNI names it, ``pod:NS/NAME``."""
        pos = self._pos(pid, hop.side)
        ip = self.topology.addr_text[pos] if pos >= 0 else "?"
        if hop.role == R.POD_ETH0:
            return f"pod:{self._pod_name(pid, hop.side) or ip}"
        if hop.iface:
            what = hop.iface
        elif hop.role in (R.VETH, R.CALI):
            what = f"{'cali' if hop.role == R.CALI else 'veth'}({ip})"
        else:
            what = M.DEVICE_NAMES.get((hop.role, M.is_calico(mode)), hop.role)
        return f"{hop.node or '?'}/{what}"

    def _pos(self, pid: int, side: str) -> int:
        """Topology position of the packet's source (``side="src"``) or destination address."""
        f = self._flow(pid)
        own_src = self._forward(pid) == (side == "src")
        return int(self._fl["fsrc_pos" if own_src else "fdst_pos"][f])

    def _pod_name(self, pid: int, side: str) -> str | None:
        pos = self._pos(pid, side)
        return self.topology.addr_pod[pos] if pos >= 0 else None

    def _service_name(self, pid: int) -> str | None:
        code = int(self._pk_service[pid]) if len(self._pk_service) else -1
        return self._service_names[code] if code >= 0 else None

    def _pk_dropped_point(self, pid: int) -> str | None:
        if not self._is_dropped(np.array([pid]))[0]:
            return None
        pt = int(self._combo_last_point[int(self._pk_combo[pid])])
        return self.points[pt].name if pt >= 0 else None

    # ------------------------------------------------------------------ per flow
    def flows(self) -> list[Flow]:
        """One ``Flow`` per connection (both directions together), in order of first appearance (computed once)."""
        if self._flows is None:
            self._flows = self._build_flows()
            release_freed_memory()     # the rows-by-packet sort and its temporaries
        return list(self._flows)

    def _build_flows(self) -> list[Flow]:
        fl = self._fl
        n_flows = len(fl.get("first_packet", ()))
        if n_flows == 0:
            return []
        # Rows by packet for the per-flow look-ups below (one sort, released when done).
        pid = self._packet_id
        ok = np.flatnonzero(pid >= 0)
        ts = self._ts_of(ok)
        order = ok[np.lexsort((ts, pid[ok]))]
        del ts
        starts = np.r_[0, np.cumsum(np.bincount(pid[order], minlength=len(self._pk_flow)))]
        self._csr = (order, starts)
        try:
            return self._flow_reports(n_flows, order)
        finally:
            self._csr = None

    def _flow_reports(self, n_flows: int, order: np.ndarray) -> list[Flow]:
        fl = self._fl
        out = []
        # Points per flow, as sorted unique (flow, point) pairs.
        flow_of_row = self._flow(self._packet_id[order].astype(np.int64))
        pairs = np.unique(flow_of_row * (len(self.points) + 1) + self._point_of(order))
        del flow_of_row
        points_of: dict[int, list[str]] = {}
        for v in pairs.tolist():
            f, p = divmod(v, len(self.points) + 1)
            points_of.setdefault(f, []).append(self.points[p].name)
        pk_flow = _unsigned(self._pk_flow.astype(np.int64))
        packets = np.bincount(pk_flow, minlength=n_flows)
        n_dropped = np.bincount(pk_flow[self._dropped_ids], minlength=n_flows)
        init_rep = fl["init_rep"]
        c = self._pick(init_rep.tolist())
        for f in range(n_flows):
            first_pk = int(fl["first_packet"][f])
            init_pk = int(fl["init_packet"][f])
            rep = int(init_rep[f])
            ver = int(c["i_ver"][rep])
            proto = int(c["i_proto"][rep])
            fwd = self._forward(init_pk)
            s_key, d_key = ("i_src", "i_dst") if fwd else ("i_dst", "i_src")
            sp_key, dp_key = ("i_sport", "i_dport") if fwd else ("i_dport", "i_sport")
            src = self._addr(ver, int(c[s_key][rep]))
            dst = self._addr(ver, int(c[d_key][rep]))
            side_s, side_d = ("src", "dst") if fwd else ("dst", "src")
            verdict, vtext, vobj = self._flow_verdict[f]
            drop_pt = int(fl["dropped_point"][f])
            dropped_after = self.points[drop_pt].name if drop_pt >= 0 else None
            delivered = None
            if fl["delivered"][f] == 1:
                delivered = True
            elif dropped_after is not None:
                delivered = False
            mode, init_hops = self._routes[self._route(init_pk)]
            ends = (init_hops[0].node, init_hops[-1].node) if init_hops and fwd else \
                ((init_hops[-1].node, init_hops[0].node) if init_hops else (None, None))
            expl = X.flow_explanation(dropped_after=dropped_after, expected_next=self._flow_next(f),
                                      delivered=delivered, verdict=verdict, verdict_text=vtext, verdict_obj=vobj,
                                      cluster=self.facts.present, packets=int(packets[f]),
                                      dropped_packets=int(n_dropped[f]), replies=bool(fl["replies"][f]),
                                      mode=mode, next_hop=self._flow_next_hop(f),
                                      inner_len=int(fl["max_len"][f]), nodes=ends,
                                      stop_side=self._flow_stop_side(f))
            if dropped_after:
                sender = int(fl["fsrc_addr"][f])
                told = for_sender(self._pmtu, sender)
                if told:
                    mtus = sorted({e.mtu for e in told if e.mtu})
                    expl += (f" The sender got {len(told)} ICMP 'fragmentation needed' from {told[0].src} (packet "
                             f"{told[0].row + 1}" + (f", next-hop MTU {'/'.join(map(str, mtus))}" if mtus else "")
                             + "): the path MTU is smaller than its packets.")
            addressed_to, client = self._pre_nat(init_pk, rep)
            svc = self._service_name(first_pk) or self._service_name(init_pk)
            if svc or addressed_to or client:
                via = f"via Service {svc}" if svc else "rewritten by kube-proxy"
                if addressed_to:
                    via += f" (sent to {addressed_to})"
                if client:
                    via += f", client {client} masqueraded"
                expl = f"{via}. {expl}"
            out.append(Flow(f, src, dst, int(c[sp_key][rep]), int(c[dp_key][rep]),
                            PROTO_NAMES.get(proto, str(proto)), self._pod_name(init_pk, side_s),
                            self._pod_name(init_pk, side_d), int(packets[f]), points_of.get(f, []),
                            verdict if self.facts.present else None, dropped_after, expl,
                            svc, mode, int(fl["first_row"][f]) + 1, delivered, int(n_dropped[f]),
                            vtext or None, addressed_to, client))
        return out

    def _pre_nat(self, pid: int, rep: int) -> tuple[str | None, str | None]:
        """For a forward packet: (destination before DNAT, source before masquerade) as "ip:port", when seen."""
        fwd = self._forward(pid)
        dst_col, dport_col = ("i_dst", "i_dport") if fwd else ("i_src", "i_sport")
        src_col, sport_col = ("i_src", "i_sport") if fwd else ("i_dst", "i_dport")
        addressed = client = None
        rows = self.rows_of(pid).tolist()
        c = self._pick(rows + [rep])
        for r in rows:
            ver = int(c["i_ver"][r])
            if addressed is None and (c[dst_col][r] != c[dst_col][rep] or c[dport_col][r] != c[dport_col][rep]):
                addressed = f"{self._addr(ver, int(c[dst_col][r]))}:{int(c[dport_col][r])}"
            if client is None and c[src_col][r] != c[src_col][rep]:
                client = f"{self._addr(ver, int(c[src_col][r]))}:{int(c[sport_col][r])}"
        return addressed, client

    def _flow_next(self, f: int) -> str | None:
        pid = int(self._fl["drop_packet"][f])
        if pid < 0:
            return None
        return self.path(int(self.rows_of(pid)[0])).expected_next

    def _flow_stop_side(self, f: int) -> str | None:
        pid = int(self._fl["drop_packet"][f])
        if pid < 0:
            return None
        al = self._combo_align[int(self._pk_combo[pid])]
        hops = self._routes[self._route(pid)][1]
        return hops[al.last_seen].side if al.last_seen >= 0 else None

    def _flow_next_hop(self, f: int) -> M.Hop | None:
        pid = int(self._fl["drop_packet"][f])
        if pid < 0:
            return None
        al = self._combo_align[int(self._pk_combo[pid])]
        hops = self._routes[self._route(pid)][1]
        return hops[al.next_expected] if al.next_expected >= 0 else None

    # ------------------------------------------------------------------ per row
    def _make_columns(self) -> RowColumns:
        """``columns``: packet_id and hop_index stored, the rest derived per row from the tables above."""
        n = self._n
        names = [p.name for p in self.points]
        pid_of = lambda rows: self._packet_id[rows].astype(np.int64)  # noqa: E731

        def per_packet(table: np.ndarray, fill: int = -1):
            def values(rows: np.ndarray) -> np.ndarray:
                pid = pid_of(rows)
                return np.where(pid >= 0, table[np.maximum(pid, 0)] if len(table) else fill, fill)
            return values

        def hop_count(rows: np.ndarray) -> np.ndarray:
            pid = pid_of(rows)
            ok = pid >= 0
            out = np.full(len(rows), -1, dtype=np.int64)
            out[ok] = self._route_len[self._combo_route[self._pk_combo[pid[ok]]]]
            return out

        def flow_id(rows: np.ndarray) -> np.ndarray:
            pid = pid_of(rows)
            ok = pid >= 0
            out = np.full(len(rows), -1, dtype=np.int64)
            out[ok] = self._flow(pid[ok])
            return out

        def dropped(rows: np.ndarray) -> np.ndarray:
            pid = pid_of(rows)
            return (pid >= 0) & self._is_dropped(pid)

        point_codes = lambda rows: self._point_of(rows)  # noqa: E731

        # Node: the point's own node; a point without one takes the node of the hop it was placed on.
        node_labels = [p.node for p in self.points] + list(self.topology.nodes)

        def node_codes(rows: np.ndarray) -> np.ndarray:
            pt = self._point_of(rows)
            codes = pt.copy()
            hop = self._hop[rows].astype(np.int64)
            pid = pid_of(rows)
            anon = (self._point_node[pt] < 0) & (hop > 0) & (pid >= 0)
            if anon.any():
                route = self._combo_route[self._pk_combo[pid[anon]]]
                hn = self._hop_node[route, hop[anon] - 1]
                codes[anon] = np.where(hn >= 0, len(self.points) + hn, -1)
            return codes

        def pod_codes(side: str):
            def codes(rows: np.ndarray) -> np.ndarray:
                pid = pid_of(rows)
                ok = pid >= 0
                out = np.full(len(rows), -1, dtype=np.int64)
                if ok.any():
                    fl = self._pk_flow[pid[ok]].astype(np.int64)
                    fwd = fl >= 0
                    f = np.where(fwd, fl, ~fl)
                    own_src = fwd if side == "src" else ~fwd
                    out[ok] = np.where(own_src, self._fl["fsrc_pos"][f], self._fl["fdst_pos"][f])
                return out
            return codes

        def last_seen(rows: np.ndarray) -> np.ndarray:
            pid = pid_of(rows)
            ok = pid >= 0
            out = np.full(len(rows), -1, dtype=np.int64)
            out[ok] = self._combo_last_point[self._pk_combo[pid[ok]]]
            return out

        verdict_labels = sorted({v[0] for v in self._flow_verdict if v[0] is not None})
        flow_verdict = np.array([verdict_labels.index(v[0]) if v[0] is not None else -1
                                 for v in self._flow_verdict] or [-1], dtype=np.int64)

        def verdict(rows: np.ndarray) -> np.ndarray:
            if not self.facts.present:
                return np.full(len(rows), -1, dtype=np.int64)
            f = flow_id(rows)
            return np.where(f >= 0, flow_verdict[np.maximum(f, 0)], -1)

        return RowColumns(
            {"packet_id": self._packet_id, "hop_index": self._hop},
            {"hop_count": lambda: ValueColumn(n, hop_count, np.int32),
             "flow_id": lambda: ValueColumn(n, flow_id, np.int32),
             "role": lambda: LabelColumn(n, point_codes, [p.role for p in self.points]),
             "node": lambda: LabelColumn(n, node_codes, node_labels),
             "point": lambda: LabelColumn(n, point_codes, names),
             "src_pod": lambda: LabelColumn(n, pod_codes("src"), self.topology.addr_pod),
             "dst_pod": lambda: LabelColumn(n, pod_codes("dst"), self.topology.addr_pod),
             "service": lambda: LabelColumn(n, per_packet(self._pk_service), self._service_names),
             "verdict": lambda: LabelColumn(n, verdict, verdict_labels),
             "last_seen": lambda: LabelColumn(n, last_seen, names),
             "dropped": lambda: ValueColumn(n, dropped, bool)})


class _Pick:
    """Index fields of a few rows, read on first use: ``pick["i_ttl"][row]`` (what ``path`` and the flow
    reports read instead of whole columns)."""

    def __init__(self, analysis: HopAnalysis, rows: list[int]) -> None:
        self._a = analysis
        self._rows = np.asarray(sorted(set(rows)), dtype=np.int64)
        self._order = np.asarray(rows, dtype=np.int64)
        self._cols: dict[str, dict[int, int]] = {}
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str) -> np.ndarray:
        """The field for the rows in the order they were given."""
        if name not in self._arrays:
            values = self._a._take(name, self._rows)
            self._arrays[name] = values[np.searchsorted(self._rows, self._order)] if len(self._rows) else values
        return self._arrays[name]

    def __getitem__(self, name: str) -> dict[int, int]:
        col = self._cols.get(name)
        if col is None:
            col = self._cols[name] = dict(zip(self._order.tolist(), self.array(name).tolist()))
        return col


def _points(index: Any, source_col: np.ndarray) -> tuple[list[tuple[str, str | None, str | None]],
                                                          list[str | None], np.ndarray]:
    """Capture points (name, node, iface), the file each came from, and, per index source, its point id."""
    names: dict[str, int] = {}
    info: list[tuple[str, str | None, str | None]] = []
    files: list[str | None] = []
    src_point = []
    for src in index.sources:
        point = R.parse_point(getattr(src, "point", None), getattr(src, "node", None), getattr(src, "iface", None))
        name = point.name
        if not name or not (point.iface or point.node or point.pod):
            # Nothing names this capture point: call it by its file, and let its traffic say what it is.
            name = os.path.basename(str(getattr(src, "file", "capture")))
        if name not in names:
            names[name] = len(info)
            info.append((name, point.node, point.iface if point.pod is None else f"pod:{point.pod}"))
            files.append(str(getattr(src, "file", "")) or None)
        src_point.append(names[name])
    return info, files, np.asarray(src_point, dtype=np.int64)


def analyze(index: Any, cluster: Any = None, cni: str | None = None, *, window_ns: int = 100_000_000) -> HopAnalysis:
    """Place every packet of ``index`` on its CNI path (see the module docstring). ``cni`` overrides detection."""
    try:
        analysis = _analyze(index, cluster, cni, window_ns)
    finally:
        # The analysis read every column whole once; a compact index keeps such rebuilt columns cached (~40
        # bytes a packet). Nothing here needs them again (reports read single rows), so let them go.
        if hasattr(index, "drop_cache"):
            index.drop_cache()
    release_freed_memory()     # the stages' temporaries are gone now; give their pages back
    return analysis


def _analyze(index: Any, cluster: Any, cni: str | None, window_ns: int) -> HopAnalysis:
    a = HopAnalysis()
    a.index = index
    n = len(index)
    c = {name: np.asarray(index[name])[:n] for name in COLUMNS}
    try:
        cni = M.normalise_mode(cni)
    except ValueError as exc:
        raise TracerError(str(exc)) from None
    a.facts = facts = load_facts(cluster)
    a.forced = cni is not None

    # 1. Points and roles (a pod:NS/NAME point is on the pod's node when the cluster says which).
    pinfo, pfiles, src_point = _points(index, c["source"])
    pod_node = {name: node for name, node in facts.pods.values()}
    pinfo = [(name, node if node is not None or not (iface or "").startswith("pod:")
              else pod_node.get(iface[4:]), iface) for name, node, iface in pinfo]
    row_point = src_point.astype(np.int32)[c["source"]] if n else np.empty(0, dtype=np.int32)
    wire = D.wire_class(c) if n else np.empty(0, dtype=np.uint8)
    # flannel's UDP backend: the index does not look inside UDP 8285; read those frames' inner packets here.
    udp_rows = np.flatnonzero(wire == D.WIRE_FLANNEL_UDP)
    inner = inner_columns(index, c, udp_rows)
    a._overrides = {name: (udp_rows, inner[name][udp_rows]) for name in inner
                    if len(udp_rows) and inner[name] is not c[name]}
    c = inner
    points: list[PointInfo] = []
    for pid, (name, node, iface) in enumerate(pinfo):
        rows = np.flatnonzero(row_point == pid)
        role = R.POD_ETH0 if iface and iface.startswith("pod:") else R.role_of_iface(iface)
        inferred, reason = False, "interface name"
        if role is None:
            linktypes = {getattr(s, "linktype", 1) for s, sp in zip(index.sources, src_point) if sp == pid}
            macs = []
            if linktypes == {1} and hasattr(index, "frame"):
                ip_rows = rows[c["i_ver"][rows] != 0][:32]
                macs = [bytes(index.frame(int(r))[:12]) for r in ip_rows]
            guess = R.infer_role(c["encap"][rows], c["i_ver"][rows], c["o_proto"][rows], c["o_dport"][rows],
                                 min(linktypes) if linktypes else 1, macs, c["i_ttl"][rows])
            role, inferred, reason = guess.role, True, guess.reason
        first = int(c["ts_ns"][rows].min()) if len(rows) else 0
        last = int(c["ts_ns"][rows].max()) if len(rows) else 0
        points.append(PointInfo(pid, name, node, iface, role, inferred, reason, first, last, pfiles[pid]))

    a._point_offset = np.zeros(len(points) + 1, dtype=np.int64)   # until clock offsets are estimated
    # 2. Mode and topology.
    ifaces = [p.iface for p in points if p.iface and not p.inferred]
    a.mode, a.mode_reason = D.detect_mode(cni=cni, annotations=facts.node_annotations, wire=wire, ifaces=ifaces,
                                          roles=[p.role for p in points if p.inferred])
    # A first, coarse grouping (source-side key, 10 s window: no clock correction yet) orders each packet's
    # observations within a node, which tells the topology which end of a link is local, and feeds the clocks.
    ts = c["ts_ns"].astype(np.int64, copy=False)
    valid = c["i_ver"] != 0
    key_src, _ = packet_keys(c) if n else (np.empty(0, np.uint64), None)
    coarse = group_by_key(key_src, ts, COARSE_WINDOW_NS, valid) if n else np.empty(0, dtype=np.int64)
    topo = T.build_topology(c, row_point, points, facts, getattr(index, "addr", lambda v, x: str(x)),
                            group=coarse, ts_ns=ts)
    a.topology = topo
    point_node = np.array([topo.code(p.node) for p in points] or [-1], dtype=np.int64)
    row_node = point_node[row_point] if n else np.empty(0, dtype=np.int64)
    src_key = T.addr_key(c["i_ver"], c["i_src"])
    dst_key = T.addr_key(c["i_ver"], c["i_dst"])
    spos = topo.lookup(src_key).astype(np.int32)
    dpos = topo.lookup(dst_key).astype(np.int32)
    a._pmtu = pmtu_errors(index, c, dst_key)
    addr_node = np.r_[topo.addr_node, -1]          # position -1 → the trailing "unknown"
    addr_kind = np.r_[topo.addr_kind, T.KIND_UNKNOWN].astype(np.int8)
    row_src_node = addr_node[spos]
    row_dst_node = addr_node[dpos]

    # 3. Clocks, then identity.
    named_nodes = {p.node for p in points if p.node is not None}
    if len(named_nodes) >= 2 and n:
        s, d, delay = crossing_delays(coarse, row_node, ts, row_src_node, row_dst_node, row_point)
        weights = {topo.nodes[k]: int(v) for k, v in enumerate(np.bincount(row_node[row_node >= 0],
                                                                              minlength=len(topo.nodes)))}
        a.clocks = estimate_offsets(topo.nodes, s, d, delay, weights)
        offs = np.array([a.clocks.offsets_ns.get(nm, 0) for nm in topo.nodes] + [0], dtype=np.int64)
        if offs.any():
            ts = ts - offs[row_node]
            a._point_offset = np.r_[offs[point_node], 0] if points else np.zeros(1, dtype=np.int64)
    # Per-row temporaries are freed as soon as a stage is done with them: the analysis' peak memory is the sum
    # of what is alive at once (~8 bytes a packet each).
    del key_src, coarse, row_node, row_src_node, row_dst_node
    packet_id = assign_packet_ids(c, ts, window_ns=window_ns) if n else np.empty(0, dtype=np.int64)
    packet_id = packet_id.astype(np.int32)       # row numbers and ids below 2**31 from here on: half the bytes
    n_pk = int(packet_id.max()) + 1 if n and (packet_id >= 0).any() else 0
    ok_rows = np.flatnonzero(packet_id >= 0).astype(np.int32)
    # Outer headers, sequence numbers and the like were for the topology, clocks and identity; the later stages
    # read only these. The index's cached whole-column rebuilds of the others go now, not at the end.
    c = {name: c[name] for name in LATER_COLUMNS}
    if hasattr(index, "drop_cache"):
        index.drop_cache()
    a.points = points
    a._src_point = src_point
    a._n = n
    if n_pk == 0:
        return _without_packets(a, n, packet_id)

    # Rows of each packet in corrected time order (CSR layout).
    order = ok_rows[np.lexsort((ts[ok_rows], packet_id[ok_rows]))]
    counts = np.bincount(packet_id[order], minlength=n_pk)
    starts = np.r_[0, np.cumsum(counts)]
    rank = (np.arange(len(order)) - np.repeat(starts[:-1], counts)).astype(np.int32)   # observation number

    # 4. Representative tuple per packet: the observation whose endpoints are most pod-like (post-DNAT).
    podlike = np.isin(addr_kind, (T.KIND_POD, T.KIND_NODE)).astype(np.int8)
    score = podlike[spos] + podlike[dpos]
    _, rep = first_in_group(packet_id[ok_rows], ts[ok_rows], -score[ok_rows].astype(np.int64))
    rep = ok_rows[rep]
    del score
    pk = {"rep": rep, "first_row": order[starts[:-1]]}
    pk["src_pos"] = spos[rep]
    pk["dst_pos"] = dpos[rep]
    pk["src_addr"], pk["dst_addr"] = src_key[rep], dst_key[rep]
    # Service: any observation addressed to (or answering from) a Service address.
    service_names = sorted({s for s in topo.addr_service if s} | set(facts.services))
    a._service_names = service_names
    svc_code_of_addr = np.array([service_names.index(s) if s else -1 for s in topo.addr_service] + [-1],
                                dtype=np.int64)
    row_svc = np.maximum(svc_code_of_addr[dpos], svc_code_of_addr[spos])
    # NodePort: a node's address on a Service's nodePort (before the DNAT on that node).
    node_ports = {port: svc for (port, _), svc in
                  ((k, sf.name) for sf in facts.services.values() for k in sf.node_ports)}
    if node_ports and n:
        by_port = np.full(65536, -1, dtype=np.int64)
        for port, svc in node_ports.items():
            if svc in service_names:
                by_port[port] = service_names.index(svc)
        to_node = addr_kind[dpos] == T.KIND_NODE
        from_node = addr_kind[spos] == T.KIND_NODE
        row_svc = np.maximum(row_svc, np.where(to_node, by_port[c["i_dport"].astype(np.int64)], -1))
        row_svc = np.maximum(row_svc, np.where(from_node, by_port[c["i_sport"].astype(np.int64)], -1))
    by_packet = Segments(packet_id, n_pk, order)      # rows of each packet (order is sorted by packet)
    pk["service"] = by_packet.reduce(np.maximum, row_svc, -1)
    del row_svc, spos, dpos

    flow, forward, first_pk, init_pk, by_flow = _flows(c, rep, src_key, dst_key)
    n_fl = by_flow.size
    pk["flow"] = flow
    pk["forward"] = forward

    # 5. Routes: mode per flow, expected path per (flow mode, endpoints' nodes/kinds/pinned interfaces).
    flow_wire = by_flow.reduce(np.maximum, by_packet.reduce(np.maximum, wire, 0), 0)
    # NodePort with masquerade rewrites both ends on the node that took the connection: the client's packet
    # enters that node's eth0 before the pod-level packet exists (and the reply leaves it after).
    both_rewritten = (src_key != src_key[rep][packet_id]) & (dst_key != dst_key[rep][packet_id])
    outside = by_packet.reduce(np.maximum, both_rewritten.astype(np.int64), 0) > 0
    del both_rewritten, src_key, dst_key
    route, routes = _routes(a, points, flow_wire[flow], pk["src_pos"], pk["dst_pos"], outside, addr_node,
                            addr_kind)
    pk["route"] = route
    a._routes = routes
    pod_points = set(topo.point_pod)

    # Each packet's observations placed on its route, computed once per (route, sequence of points seen).
    combo, aligns, combo_hop, combo_last_point, combo_next_point, combo_delivered = _align_all(
        routes, route, points, pod_points, row_point, order, starts, rank)
    pk["combo"] = combo
    a._combo_align = aligns
    route_len = np.array([len(h) for _, h in routes] or [0], dtype=np.int64)
    hop = np.full(n, -1, dtype=_small_int(int(route_len.max()) + 1))     # 1-based hop number, -1 unplaced
    hop[order] = combo_hop[combo[packet_id[order]], rank] + 1
    hop[hop == 0] = -1
    del rank, ok_rows

    # 6. Drops: a later captured hop that was capturing at the time and did not see the packet.
    pk_last_ts = by_packet.reduce(np.maximum, ts, 0)
    next_pt = combo_next_point[combo]
    first_ns, last_ns = _capture_windows(points, a.clocks)
    covered = (next_pt >= 0) & (first_ns[next_pt] <= pk_last_ts) & (last_ns[next_pt] >= pk_last_ts + TAIL_MARGIN_NS)
    # A packet bigger than any underlay MTU was captured as a GSO/GRO aggregate (tcpdump on a veth sees the
    # 64 KB super-packet, eth0 its segments): its segments are other packets, so its absence proves nothing.
    rep_len = c["i_len"][rep].astype(np.int64)
    covered &= (rep_len > 0) & (rep_len <= GSO_SUSPECT_LEN)   # 0: a BIG TCP aggregate over 64 KB
    last_pt = combo_last_point[combo]
    pk["dropped_point"] = np.where(covered, last_pt, -1)
    pk["last_point"] = last_pt
    pk["delivered"] = combo_delivered[combo]

    a._fl = fl = _flow_fates(pk, flow, forward, by_flow, first_pk, init_pk, last_pt, next_pt,
                             c["i_len"][rep].astype(np.int64))

    # Verdicts per flow (stateful: every packet of an allowed connection, replies included, is allowed).
    a._flow_verdict = flow_verdicts(a, c, pk, init_pk, n_fl)

    # 7. What stays: per row the packet id and hop number; per packet, flow, route and point tables (the
    # per-row columns are derived from them on demand: ``HopAnalysis._make_columns``).
    hop_node = np.full((len(routes), max(int(route_len.max()), 1)), -1, dtype=np.int64)
    for ri, (_, hops) in enumerate(routes):
        hop_node[ri, :len(hops)] = [topo.code(h.node) for h in hops]
    a._hop_node = hop_node
    a._route_len = route_len
    a._point_node = point_node
    a._packet_id = packet_id.astype(np.int32)
    a._hop = hop
    a._pk_flow = np.where(forward, flow, ~flow).astype(np.int32)
    a._pk_combo = combo.astype(_small_int(len(aligns)))
    if (pk["service"] >= 0).any():              # else no packet went through a Service: nothing to keep
        a._pk_service = pk["service"].astype(_small_int(len(service_names)))
    a._dropped_ids = np.flatnonzero(pk["dropped_point"] >= 0).astype(np.int32)
    combo_route = np.zeros(len(aligns), dtype=np.int64)
    combo_route[combo] = route
    a._combo_route = combo_route
    a._combo_last_point = combo_last_point
    # Per flow, oriented from the initiator: its endpoints' topology positions and source address.
    init_fwd = forward[init_pk]
    fl["init_rep"] = rep[init_pk]
    fl["fsrc_pos"] = np.where(init_fwd, pk["src_pos"][init_pk], pk["dst_pos"][init_pk])
    fl["fdst_pos"] = np.where(init_fwd, pk["dst_pos"][init_pk], pk["src_pos"][init_pk])
    fl["fsrc_addr"] = np.where(init_fwd, pk["src_addr"][init_pk], pk["dst_addr"][init_pk])
    # Packet and row numbers, positions and lengths fit 32 bits (a flow every ~25 packets: 4 bytes a packet less).
    for name, values in fl.items():
        if name != "fsrc_addr" and values.dtype == np.int64 and n < 2**31:
            fl[name] = values.astype(np.int32)
    a.columns = a._make_columns()
    return a


def _unsigned(values: np.ndarray) -> np.ndarray:
    """Flow ids from the per-packet flow column, where a reverse-direction packet holds ``~flow``."""
    values = values.astype(np.int64)
    return np.where(values < 0, ~values, values)


def _small_int(limit: int) -> type:
    """The narrowest signed integer type holding -1..limit."""
    for dtype in (np.int8, np.int16, np.int32):
        if limit <= np.iinfo(dtype).max:
            return dtype
    return np.int64


def _capture_windows(points: list[PointInfo], clocks: ClockEstimate) -> tuple[np.ndarray, np.ndarray]:
    """Per point (plus a trailing 0 for "none"): when it was capturing, on the corrected clock.

    A point is taken to capture from the first until the last packet seen on any point of its node (captures
    are started and stopped together; a quiet veth is still listening).
    """
    node_first: dict[str | None, int] = {}
    node_last: dict[str | None, int] = {}
    for p in points:
        node_first[p.node] = min(node_first.get(p.node, p.first_ns), p.first_ns)
        node_last[p.node] = max(node_last.get(p.node, 0), p.last_ns)
    offs = np.array([clocks.offsets_ns.get(p.node, 0) if p.node else 0 for p in points] + [0], dtype=np.int64)
    first_ns = np.array([node_first[p.node] for p in points] + [0], dtype=np.int64) - offs
    last_ns = np.array([node_last[p.node] for p in points] + [0], dtype=np.int64) - offs
    return first_ns, last_ns


def _flow_fates(pk: dict[str, np.ndarray], flow: np.ndarray, forward: np.ndarray, by_flow: Segments,
                first_pk: np.ndarray, init_pk: np.ndarray, last_pt: np.ndarray, next_pt: np.ndarray,
                rep_len: np.ndarray) -> dict[str, np.ndarray]:
    """Per flow: whether it got through (a reply, or a forward packet delivered), and when it did not, the
    packet and point where it stopped. Updates ``pk["dropped_point"]`` for tail packets sharing that fate."""
    n_fl = by_flow.size
    pk_ids = np.arange(len(flow), dtype=np.int64)
    dropped = pk["dropped_point"] >= 0
    n_drop = np.bincount(flow[dropped], minlength=n_fl)
    replies = by_flow.reduce(np.maximum, (~forward).astype(np.int64), 0)
    fwd_delivered = by_flow.reduce(np.maximum, (forward & pk["delivered"]).astype(np.int64), 0)
    delivered = (replies > 0) | (fwd_delivered > 0)
    # A flow is dropped when some of its packets died and none got through (no reply, none delivered): a lost
    # segment that TCP retransmitted successfully is counted, not reported as the flow's fate.
    last_drop = by_flow.reduce(np.maximum, np.where(dropped, pk_ids, -1), -1)
    drop_packet = np.where((n_drop > 0) & ~delivered, last_drop, -1)
    dropped_point = np.where(drop_packet >= 0, pk["dropped_point"][np.maximum(drop_packet, 0)], -1)
    # A packet of a dropped flow that stopped at the same point right at the end of the capture (a TCP
    # retransmission as the capture was stopped) shares its fate: the flow's own packets are the evidence.
    flow_drop = dropped_point[flow]
    same_fate = (~dropped) & (flow_drop >= 0) & (last_pt == flow_drop) & (next_pt >= 0) & ~pk["delivered"]
    pk["dropped_point"] = np.where(same_fate, last_pt, pk["dropped_point"])
    return {"first_packet": first_pk, "init_packet": init_pk, "first_row": pk["first_row"][first_pk],
            "drop_packet": drop_packet, "dropped_point": dropped_point, "replies": replies,
            "delivered": delivered.astype(np.int8), "max_len": by_flow.reduce(np.maximum, rep_len, 0)}


def _align_all(routes, route: np.ndarray, points: list[PointInfo], pod_points: set[int], row_point: np.ndarray,
               order: np.ndarray, starts: np.ndarray, rank: np.ndarray):
    """Align every packet's observations to its route, once per distinct (route, point sequence) ("combo").

    Returns the combo per packet, the Alignment per combo, and per combo: hop per observation rank, the point
    where it was last seen, the point expected next (if captured), and whether it reached the end of the
    captured path on the destination side (delivered).
    """
    max_rank = int(rank.max()) + 1 if len(rank) else 1
    with np.errstate(over="ignore"):
        # An order-sensitive hash of the point sequence: sum of (point+1) * G^k over observation ranks k.
        mult = (np.uint64(0x9E3779B97F4A7C15) ** np.arange(1, max_rank + 1, dtype=np.uint64)).astype(np.uint64)
        contrib = (row_point[order].astype(np.uint64) + np.uint64(1)) * mult[rank]
        sig = np.add.reduceat(contrib, starts[:-1])
    combo_u, combo_first, combo = np.unique(hash_columns([route, sig]), return_index=True, return_inverse=True)
    k = len(combo_u)
    aligns: list[Alignment] = []
    hop = np.full((k, max_rank), -1, dtype=np.int64)
    last_point = np.full(k, -1, dtype=np.int64)
    next_point = np.full(k, -1, dtype=np.int64)
    delivered = np.zeros(k, dtype=bool)
    for ci, p in enumerate(combo_first.tolist()):
        obs = row_point[order[starts[p]:starts[p + 1]]].tolist()
        hops = routes[int(route[p])][1]
        al = align(hops, obs, points, pod_points)
        aligns.append(al)
        hop[ci, :len(al.hop_of_obs)] = al.hop_of_obs
        if al.last_seen >= 0:
            last_point[ci] = obs[al.hop_of_obs.index(al.last_seen)]
            # Delivered: seen at the destination pod's own interface, or at the path's last hop (a node's own
            # address, the outside world). Reaching only the destination node's eth0 says nothing of the rest.
            last_hop = hops[al.last_seen]
            delivered[ci] = al.last_seen == len(hops) - 1 or (
                last_hop.side == "dst" and last_hop.role in (R.VETH, R.CALI, R.POD_ETH0))
        if al.next_expected >= 0:
            next_point[ci] = al.expect_point[al.next_expected]
    return combo.ravel().astype(np.int64), aligns, hop, last_point, next_point, delivered


def _routes(a: HopAnalysis, points: list[PointInfo], wire_of_packet: np.ndarray, src_pos: np.ndarray,
            dst_pos: np.ndarray, outside: np.ndarray, addr_node: np.ndarray,
            addr_kind: np.ndarray) -> tuple[np.ndarray, list[tuple[str, list[M.Hop]]]]:
    """Route per packet and the distinct routes' (mode, expected hops): one model path per distinct (mode,
    endpoint nodes and kinds, pinned interfaces, outside leg) — a handful, however many packets."""
    topo = a.topology
    pod_side_point = np.full(len(topo.addr_keys) + 1, -1, dtype=np.int64)
    pod_eth0_point = np.full(len(topo.addr_keys) + 1, -1, dtype=np.int64)
    for pid, key in topo.point_pod.items():
        pos = int(topo.lookup(np.array([key], dtype=np.int64))[0])
        if pos >= 0:
            target = pod_eth0_point if points[pid].role == R.POD_ETH0 else pod_side_point
            target[pos] = pid
    # Mode per packet's flow; under CrossSubnet a flow seen in IP-in-IP gets a distinct code (+len(MODES)) so its
    # route keeps the tunnel even between nodes that look like one subnet.
    codes = {w: M.MODES.index(D.flow_mode(a.mode, w, a.forced))
            + (len(M.MODES) if a.mode == M.CALICO_IPIP_CROSSSUBNET and w == D.WIRE_IPIP else 0)
            for w in np.unique(wire_of_packet).tolist()}
    mode_of_wire = np.zeros(max(codes) + 1, dtype=np.int64)
    for w, code in codes.items():
        mode_of_wire[w] = code
    # The extra outside hop goes at the start when the pod-level source is the node, at the end when the
    # destination is (the reply on its way back to the client).
    from_outside = (outside & (addr_kind[src_pos] == T.KIND_NODE)).astype(np.int64)
    to_outside = (outside & (addr_kind[dst_pos] == T.KIND_NODE)).astype(np.int64)
    # The route key's columns are hashed one at a time (a stacked copy would cost 88 bytes a packet more).
    rk_cols = [lambda: mode_of_wire[wire_of_packet], lambda: addr_node[src_pos], lambda: addr_node[dst_pos],
               lambda: addr_kind[src_pos].astype(np.int64), lambda: addr_kind[dst_pos].astype(np.int64),
               lambda: pod_side_point[src_pos], lambda: pod_side_point[dst_pos], lambda: pod_eth0_point[src_pos],
               lambda: pod_eth0_point[dst_pos], lambda: from_outside, lambda: to_outside]
    _, route_first, route = np.unique(hash_columns(rk_cols), return_index=True, return_inverse=True)
    rk = np.stack([col()[route_first] for col in rk_cols], axis=1)     # one row per distinct route
    routes: list[tuple[str, list[M.Hop]]] = []
    name = lambda pid: points[pid].name if pid >= 0 else None  # noqa: E731
    for mcode, sn, dn, skind, dkind, spp, dpp, sep, dep, f_out, t_out in rk.tolist():
        mode = M.MODES[mcode % len(M.MODES)]
        s_node = topo.nodes[sn] if sn >= 0 else None
        d_node = topo.nodes[dn] if dn >= 0 else None
        same_subnet = None
        if mode == M.CALICO_IPIP_CROSSSUBNET:
            # CrossSubnet encapsulates only between nodes in different subnets (assumed /24 on the underlay);
            # a flow seen in IP-in-IP was encapsulated whatever the addresses say.
            sa, da = topo.node_addr.get(s_node or ""), topo.node_addr.get(d_node or "")
            same_subnet = (mcode < len(M.MODES) and sa is not None and da is not None
                           and sa.rsplit(".", 1)[0] == da.rsplit(".", 1)[0])
        hops = M.expected_path(
            mode, s_node, d_node, same_subnet=same_subnet,
            src_is_pod=skind in (T.KIND_POD, T.KIND_UNKNOWN), dst_is_pod=dkind in (T.KIND_POD, T.KIND_UNKNOWN),
            src_is_node=skind == T.KIND_NODE, dst_is_node=dkind == T.KIND_NODE,
            src_iface=name(spp), dst_iface=name(dpp), src_pod_point=name(sep), dst_pod_point=name(dep))
        if f_out and s_node is not None:
            hops = [M.Hop(s_node, R.HOST_ETH0, None, "src")] + hops
        if t_out and d_node is not None:
            hops = hops + [M.Hop(d_node, R.HOST_ETH0, None, "dst")]
        routes.append((mode, hops))
    return route.ravel().astype(np.int64), routes


def _flows(c: dict[str, np.ndarray], rep: np.ndarray, src_key: np.ndarray, dst_key: np.ndarray):
    """Flows over packets: (flow per packet, forward per packet, first packet per flow, initiator's packet per
    flow, the flows' Segments). A flow is the canonical endpoint pair of the representative tuples; its
    initiator sent the SYN or echo request, else the first packet unless that came from a service port to an
    ephemeral one (a capture that started mid-connection)."""
    n_pk = len(rep)
    proto = c["i_proto"][rep].astype(np.int64)
    icmp = (proto == 1) | (proto == 58)
    sp = np.where(icmp, c["icmp_id"][rep], c["i_sport"][rep]).astype(np.int32)
    dp = np.where(icmp, c["icmp_id"][rep], c["i_dport"][rep]).astype(np.int32)
    sk, dk = src_key[rep], dst_key[rep]
    swap = (sk > dk) | ((sk == dk) & (sp > dp))
    # The canonical (lower, higher) endpoint columns are built one at a time while hashed (peak memory).
    _, finv = np.unique(hash_columns([proto, lambda: np.where(swap, dk, sk), lambda: np.where(swap, dp, sp),
                                      lambda: np.where(swap, sk, dk), lambda: np.where(swap, sp, dp)]),
                        return_inverse=True)
    flow = renumber_by_first_row(finv.astype(np.int64).ravel())
    del finv
    n_fl = int(flow.max()) + 1
    flags = c["tcp_flags"][rep]
    opener = ((proto == 6) & ((flags & 0x12) == 0x02)) | (icmp & np.isin(c["icmp_type"][rep], (8, 128)))
    pk_ids = np.arange(n_pk, dtype=np.int64)
    big = np.iinfo(np.int64).max
    by_flow = Segments(flow, n_fl)
    open_pk = by_flow.reduce(np.minimum, np.where(opener, pk_ids, big), big)
    first_pk = by_flow.reduce(np.minimum, pk_ids, big)
    # Without an opener, a first packet from a service port to an ephemeral one (Linux: 32768-60999) is a reply.
    fsp, fdp = sp[first_pk], dp[first_pk]
    reverse_hint = (fsp < fdp) & ((fsp < 1024) | ((fdp >= 32768) & (fsp < 32768))) & ~icmp[first_pk]
    init_pk = np.where(open_pk != big, open_pk, first_pk)
    # The initiator is the lower endpoint when its packet did not swap.
    init_is_lo = ~swap[init_pk]
    init_is_lo = np.where((open_pk == big) & reverse_hint, ~init_is_lo, init_is_lo)
    forward = (~swap) == init_is_lo[flow]
    # A forward packet describes the initiator (for reversed-hint flows the first packet was a reply).
    fwd_pk = by_flow.reduce(np.minimum, np.where(forward, pk_ids, big), big)
    init_pk = np.where(fwd_pk != big, fwd_pk, init_pk)
    return flow, forward, first_pk, init_pk, by_flow


def _without_packets(a: HopAnalysis, n: int, packet_id: np.ndarray) -> HopAnalysis:
    """No IP packet at all (ARP only, a damaged file): every hop column is null, there are no flows."""
    a._packet_id = packet_id.astype(np.int32)
    a._hop = np.full(n, -1, dtype=np.int8)
    a._point_node = np.full(len(a.points) or 1, -1, dtype=np.int64)
    a.columns = a._make_columns()
    return a
