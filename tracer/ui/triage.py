"""``TriageMixin``: the TracerApp's incident-triage views and output — flows (``F``), reachability (``r``) and
export to pcapng (``e``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from textual import work

from tracer.errors import TracerError
from tracer.ui.hop_ladder import attr
from tracer.ui.packet_list import PacketList
from tracer.ui.prompt_bar import PromptBar
from tracer.ui.safe import clean

if TYPE_CHECKING:
    from tracer.ui.app import TracerApp


def unused_name(stem: str, suffix: str) -> str:
    """The name ``e`` suggests: ``stem+suffix``, else ``stem-2+suffix``… — one no file has yet, so accepting the
    suggestion twice never replaces the first export (a name typed on purpose still may)."""
    name, k = f"{stem}{suffix}", 1
    while os.path.lexists(name):
        k += 1
        name = f"{stem}-{k}{suffix}"
    return name


class TriageMixin:
    """Flows, reachability and export (mixed into ``TracerApp``; ``self`` is the app)."""

    def action_export(self) -> None:
        what = f"{len(self.session.marks)} marked" if self.session.marks else f"{self.session.shown} shown"
        self.query_one(PromptBar).open("export", unused_name("tracer-export", ".pcapng"),
                                       placeholder=f"path for {what} packets")

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def export(self, path: str) -> None:
        from tracer.ui.export import export_pcapng

        session = self.session
        if session.marks:
            rows = np.array(sorted(session.marks), dtype=np.int64)
        elif session.view is not None:
            rows = session.view
        else:
            rows = np.arange(session.total, dtype=np.int64)
        try:
            count = export_pcapng(session.index, rows, path, comment=self._export_comment)
            self.post_message(self.Exported(path, count, None))
        except (OSError, TracerError) as exc:
            self.post_message(self.Exported(path, 0, f"export to {path} failed: {exc}"))

    def _export_comment(self, row: int) -> str | None:
        """Pod names travel with exported packets as pcapng comments (``linux/nginx → python/tomcat``)."""
        if self.session.cluster is None:
            return None  # no names to keep (and no per-row work on a big export)
        src_col = self.session.analysis_column("src_pod")
        dst_col = self.session.analysis_column("dst_pod")
        if src_col is not None and dst_col is not None and src_col[row] and dst_col[row]:
            return f"{src_col[row]} → {dst_col[row]}"  # both pods, named by the hop analysis
        idx = self.session.index
        value = self.session.value
        ver, i_src, i_dst = value("i_ver", row), value("i_src", row), value("i_dst", row)
        src = self.session.endpoint_name(ver, i_src)
        dst = self.session.endpoint_name(ver, i_dst)
        if not (src or dst):
            return None
        return f"{src or idx.addr(ver, i_src)} → {dst or idx.addr(ver, i_dst)}"

    def on_tracer_app_exported(self, message: TracerApp.Exported) -> None:
        if not self._alive():
            return
        if message.error:
            self.say(clean(message.error), severity="error", timeout=8)
        else:
            self.say(f"exported {message.count} packets to {clean(message.path)}", timeout=5)

    def action_flows(self) -> None:
        if self.session.analysis is None:
            why = self.session.missing.get("analysis", "hop analysis still running")
            self.say(f"flows need the hop analysis: {clean(why)}", timeout=5)
            return
        self.compute_view("flows")

    def compute_view(self, view: str) -> None:
        """Flows and the reachability matrix are built off the UI thread (seconds on a big capture)."""
        self._in_background(view, self._compute_view, view)

    def _compute_view(self, view: str) -> None:
        try:
            if view == "flows":
                self.post_message(self.ViewReady(view, list(self.session.analysis.flows()), None))
            else:
                from tracer.ui.reach_screen import reach_matrix

                matrix, problem = reach_matrix(self.session)
                self.post_message(self.ViewReady(view, matrix, problem))
        except Exception as exc:  # noqa: BLE001
            self.post_message(self.ViewReady(view, None, f"{view}: {type(exc).__name__}: {exc}"))

    def on_tracer_app_view_ready(self, message: TracerApp.ViewReady) -> None:
        if not self._alive():
            return
        if self.screen is not self.screen_stack[0]:
            return  # the user moved on (another screen is open)
        if message.view == "flows":
            if message.data is None:
                self.say(clean(message.problem or "no flows"), severity="error")
                return
            from tracer.ui.flows_screen import FlowsScreen

            self.push_screen(FlowsScreen(message.data, self.session), self._open_flow)
        else:
            from tracer.ui.reach_screen import ReachScreen

            self.push_screen(ReachScreen(self.session, message.data, message.problem))

    def _open_flow(self, flow: Any) -> None:
        if flow is None:
            return
        rows = attr(flow, "rows")
        fid = attr(flow, "flow_id", attr(flow, "id"))
        col = self.session.analysis_column("flow_id")
        if rows is None and col is not None and fid is not None:
            rows = np.flatnonzero(col[: self.session.total] == fid)
        if rows is None:
            self.say("this flow has no packet rows", timeout=3)
            return
        self._before_follow = (self.session.view, self.session.filter_expr)
        self._set_view(np.asarray(rows, dtype=np.int64), f"flow {fid}")
        self.query_one(PacketList).select_pos(0)

    def action_reach(self) -> None:
        if self.session.analysis is None or self.session.cluster is None:
            why = (self.session.missing.get("analysis") or self.session.missing.get("cluster")
                   or ("no cluster loaded (--cluster PATH)" if self.session.cluster is None
                       else "hop analysis still running"))
            self.say(f"reachability needs cluster and hop analysis: {clean(why)}", timeout=5)
            return
        self.compute_view("reach")

