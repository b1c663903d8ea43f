"""``NavigationMixin``: the TracerApp's keys for moving around — filter, go to, n/N, hops, follow, marks,
time format, and the pane keys (Tab, zoom, hide, Esc)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual import work

from tracer.errors import TracerError
from tracer.ui.hop_ladder import attr
from tracer.ui.packet_list import PacketList
from tracer.ui.prompt_bar import PromptBar
from tracer.ui.safe import clean
from tracer.ui.session import optional_import

DETAIL_PANES = ("layers", "hex", "hops", "verdict")

if TYPE_CHECKING:
    from tracer.ui.app import TracerApp


class NavigationMixin:
    """Navigation actions and the display filter (mixed into ``TracerApp``; ``self`` is the app)."""

    def action_filter(self) -> None:
        self.query_one(PromptBar).open("filter", self.session.filter_expr,
                                       placeholder="e.g. tcp && k8s.ns == python   (empty: all packets)")

    def action_goto(self) -> None:
        self.query_one(PromptBar).open("goto", "", placeholder="packet number")

    def on_prompt_bar_submitted(self, message: PromptBar.Submitted) -> None:
        prompt = self.query_one(PromptBar)
        value = message.value.strip()
        if message.mode == "filter":
            if not value:
                self._before_follow = None
                self._set_view(None, "")  # the last filter's matches stay for n/N
                prompt.close()
                self.query_one(PacketList).focus()
            else:
                self.apply_filter(value)
        elif message.mode == "goto":
            self._goto(value)
        elif message.mode == "export":
            if not value:
                prompt.show_error("give a file name")
                return
            prompt.close()
            self.query_one(PacketList).focus()
            count = len(self.session.marks) if self.session.marks else self.session.shown
            self.say(f"exporting {count:,} packets to {value}…", timeout=3)
            self.export(value)

    def on_prompt_bar_closed(self, message: PromptBar.Closed) -> None:
        self.query_one(PacketList).focus()

    def _goto(self, value: str) -> None:
        prompt = self.query_one(PromptBar)
        try:
            number = int(value)
        except ValueError:
            prompt.show_error(f"not a packet number: {value}")
            return
        if not 1 <= number <= self.session.total:
            prompt.show_error(f"no packet {number} (1–{self.session.total})")
            return
        if not self.query_one(PacketList).select_row(number - 1):
            prompt.show_error(f"packet {number} is hidden by the filter")
            return
        prompt.close()
        self.query_one(PacketList).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="filter")
    def apply_filter(self, expr: str) -> None:
        """Compile and evaluate a display filter off the UI thread; errors come back with their position."""
        module, why = optional_import("tracer.capture.filter")
        if module is None:
            self.post_message(self.FilterFailed(expr, why or "display filters not available yet", None))
            return
        try:
            from tracer.hops.fields import make_resolvers

            flt = module.compile_filter(expr, make_resolvers(self.session))
            index = self.session.index
            if index is None:
                self.post_message(self.FilterFailed(expr, "no packets loaded yet", None))
                return
            count = self.session.total
            mask = np.asarray(flt.mask(index))[:count]
            self.post_message(self.FilterApplied(expr, np.flatnonzero(mask)))
        except TracerError as exc:
            self.post_message(self.FilterFailed(expr, str(exc), getattr(exc, "position", None)))
        except Exception as exc:  # noqa: BLE001
            self.post_message(self.FilterFailed(expr, f"filter failed: {type(exc).__name__}: {exc}", None))

    def on_tracer_app_filter_applied(self, message: TracerApp.FilterApplied) -> None:
        if not self._alive():
            return
        prompt = self.query_one(PromptBar)
        if prompt.display and prompt.mode == "filter":
            prompt.close()
            self.query_one(PacketList).focus()
        self._before_follow = None
        self._matches = message.rows
        self._set_view(message.rows, message.expr)

    def on_tracer_app_filter_failed(self, message: TracerApp.FilterFailed) -> None:
        if not self._alive():
            return
        prompt = self.query_one(PromptBar)
        if not prompt.display:
            prompt.open("filter", message.expr)
        prompt.show_error(message.error, message.position)  # the old filter stays in force

    def _set_view(self, rows: np.ndarray | None, expr: str) -> None:
        packets = self.query_one(PacketList)
        keep = packets.selected_row
        self.session.set_view(rows, expr)
        packets.rows_changed(keep_row=keep)
        self._refresh_status()

    def action_match(self, step: int) -> None:
        matches = self._matches
        packets = self.query_one(PacketList)
        current = packets.selected_row
        if matches is None or len(matches) == 0 or current is None:
            self.say("no filter matches to step through (/ sets a filter)", timeout=3)
            return
        i = int(np.searchsorted(matches, current, side="right" if step > 0 else "left"))
        i = i if step > 0 else i - 1
        if not 0 <= i < len(matches):
            self.say("no more matches", timeout=2)
            return
        packets.select_row(int(matches[i]))

    def action_hop(self, step: int) -> None:
        """Move to the same packet's previous/next seen hop (the list follows when the row is shown)."""
        row = self.current_row
        if row is None:
            return
        if self.session.analysis is None:
            why = self.session.missing.get("analysis", "hop analysis still running")
            self.say(f"no hop path: {clean(why)}", timeout=4)
            return
        path = self._path(row)
        rows = []
        for hop in attr(path, "hops", ()) or ():
            r = attr(hop, "row")
            if r is None and attr(hop, "no") is not None:
                r = int(attr(hop, "no")) - 1
            if attr(hop, "seen") and r is not None:
                rows.append(int(r))
        if row not in rows:
            self.say("this packet has no other hops", timeout=3)
            return
        i = rows.index(row) + step
        if not 0 <= i < len(rows):
            self.say("last hop seen" if step > 0 else "first hop", timeout=2)
            return
        target = rows[i]
        if not self.query_one(PacketList).select_row(target):
            self.say(f"packet {target + 1} is hidden by the filter; showing it in the panes", timeout=4)
            self._show_row_details(target)

    def action_follow(self) -> None:
        if self._before_follow is not None:
            rows, expr = self._before_follow
            self._before_follow = None
            self._set_view(rows, expr)
            return
        row = self.current_row
        if row is None or self.session.index is None:
            return
        rows, label = self._flow_rows(row)
        self._before_follow = (self.session.view, self.session.filter_expr)
        self._set_view(rows, label)

    def _flow_rows(self, row: int) -> tuple[np.ndarray, str]:
        """Rows of the flow of ``row``: the hop analysis's flow id, else the inner 5-tuple both ways."""
        flow = self.session.analysis_column("flow_id")
        if flow is not None and int(flow[row]) >= 0:  # -1: not part of a flow (ARP, …)
            fid = int(flow[row])
            return np.flatnonzero(flow[: self.session.total] == fid), f"flow {fid}"
        idx, n = self.session.index, self.session.total
        col = {k: np.asarray(idx[k][:n]) for k in ("i_src", "i_dst", "i_sport", "i_dport", "i_proto", "i_ver")}
        a = {k: v[row] for k, v in col.items()}
        proto = col["i_proto"] == a["i_proto"]
        ver = col["i_ver"] == a["i_ver"]
        fwd = ((col["i_src"] == a["i_src"]) & (col["i_dst"] == a["i_dst"]) & (col["i_sport"] == a["i_sport"])
               & (col["i_dport"] == a["i_dport"]))
        rev = ((col["i_src"] == a["i_dst"]) & (col["i_dst"] == a["i_src"]) & (col["i_sport"] == a["i_dport"])
               & (col["i_dport"] == a["i_sport"]))
        return np.flatnonzero(proto & ver & (fwd | rev)), f"flow of #{row + 1}"

    def action_mark(self) -> None:
        row = self.query_one(PacketList).selected_row
        if row is None:
            return
        self.session.marks.symmetric_difference_update({row})
        self.query_one(PacketList).refresh()
        self._refresh_status()

    def action_time_format(self) -> None:
        from tracer.ui.columns import TIME_FORMATS

        fmt = self.session.time_format
        self.session.time_format = TIME_FORMATS[(TIME_FORMATS.index(fmt) + 1) % len(TIME_FORMATS)]
        self.session.invalidate()
        self.query_one(PacketList).refresh()
        self.say(f"time: {self.session.time_format}", timeout=2)

    def _visible_panes(self) -> list[str]:
        """Panes Tab visits: the list, then every detail pane not hidden (on a narrow terminal each one in
        turn takes the detail area)."""
        return ["packets", *(p for p in DETAIL_PANES if not self.query_one(f"#{p}").has_class("-hidden"))]

    def action_cycle(self, step: int) -> None:
        if self.screen is not self.screen_stack[0]:  # flows, reach, help: ordinary focus order there
            if step > 0:
                self.screen.focus_next()
            else:
                self.screen.focus_previous()
            return
        panes = self._visible_panes()
        focused = self.focused
        current = "packets"
        for pane in panes:
            widget = self.query_one(f"#{pane}")
            if focused is widget or (focused is not None and widget in focused.ancestors):
                current = pane
        nxt = panes[(panes.index(current) + step) % len(panes)] if current in panes else panes[0]
        if nxt in DETAIL_PANES:
            self._current_detail = nxt
            self._mark_current_detail()
        self.query_one(f"#{nxt}").focus()

    def action_zoom(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
            return
        focused = self.focused
        if focused is not None:
            self.screen.maximize(focused)

    def action_toggle_pane(self, pane: str) -> None:
        widget = self.query_one(f"#{pane}")
        widget.toggle_class("-hidden")
        if widget.has_class("-hidden") and (self.focused is widget or
                                            (self.focused is not None and widget in self.focused.ancestors)):
            self.query_one(PacketList).focus()

    def action_cancel(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
            return
        if self.session.loading:
            self.workers.cancel_group(self, "load")
            self.say("stopped following: analysing the packets captured so far" if self.session.follow
                        else "loading cancelled: keeping the packets indexed so far", timeout=4)

