"""``LoadingMixin``: the TracerApp's loaders — the packet index, the cluster state and the hop analysis.

Each runs off the UI thread and only posts messages (``TracerApp.IndexProgress`` …); the handlers here update
the ``Session`` and tell the panes. The index loader is a Textual thread worker (Esc cancels it and keeps what is
indexed); the hop analysis runs in a daemon thread because it cannot be interrupted and ``q`` must not wait for it.
"""

from __future__ import annotations

import inspect
import threading
import time
from typing import TYPE_CHECKING, Any

from textual import work
from textual.message import Message
from textual.widgets import ProgressBar
from textual.worker import get_current_worker

from tracer.errors import TracerError
from tracer.ui.hex_view import HexView
from tracer.ui.hop_ladder import HopLadder
from tracer.ui.layer_tree import LayerTree
from tracer.ui.packet_list import PacketList
from tracer.ui.safe import clean
from tracer.ui.session import core_function, optional_import
from tracer.ui.verdict_panel import VerdictPanel

# The index is needed before anything can be shown: import it here, before the app starts, rather than in the
# loader thread where it would compete for the GIL with composing the screen. Its absence is reported in the UI.
optional_import("tracer.capture.index")

FIRST_BATCH = 4096  # small, so the first rows are painted long before a big file is indexed
BATCH = 65536

if TYPE_CHECKING:
    from tracer.ui.app import TracerApp


class LoadingMixin:
    """Loaders and their message handlers (mixed into ``TracerApp``; ``self`` is the app)."""

    def on_load(self) -> None:
        # Start reading before the screen is even composed: the first rows race the first paint.
        self.load_index()

    def _in_background(self, name: str, target: Any, *args: Any) -> None:
        """A daemon thread for long, uninterruptible core work (hop analysis, flows, reachability). Not a
        Textual thread worker: those run in the event loop's executor, whose threads the interpreter joins at
        exit, so ``q`` during a 10 s analysis would hang for the rest of it. It only posts messages."""
        thread = threading.Thread(target=target, args=args, name=f"tracer-{name}", daemon=True)
        self._background = [t for t in self._background if t.is_alive()] + [thread]
        thread.start()

    def busy(self) -> bool:
        """Work in flight: a Textual worker or a background thread (tests wait for this to settle)."""
        return (any(t.is_alive() for t in self._background) or any(w.is_running for w in self.workers)
                or self._pending_row is not None)

    def _alive(self) -> bool:
        """The main view's panes exist (false while starting up and while the app is closing down)."""
        return (self._ui_ready.is_set() and self.is_running and bool(self.screen_stack)
                and bool(self.screen_stack[0].query(PacketList)))

    def _post_when_ready(self, message: Message) -> None:
        """From a loader thread: post once the panes are mounted (the loaders start before compose). Rows
        indexed before that are handed to ``on_mount`` directly, so the very first paint shows them."""
        if not self._ui_ready.is_set() and isinstance(message, self.IndexProgress):
            self._early_progress = message
        self._ui_ready.wait(timeout=10)
        self.post_message(message)

    def on_unmount(self) -> None:
        self._ui_ready.set()  # closing before the panes ever existed: let a waiting loader run out

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

    def on_tracer_app_index_progress(self, message: TracerApp.IndexProgress) -> None:
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

    def on_tracer_app_index_complete(self, message: TracerApp.IndexComplete) -> None:
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

    def on_tracer_app_load_failed(self, message: TracerApp.LoadFailed) -> None:
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

    def on_tracer_app_cluster_loaded(self, message: TracerApp.ClusterLoaded) -> None:
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

    def on_tracer_app_analysis_ready(self, message: TracerApp.AnalysisReady) -> None:
        if not self._alive():
            return
        self.session.analysis = message.analysis
        self.session.missing.pop("analysis", None)
        self.session.invalidate()
        self.query_one(PacketList).refresh()
        self._refresh_status()
        if self._detail_row is not None:
            self._show_row_details(self._detail_row)

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


def _iter_progress(builder: Any, batch: int):
    """The builder's progress reports: a small first batch so the first rows come fast, then big ones."""
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

