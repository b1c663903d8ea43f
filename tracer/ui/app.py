"""``TracerApp``: the keyboard-driven packet and hop inspector, and ``create_app`` / ``run_app`` to start it.

Attributes down, messages up: workers (index loading, hop analysis, filtering, dissection, export) run in
threads and only post messages; the app updates the ``Session`` on the UI thread and tells each pane what to
show. Panes never talk to each other.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, ProgressBar
from textual.worker import get_current_worker

from tracer.errors import TracerError
from tracer.ui.session import optional_import as _optional_import

# The index is needed before anything can be shown: import it here, before the app starts, rather than in the
# loader thread where it would compete for the GIL with composing the screen. Its absence is reported in the UI.
_optional_import("tracer.capture.index")
from tracer.ui.hex_view import HexView
from tracer.ui.hop_ladder import HopLadder, attr
from tracer.ui.layer_tree import LayerTree
from tracer.ui.packet_list import PacketList
from tracer.ui.prompt_bar import PromptBar
from tracer.ui.safe import clean
from tracer.ui.session import Session, core_function, optional_import
from tracer.ui.status_bar import StatusBar
from tracer.ui.verdict_panel import VerdictPanel

FIRST_BATCH = 4096  # small, so the first rows are painted long before a big file is indexed
BATCH = 65536
DETAIL_PANES = ("layers", "hex", "hops", "verdict")
PANE_ORDER = ("packets", *DETAIL_PANES)


class TracerApp(App):
    """The tracer TUI over one ``Session``."""

    CSS_PATH = "tracer.tcss"
    TITLE = "tracer"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("question_mark", "help", "Help", id="app.help", tooltip="List every key binding"),
        Binding("slash", "filter", "Filter", id="app.filter", tooltip="Display filter (capture syntax + k8s.*)"),
        Binding("n", "match(1)", "Next match", id="app.next_match", tooltip="Next packet matching the filter",
                show=False),
        Binding("N", "match(-1)", "Prev match", id="app.prev_match",
                tooltip="Previous packet matching the filter", show=False),
        Binding("right_square_bracket", "hop(1)", "Next hop", id="app.next_hop",
                tooltip="Same packet at the next hop of its path"),
        Binding("left_square_bracket", "hop(-1)", "Prev hop", id="app.prev_hop",
                tooltip="Same packet at the previous hop of its path"),
        Binding("f", "follow", "Follow", id="app.follow", tooltip="Show only this packet's flow (again: undo)"),
        Binding("F", "flows", "Flows", id="app.flows", tooltip="Flows view: denied and dropped first"),
        Binding("r", "reach", "Reach", id="app.reach", tooltip="Reachability: observed vs policy"),
        Binding("colon", "goto", "Go to", id="app.goto", tooltip="Go to packet number", show=False),
        Binding("m", "mark", "Mark", id="app.mark", tooltip="Mark or unmark the packet", show=False),
        Binding("e", "export", "Export", id="app.export", tooltip="Export marked (else shown) packets to pcapng"),
        Binding("t", "time_format", "Time", id="app.time", tooltip="Time: relative / absolute / delta",
                show=False),
        Binding("tab", "cycle(1)", "Next pane", id="app.next_pane", tooltip="Focus the next pane", show=False,
                priority=True),
        Binding("shift+tab", "cycle(-1)", "Prev pane", id="app.prev_pane", tooltip="Focus the previous pane",
                show=False, priority=True),
        Binding("z", "zoom", "Zoom", id="app.zoom", tooltip="Zoom the focused pane (again: restore)",
                show=False),
        Binding("1", "toggle_pane('layers')", "Layers", id="app.toggle_layers", tooltip="Hide/show layers",
                show=False),
        Binding("2", "toggle_pane('hex')", "Hex", id="app.toggle_hex", tooltip="Hide/show bytes", show=False),
        Binding("3", "toggle_pane('hops')", "Hops", id="app.toggle_hops", tooltip="Hide/show hop path",
                show=False),
        Binding("4", "toggle_pane('verdict')", "Verdict", id="app.toggle_verdict", tooltip="Hide/show verdict",
                show=False),
        Binding("escape", "cancel", "Cancel", id="app.cancel", tooltip="Cancel loading (keeps what is indexed)",
                show=False),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit"),
        Binding("ctrl+c", "quit", "Quit", id="app.quit_ctrl_c", tooltip="Quit", show=False, priority=True),
    ]

    # ----- messages from workers ----------------------------------------------------------------------------
    class IndexProgress(Message):
        """More packets are indexed: ``count`` rows valid, ``fraction`` of the input read, ``rate`` pkt/s."""

        def __init__(self, index: Any, count: int, fraction: float | None, rate: float) -> None:
            super().__init__()
            self.index, self.count, self.fraction, self.rate = index, count, fraction, rate

    class IndexComplete(Message):
        def __init__(self, index: Any, count: int, cancelled: bool, warnings: list[str]) -> None:
            super().__init__()
            self.index, self.count, self.cancelled, self.warnings = index, count, cancelled, warnings

    class LoadFailed(Message):
        def __init__(self, part: str, error: str) -> None:
            super().__init__()
            self.part, self.error = part, error

    class ClusterLoaded(Message):
        def __init__(self, cluster: Any) -> None:
            super().__init__()
            self.cluster = cluster

    class AnalysisReady(Message):
        def __init__(self, analysis: Any) -> None:
            super().__init__()
            self.analysis = analysis

    class FilterApplied(Message):
        def __init__(self, expr: str, rows: np.ndarray | None) -> None:
            super().__init__()
            self.expr, self.rows = expr, rows

    class FilterFailed(Message):
        def __init__(self, expr: str, error: str, position: int | None) -> None:
            super().__init__()
            self.expr, self.error, self.position = expr, error, position

    class Dissected(Message):
        def __init__(self, row: int, frame: bytes | None, dissection: Any, error: str | None) -> None:
            super().__init__()
            self.row, self.frame, self.dissection, self.error = row, frame, dissection, error

    class ViewReady(Message):
        """The flows list or reachability matrix is built (``data``), or why not (``problem``)."""

        def __init__(self, view: str, data: Any, problem: str | None) -> None:
            super().__init__()
            self.view, self.data, self.problem = view, data, problem

    class Exported(Message):
        def __init__(self, path: str, count: int, error: str | None) -> None:
            super().__init__()
            self.path, self.count, self.error = path, count, error

    # ----- setup --------------------------------------------------------------------------------------------
    def __init__(self, session: Session, *, keymap: Mapping[str, str] | None = None,
                 keymap_problem: str | None = None) -> None:
        super().__init__()
        self.session = session
        self._user_keymap = dict(keymap or {})
        self._keymap_problem = keymap_problem
        self._progress = ""
        self._started = time.monotonic()
        self.first_paint_s: float | None = None
        self.load_log: list[tuple[float, int, int]] = []  # (seconds since start, rows indexed, rows shown)
        self.fatal_error: str | None = None  # set when no packet at all could be read; the app exits
        self._detail_row: int | None = None
        self._dissections: OrderedDict[int, tuple[bytes | None, Any, str | None]] = OrderedDict()
        self._matches: np.ndarray | None = None
        self._before_follow: tuple[np.ndarray | None, str] | None = None
        self._builder: Any = None
        self._background: list[threading.Thread] = []
        self._early_progress: TracerApp.IndexProgress | None = None
        self._dissecting: int | None = None
        self._ui_ready = threading.Event()  # set once the panes exist; loaders started earlier wait for it
        self._live_status = ""
        self._current_detail = "hops"  # on a narrow terminal the hop path is the pane shown first

    def compose(self) -> ComposeResult:
        with Vertical(id="main"):
            yield PacketList(self.session, id="packets")
            with Horizontal(id="detail"):
                yield LayerTree(id="layers", classes="pane")
                yield HexView(id="hex", classes="pane")
                with Vertical(id="side", classes="pane"):
                    yield HopLadder(id="hops", classes="pane")
                    yield VerdictPanel(id="verdict", classes="pane")
        yield PromptBar(id="prompt")
        yield ProgressBar(id="progress", show_eta=False)
        yield StatusBar(id="status")
        yield Footer()

    def on_load(self) -> None:
        # Start reading before the screen is even composed: the first rows race the first paint.
        self.load_index()

    def say(self, message: str, *, severity: str = "information", timeout: float | None = None) -> None:
        """A toast whose text is inert: messages quote file names, interface names and core errors, so they
        are cleaned of control characters and never parsed as markup."""
        self.notify(clean(message), severity=severity, timeout=timeout, markup=False)  # type: ignore[arg-type]

    def _in_background(self, name: str, target: Any, *args: Any) -> None:
        """A daemon thread for long, uninterruptible core work (hop analysis, flows, reachability). Not a
        Textual thread worker: those run in the event loop's executor, whose threads the interpreter joins at
        exit, so ``q`` during a 10 s analysis would hang for the rest of it. It only posts messages."""
        thread = threading.Thread(target=target, args=args, name=f"tracer-{name}", daemon=True)
        self._background = [t for t in self._background if t.is_alive()] + [thread]
        thread.start()

    def busy(self) -> bool:
        """Work in flight: a Textual worker or a background thread (tests wait for this to settle)."""
        return any(t.is_alive() for t in self._background) or any(w.is_running for w in self.workers)

    def _alive(self) -> bool:
        """The main view's panes exist (false while starting up and while the app is closing down)."""
        return (self._ui_ready.is_set() and self.is_running and bool(self.screen_stack)
                and bool(self.screen_stack[0].query(PacketList)))

    def _post_when_ready(self, message: Message) -> None:
        """From a loader thread: post once the panes are mounted (the loaders start before compose). Rows
        indexed before that are handed to ``on_mount`` directly, so the very first paint shows them."""
        if not self._ui_ready.is_set() and isinstance(message, self.IndexProgress):
            self._early_progress = message
        self._ui_ready.wait(timeout=30)
        self.post_message(message)

    def on_mount(self) -> None:
        if self._user_keymap:
            known = {binding_id for _, binding_id, _, _ in self.binding_table()}
            unknown = sorted(set(self._user_keymap) - known)
            if unknown:
                self.say(clean(f"keymap: unknown binding ids ignored: {', '.join(unknown)} (see ?)"),
                            severity="warning", timeout=8)
            self.set_keymap(self._user_keymap)
        if self._keymap_problem:
            self.say(clean(self._keymap_problem), severity="warning")
        self.query_one("#layers").border_title = "Layers"
        self.query_one("#hex").border_title = "Bytes"
        self.query_one("#prompt").display = False
        self.query_one("#progress").display = False
        self.query_one(HopLadder).show_message("Hop path: waiting for the index")
        self.query_one(VerdictPanel).show_message("Verdict: waiting for the index")
        self.query_one(LayerTree).show_message("No packet selected")
        self.query_one(PacketList).focus()
        self._apply_size(self.size.width, self.size.height)
        self._refresh_status()
        if self.session.live is not None:
            self.set_interval(1.0, self._poll_live)
        self._ui_ready.set()  # the panes exist: the loader may post
        early = self._early_progress
        if early is not None:  # rows indexed while the screen was composed: in the first paint already
            self.on_tracer_app_index_progress(early)
        if self.session.cluster_paths:
            # After the first paint: parsing YAML in a thread competes for the GIL with painting the first rows.
            self.call_after_refresh(self.load_cluster)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        """Narrow terminals show one detail pane at a time (Tab cycles); wide ones give the bytes 16 a line."""
        main = self.screen_stack[0] if self.screen_stack else self.screen  # not a modal screen on top
        main.set_class(width < 100, "-narrow")
        main.set_class(width >= 170, "-wide")
        main.set_class(height < 30, "-short")
        self._mark_current_detail()

    def _mark_current_detail(self) -> None:
        for pane in DETAIL_PANES:
            widget = self.query_one(f"#{pane}")
            widget.set_class(pane == self._current_detail, "-current")
        self.query_one("#side").set_class(self._current_detail in ("hops", "verdict"), "-current")

    # ----- loading ------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_index(self) -> None:
        """Index the files in batches, posting progress; stops early (keeping what is indexed) on cancel."""
        worker = get_current_worker()
        module, why = optional_import("tracer.capture.index")
        if module is None:
            self._post_when_ready(self.LoadFailed("index", why or "capture index not available"))
            return
        index = None
        count = 0
        started = time.monotonic()
        try:
            kwargs = {"follow": True} if self.session.follow else {}
            builder = module.IndexBuilder(self.session.paths, vxlan_ports=tuple(self.session.vxlan_ports),
                                          **kwargs)
            self._builder = builder
            index = getattr(builder, "index", None)
            batch = FIRST_BATCH
            for progress in _iter_progress(builder, batch):
                index = getattr(builder, "index", None) or getattr(progress, "index", None) or index
                count = len(index) if index is not None else 0
                elapsed = max(time.monotonic() - started, 1e-6)
                self._post_when_ready(self.IndexProgress(index, count, _fraction(progress), count / elapsed))
                if worker.is_cancelled:
                    break
            cancelled = worker.is_cancelled
            if not cancelled and hasattr(builder, "finish"):
                index = builder.finish() or index
            count = len(index) if index is not None else 0
            warnings = list(getattr(index, "warnings", []) or [])
            self._post_when_ready(self.IndexComplete(index, count, cancelled, warnings))
        except TracerError as exc:
            self._post_when_ready(self.LoadFailed("index", str(exc)))
            if index is not None:
                self._post_when_ready(self.IndexComplete(index, len(index), True, [str(exc)]))
        except Exception as exc:  # noqa: BLE001 - one line in the status bar, the app keeps running
            self._post_when_ready(self.LoadFailed("index", f"internal error: {type(exc).__name__}: {exc}"))

    def on_tracer_app_index_progress(self, message: IndexProgress) -> None:
        if not self._alive() or (message is self._early_progress and self.load_log):
            return  # (the early batch was already applied by on_mount)
        self._set_index(message.index, message.count)
        self.load_log.append((time.monotonic() - self._started, message.count, self.session.shown))
        pct = f"{message.fraction * 100:.0f}% " if message.fraction is not None else ""
        self._progress = f"indexing {pct}{message.count:,} pkts {message.rate:,.0f} pkt/s · Esc cancels"
        bar = self.query_one("#progress", ProgressBar)
        bar.display = True
        bar.update(total=100, progress=(message.fraction or 0) * 100)
        self._refresh_status()

    def on_tracer_app_index_complete(self, message: IndexComplete) -> None:
        if not self._alive():
            return
        self.session.loading = False
        self.session.cancelled = message.cancelled
        # Merging several files may reorder rows once at the end: nothing cached by row survives that.
        self.session.invalidate()
        self._dissections.clear()
        self._dissecting = None
        self._set_index(message.index, message.count)
        self._progress = ""
        self.query_one("#progress").display = False
        for warning in message.warnings:
            self.say(clean(warning), severity="warning", timeout=8)
        if self.session.total == 0:
            for pane in (LayerTree, HopLadder, VerdictPanel):
                self.query_one(pane).show_message("no packets in this capture")
            self.query_one(HexView).show_message("no packets in this capture")
        if self.session.filter_expr:  # the filter ran on the rows indexed then; apply it to all of them
            self.apply_filter(self.session.filter_expr)
        self._refresh_status()
        self.start_analysis()

    def on_tracer_app_load_failed(self, message: LoadFailed) -> None:
        self.session.missing[message.part] = message.error
        self.session.loading = False
        self._progress = ""
        if message.part == "index" and (self.session.index is None or self.session.total == 0):
            # Nothing readable at all: leave with the error (the CLI prints it as one line, exit 2).
            self.fatal_error = message.error
            self.exit(return_code=2)
            return
        if not self._alive():
            return
        self.query_one("#progress").display = False
        self.say(clean(message.error), severity="error", timeout=10)
        if message.part == "index" and self.session.index is None:
            self.query_one(LayerTree).show_message(message.error)
            self.query_one(HopLadder).show_message("No packets: " + message.error)
            self.query_one(VerdictPanel).show_message("No packets: " + message.error)
        if message.part == "cluster":  # analyse without cluster state rather than not at all
            self.start_analysis()
        if message.part in ("analysis", "cluster") and self._detail_row is not None:
            self._show_hops(self._detail_row)
        self._refresh_status()

    def _set_index(self, index: Any, count: int) -> None:
        if index is None:
            return
        first = self.session.index is None or self.session.total == 0
        packets = self.query_one(PacketList)
        at_end = self.session.shown > 0 and packets.cursor >= self.session.shown - 1
        self.session.index = index
        self.session.count = count
        packets.rows_changed()
        if self.session.follow and at_end and self.session.view is None:
            packets.select_pos(self.session.shown - 1)  # tail -f: stay on the newest packet
        if first and count and self.first_paint_s is None:
            self.first_paint_s = time.monotonic() - self._started

    @work(thread=True, exclusive=True, exit_on_error=False, group="cluster")
    def load_cluster(self) -> None:
        load_cluster, why = core_function("tracer.k8s:load_cluster", "tracer.k8s.cluster:load_cluster",
                                          "tracer.k8s.load:load_cluster")
        if load_cluster is None:
            self._post_when_ready(self.LoadFailed("cluster", why or "tracer.k8s.load_cluster not available yet"))
            return
        try:
            self._post_when_ready(self.ClusterLoaded(load_cluster(list(self.session.cluster_paths))))
        except TracerError as exc:
            self._post_when_ready(self.LoadFailed("cluster", str(exc)))
        except Exception as exc:  # noqa: BLE001
            self._post_when_ready(self.LoadFailed("cluster", f"cluster: {type(exc).__name__}: {exc}"))

    def on_tracer_app_cluster_loaded(self, message: ClusterLoaded) -> None:
        if not self._alive():
            return
        self.session.cluster = message.cluster
        self.session.invalidate()
        self.query_one(PacketList).refresh()
        self._refresh_status()
        if not self.session.loading and self.session.index is not None:
            self.start_analysis()
        if self._detail_row is not None:
            self._show_row_details(self._detail_row)

    def start_analysis(self) -> None:
        if self.session.index is None or self.session.loading or not self.session.analyse:
            return
        if self.session.cluster_paths and self.session.cluster is None and "cluster" not in self.session.missing:
            return  # the cluster is still loading; analysis starts when it arrives
        self.analyse()

    def analyse(self) -> None:
        """Run the hop analysis in the background (seconds on a big capture; the list stays usable)."""
        if any(t.is_alive() and t.name == "tracer-analysis" for t in self._background):
            return
        self._in_background("analysis", self._analyse)

    def _analyse(self) -> None:
        analyze, why = core_function("tracer.hops:analyze", "tracer.hops.analysis:analyze")
        if analyze is None:
            self.post_message(self.LoadFailed("analysis", why or "hop analysis (tracer.hops.analyze) not available yet"))
            return
        try:
            analysis = analyze(self.session.index, cluster=self.session.cluster, cni=self.session.cni)
            self.post_message(self.AnalysisReady(analysis))
        except TracerError as exc:
            self.post_message(self.LoadFailed("analysis", str(exc)))
        except Exception as exc:  # noqa: BLE001
            self.post_message(self.LoadFailed("analysis", f"hop analysis: {type(exc).__name__}: {exc}"))

    def on_tracer_app_analysis_ready(self, message: AnalysisReady) -> None:
        if not self._alive():
            return
        self.session.analysis = message.analysis
        self.session.missing.pop("analysis", None)
        self.session.invalidate()
        self.query_one(PacketList).refresh()
        self._refresh_status()
        if self._detail_row is not None:
            self._show_row_details(self._detail_row)

    # ----- selection and detail panes ------------------------------------------------------------------------
    def on_packet_list_selected(self, message: PacketList.Selected) -> None:
        if message.row is None:
            return
        self._show_row_details(message.row)

    def _show_row_details(self, row: int) -> None:
        self._detail_row = row
        cached = self._dissections.get(row)
        if cached is not None:
            self._show_dissection(row, *cached)
        elif self._dissecting != row:  # not already on its way
            self.query_one(LayerTree).show_message("dissecting…")
            self._dissecting = row
            # After the next paint: the first dissection imports scapy (~0.5 s of CPU holding the GIL), which
            # must not delay painting the list it was selected in.
            self.call_after_refresh(self.dissect, row)
        self._show_hops(row)

    @work(thread=True, exclusive=True, exit_on_error=False, group="dissect")
    def dissect(self, row: int) -> None:
        """Read the frame from disk and dissect it with scapy (imported here, lazily, off the UI thread)."""
        frame = None
        try:
            frame = self.session.index.frame(row)
            module, why = optional_import("tracer.decode.dissect")
            if module is None:
                self.post_message(self.Dissected(row, frame, None, why))
                return
            src = self.session.index.sources[self.session.value("source", row)]
            dissection = module.dissect(frame, int(src.linktype), vxlan_ports=tuple(self.session.vxlan_ports))
            self.post_message(self.Dissected(row, frame, dissection, None))
        except Exception as exc:  # noqa: BLE001 - a packet that cannot be dissected still shows its bytes
            self.post_message(self.Dissected(row, frame, None, f"cannot dissect: {type(exc).__name__}: {exc}"))

    def on_tracer_app_dissected(self, message: Dissected) -> None:
        if not self._alive():
            return
        if self._dissecting == message.row:
            self._dissecting = None
        self._dissections[message.row] = (message.frame, message.dissection, message.error)
        if len(self._dissections) > 256:
            self._dissections.popitem(last=False)
        if message.row == self._detail_row:
            self._show_dissection(message.row, message.frame, message.dissection, message.error)

    def _show_dissection(self, row: int, frame: bytes | None, dissection: Any, error: str | None) -> None:
        tree = self.query_one(LayerTree)
        hexview = self.query_one(HexView)
        point = self.session.point_label(self.session.value("source", row))
        title = f"#{row + 1} at {point}"
        if dissection is not None:
            tree.show_dissection(dissection, title=title)
        else:
            tree.show_message(f"{title}: {error or 'no dissection'}")
        if frame is not None:
            hexview.show_bytes(frame)
        else:
            hexview.show_message(error or "frame not readable")

    def on_layer_tree_span_highlighted(self, message: LayerTree.SpanHighlighted) -> None:
        self.query_one(HexView).set_highlight(message.offset, message.length)

    def _path(self, row: int) -> Any:
        analysis = self.session.analysis
        if analysis is None:
            return None
        try:
            return analysis.path(row)
        except Exception as exc:  # noqa: BLE001
            self.session.missing["path"] = f"hop path: {type(exc).__name__}: {exc}"
            return None

    def _show_hops(self, row: int) -> None:
        ladder = self.query_one(HopLadder)
        panel = self.query_one(VerdictPanel)
        missing = self.session.missing
        if self.session.analysis is None:
            why = missing.get("analysis")
            if not self.session.analyse:
                ladder.show_message("Hop path: hop analysis switched off")
            elif why:
                ladder.show_message(f"Hop path not available: {why}")
            elif self.session.loading:
                ladder.show_message("Hop path: after indexing")
            else:
                ladder.show_message("Hop path: analysing…")
        path = self._path(row)
        if path is not None:
            ladder.show_path(path, row)
        elif self.session.analysis is not None:
            ladder.show_message(missing.get("path", "no hop path for this packet"))
        self._show_verdict(row, path)

    def _show_verdict(self, row: int, path: Any) -> None:
        panel = self.query_one(VerdictPanel)
        verdict = attr(path, "verdict") if path is not None else None
        explanation = attr(path, "explanation") if path is not None else None
        if verdict or explanation:
            panel.show_verdict(verdict, explanation or "", subject=self._conversation(row),
                               policy=attr(path, "policy"))
            return
        if self.session.cluster is None:
            why = self.session.missing.get("cluster")
            panel.show_message(f"Verdict unknown: {why}" if why else
                               "Verdict unknown: no cluster loaded (--cluster PATH)")
            return
        if self.session.analysis is None:
            why = self.session.missing.get("analysis")
            panel.show_message(f"Verdict: needs hop analysis ({why})" if why else "Verdict: analysing…")
            return
        panel.show_verdict("unknown", "no NetworkPolicy verdict for this packet (not pod-to-pod traffic)",
                           subject=self._conversation(row))

    def _conversation(self, row: int) -> str:
        pos = self.session.view_pos(row)
        if pos is None:
            return f"#{row + 1}"
        cells = self.session.cells(pos)
        return f"#{row + 1} {cells.src} → {cells.dst} {cells.proto}"

    # ----- actions ------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The main view's keys act only on the main view (not under the flows, reach or help screens)."""
        if action in ("quit", "help") or not self.screen_stack:
            return True
        return self.screen is self.screen_stack[0] or action == "cycle"

    def action_help(self) -> None:
        from tracer.ui.help_screen import HelpScreen

        self.push_screen(HelpScreen(self.binding_table()))

    def binding_table(self) -> list[tuple[str, str, str, str]]:
        """(pane, id, keys, description) for every binding, with the user's keymap applied."""
        from tracer.ui.flows_screen import FlowsScreen
        from tracer.ui.reach_screen import ReachScreen

        owners = [("global", TracerApp), ("packet list", PacketList), ("layers", LayerTree),
                  ("prompt", PromptBar), ("flows view", FlowsScreen), ("reachability", ReachScreen)]
        keymap = dict(getattr(self, "_keymap", {}) or {})
        rows = []
        for pane, cls in owners:
            for binding in cls.BINDINGS:
                if not isinstance(binding, Binding) or not binding.id:
                    continue
                keys = keymap.get(binding.id, binding.key)
                rows.append((pane, binding.id, _pretty_keys(keys), binding.tooltip or binding.description))
        return rows

    def action_filter(self) -> None:
        self.query_one(PromptBar).open("filter", self.session.filter_expr,
                                       placeholder="e.g. tcp && k8s.ns == python   (empty: all packets)")

    def action_goto(self) -> None:
        self.query_one(PromptBar).open("goto", "", placeholder="packet number")

    def action_export(self) -> None:
        what = f"{len(self.session.marks)} marked" if self.session.marks else f"{self.session.shown} shown"
        self.query_one(PromptBar).open("export", "tracer-export.pcapng", placeholder=f"path for {what} packets")

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
            from tracer.ui.resolvers import make_resolvers

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

    def on_tracer_app_filter_applied(self, message: FilterApplied) -> None:
        if not self._alive():
            return
        prompt = self.query_one(PromptBar)
        if prompt.display and prompt.mode == "filter":
            prompt.close()
            self.query_one(PacketList).focus()
        self._before_follow = None
        self._matches = message.rows
        self._set_view(message.rows, message.expr)

    def on_tracer_app_filter_failed(self, message: FilterFailed) -> None:
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
        row = self._detail_row
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
        row = self._detail_row
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
        idx = self.session.index
        value = self.session.value
        ver, i_src, i_dst = value("i_ver", row), value("i_src", row), value("i_dst", row)
        src = self.session.endpoint_name(ver, i_src)
        dst = self.session.endpoint_name(ver, i_dst)
        if not (src or dst):
            return None
        return f"{src or idx.addr(ver, i_src)} → {dst or idx.addr(ver, i_dst)}"

    def on_tracer_app_exported(self, message: Exported) -> None:
        if not self._alive():
            return
        if message.error:
            self.say(clean(message.error), severity="error", timeout=8)
        else:
            self.say(f"exported {message.count} packets to {clean(message.path)}", timeout=5)

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

    def on_tracer_app_view_ready(self, message: ViewReady) -> None:
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

    def action_cancel(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
            return
        if self.session.loading:
            self.workers.cancel_group(self, "load")
            self.say("stopped following: analysing the packets captured so far" if self.session.follow
                        else "loading cancelled: keeping the packets indexed so far", timeout=4)

    def _poll_live(self) -> None:
        """Live capture counters in the status line; when the capture has ended, stop following its spool."""
        live = self.session.live
        try:
            captured, _received, dropped = live.totals()
        except Exception:  # noqa: BLE001 - counters are a nicety; the packets still arrive
            return
        self._live_status = f"live: {captured:,} captured, {dropped:,} dropped by the kernel"
        done = getattr(live, "done", None)
        done = done() if callable(done) else (done if done is not None else getattr(live, "_closed", False))
        if done and self.session.loading and self._builder is not None:
            self._builder.stop()  # the spool is complete: the loader finishes and the hop analysis runs
        self._refresh_status()

    def _refresh_status(self) -> None:
        progress = " · ".join(p for p in (self._live_status, self._progress) if p)
        self.query_one(StatusBar).refresh_from(self.session, progress=progress)


def _pretty_keys(keys: str) -> str:
    names = {"question_mark": "?", "slash": "/", "colon": ":", "left_square_bracket": "[",
             "right_square_bracket": "]", "pagedown": "PgDn", "pageup": "PgUp", "escape": "Esc",
             "shift+tab": "Shift+Tab", "tab": "Tab", "space": "Space", "enter": "Enter", "ctrl+c": "Ctrl+C",
             "ctrl+f": "Ctrl+F", "ctrl+b": "Ctrl+B", "home": "Home", "end": "End", "down": "↓", "up": "↑"}
    return " ".join(names.get(k.strip(), k.strip()) for k in keys.split(","))


def _iter_progress(builder: Any, batch: int):
    """The builder's progress reports: a small first batch so the first rows come fast, then big ones."""
    import inspect

    try:
        params = inspect.signature(builder.run).parameters
    except (TypeError, ValueError):
        params = {}
    if "max_batch" in params:
        yield from builder.run(batch=batch, max_batch=BATCH)
    else:
        yield from builder.run(batch=batch)


def _fraction(progress: Any) -> float | None:
    for name in ("fraction", "done"):
        value = getattr(progress, name, None)
        if isinstance(value, float):
            return max(0.0, min(value, 1.0))
    done = getattr(progress, "bytes_read", None) or getattr(progress, "bytes_done", None)
    total = getattr(progress, "bytes_total", None) or getattr(progress, "total_bytes", None)
    if done is not None and total:
        return max(0.0, min(done / total, 1.0))
    return None


def create_app(paths: Sequence[str], *, cluster: Sequence[str] | str | None = None, cni: str | None = None,
               vxlan_ports: Sequence[int] = (4789, 8472), keymap: Mapping[str, str] | None = None,
               keymap_problem: str | None = None, follow: bool = False, analyse: bool = True,
               live: Any = None) -> TracerApp:
    """The app for these capture files (the CLI's and the tests' single entry point).

    ``follow=True`` keeps reading growing files (``tracer live`` passes its spool): rows appear as they are
    written, the cursor stays on the newest packet while it is at the end, and Esc stops following (the hop
    analysis then runs on what was captured). ``live`` is the ``LiveCapture`` writing that spool (``tracer
    live``): its counters go in the status line and following stops when it has ended. ``analyse=False`` skips the hop analysis (the list, layers and
    bytes still work; the hop and verdict panes say why they are empty)."""
    if isinstance(cluster, str):
        cluster = [cluster]
    session = Session(paths=[os.fspath(p) for p in paths], cluster_paths=[os.fspath(c) for c in cluster or []],
                      cni=cni, vxlan_ports=tuple(int(p) for p in vxlan_ports), loading=True,
                      follow=follow or live is not None, analyse=analyse, live=live)
    return TracerApp(session, keymap=keymap, keymap_problem=keymap_problem)


def run_app(paths: Sequence[str], **kwargs: Any) -> int:
    """Run the app in this terminal with the user's keymap; returns the exit status."""
    from tracer.ui.keymap import load_keymap

    keymap, problem = load_keymap()
    app = create_app(paths, keymap=keymap, keymap_problem=problem, **kwargs)
    app.run()
    if app.fatal_error:
        raise TracerError(app.fatal_error)
    import sys

    for warning in getattr(app.session.index, "warnings", None) or []:
        # The contract's form: once per damaged file, after the screen is restored.
        print(f"tracer: warning: {clean(warning)}", file=sys.stderr)
    return int(app.return_code or 0)
