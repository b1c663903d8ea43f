"""``TracerApp``: the keyboard-driven packet and hop inspector, and ``create_app`` / ``run_app`` to start it.

Attributes down, messages up: workers (index loading, hop analysis, filtering, dissection, export) run in
threads and only post messages; the app updates the ``Session`` on the UI thread and tells each pane what to
show. Panes never talk to each other. This module holds the layout, the bindings, the messages and the detail
panes; the loaders, the navigation keys and the triage views are mixins (``loading``, ``navigation``,
``triage``).
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

from tracer.errors import TracerError
from tracer.ui.hex_view import HexView
from tracer.ui.hop_ladder import HopLadder, attr
from tracer.ui.layer_tree import LayerTree
from tracer.ui.packet_list import PacketList
from tracer.ui.prompt_bar import PromptBar
from tracer.ui.safe import clean
from tracer.ui.session import Session, optional_import
from tracer.ui.status_bar import StatusBar
from tracer.ui.verdict_panel import VerdictPanel
from tracer.ui.loading import FIRST_BATCH, LoadingMixin, _iter_progress  # noqa: F401 - tests/robustness uses both
from tracer.ui.navigation import DETAIL_PANES, NavigationMixin
from tracer.ui.triage import TriageMixin


DETAIL_DELAY = 0.05  # seconds the cursor must rest before the detail panes follow it


class TracerApp(LoadingMixin, NavigationMixin, TriageMixin, App):
    """The tracer TUI over one ``Session``."""

    CSS_PATH = "tracer.tcss"
    TITLE = "tracer"
    ENABLE_COMMAND_PALETTE = False
    # A zoomed pane keeps the prompt (typing a filter blind, its error unseen), the progress and the status line.
    ALLOW_IN_MAXIMIZED_VIEW = "Footer, PromptBar, ProgressBar, StatusBar"
    # Esc is ours (app.cancel unzooms, the prompt closes itself): Textual's own Esc-to-minimize would take it
    # from an open prompt and unzoom instead of closing it.
    ESCAPE_TO_MINIMIZE = False

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
        self._pending_row: int | None = None  # selected, detail panes not updated yet (see DETAIL_DELAY)
        self._detail_timer: Any = None
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
        yield PromptBar(id="prompt", cluster=lambda: self.session.cluster)  # (its names are completed)
        yield ProgressBar(id="progress", show_eta=False)
        yield StatusBar(id="status")
        yield Footer()

    def say(self, message: str, *, severity: str = "information", timeout: float | None = None) -> None:
        """A toast whose text is inert: messages quote file names, interface names and core errors, so they
        are cleaned of control characters and never parsed as markup."""
        self.notify(clean(message), severity=severity, timeout=timeout, markup=False)  # type: ignore[arg-type]

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

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """A detail pane focused by a click becomes the current one (as Tab makes it), so a terminal that
        narrows afterwards shows the pane the user is in rather than the one Tab last reached. While a pane
        is zoomed the zoom follows the focus (Tab), so keys never go to a pane hidden behind it."""
        main = self.screen_stack[0] if self.screen_stack else None
        if main is None or event.widget.screen is not main:
            return
        chain = [event.widget, *event.widget.ancestors]
        pane = next((p for p in ("packets", *DETAIL_PANES) if any(getattr(n, "id", None) == p for n in chain)),
                    None)
        if pane is None:  # the prompt: the zoomed pane stays
            return
        if pane != "packets" and self._current_detail != pane:
            self._current_detail = pane
            self._mark_current_detail()
        if main.maximized is not None and main.maximized not in chain:
            main.maximize(event.widget)

    def _mark_current_detail(self) -> None:
        for pane in DETAIL_PANES:
            widget = self.query_one(f"#{pane}")
            widget.set_class(pane == self._current_detail, "-current")
        self.query_one("#side").set_class(self._current_detail in ("hops", "verdict"), "-current")

    # ----- loading ------------------------------------------------------------------------------------------
    # ----- selection and detail panes ------------------------------------------------------------------------
    def on_packet_list_selected(self, message: PacketList.Selected) -> None:
        """The list moves at once; the detail panes follow when the cursor rests for ``DETAIL_DELAY`` (holding
        ``j`` repaints only the list: the panes cost ~5x the list's CPU per frame)."""
        if message.row is None:
            self._clear_details()
            return
        self._pending_row = message.row
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_DELAY, self._apply_pending_row)

    def _clear_details(self) -> None:
        """The list shows no packet (a filter matching none): the panes say so rather than keep showing a
        packet that is not in the list, and the keys that act on "this packet" (f, [, ], m) have none."""
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._pending_row = self._detail_timer = self._detail_row = None
        if not self.session.total:
            return  # an empty capture: the loader says so when it completes
        why = ("no packet matches the filter (/ changes it)" if self.session.view is not None
               else "No packet selected")
        for pane in (LayerTree, HexView, HopLadder, VerdictPanel):
            self.query_one(pane).show_message(why)

    def _apply_pending_row(self) -> None:
        row, self._pending_row, self._detail_timer = self._pending_row, None, None
        if row is not None and self._alive():  # (the timer may fire while the app is closing)
            self._show_row_details(row)

    @property
    def current_row(self) -> int | None:
        """The packet the user is on: the one the panes are about to show, else the one they show."""
        return self._pending_row if self._pending_row is not None else self._detail_row

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
            try:
                tree.show_dissection(dissection, title=title)
            except Exception as exc:  # noqa: BLE001 - a dissection the tree cannot show; the bytes still are
                tree.show_message(f"{title}: cannot show the layers ({type(exc).__name__}: {exc})")
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
            try:
                ladder.show_path(path, row)
            except Exception as exc:  # noqa: BLE001 - the list and the other panes keep working
                ladder.show_message(f"cannot show the hop path ({type(exc).__name__}: {exc})")
        elif self.session.analysis is not None:
            ladder.show_message(missing.get("path", "no hop path for this packet"))
        try:
            self._show_verdict(row, path)
        except Exception as exc:  # noqa: BLE001
            self.query_one(VerdictPanel).show_message(f"cannot show the verdict ({type(exc).__name__}: {exc})")

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
        if action == "cycle" and self._typing_in_prompt():
            return False  # Tab belongs to the open prompt (PromptBar keeps it), not to the panes
        return self.screen is self.screen_stack[0] or action == "cycle"

    def _typing_in_prompt(self) -> bool:
        """The filter / go-to / export prompt is open on the main view and has the focus."""
        if self.screen is not self.screen_stack[0]:
            return False
        prompts = self.screen.query(PromptBar)  # (none while composing or closing down)
        if not prompts:
            return False
        prompt = prompts.first()
        focused = self.focused
        return bool(prompt.display) and focused is not None and (focused is prompt or prompt in focused.ancestors)

    def action_help(self) -> None:
        from tracer.ui.help_screen import HelpScreen

        self.push_screen(HelpScreen(self.binding_table()))

    def binding_table(self) -> list[tuple[str, str, str, str]]:
        """(pane, id, keys, description) for every binding, with the user's keymap applied."""
        from tracer.ui.flows_screen import FlowsScreen
        from tracer.ui.reach_screen import ReachScreen

        from tracer.ui.help_screen import HelpScreen

        owners = [("global", TracerApp), ("packet list", PacketList), ("layers", LayerTree),
                  ("prompt", PromptBar), ("flows view", FlowsScreen), ("reachability", ReachScreen),
                  ("help", HelpScreen)]
        keymap = dict(getattr(self, "_keymap", {}) or {})
        rows = []
        for pane, cls in owners:
            for binding in cls.BINDINGS:
                if not isinstance(binding, Binding) or not binding.id:
                    continue
                keys = keymap.get(binding.id, binding.key)
                rows.append((pane, binding.id, _pretty_keys(keys), binding.tooltip or binding.description))
        return rows

    def _refresh_status(self) -> None:
        progress = " · ".join(p for p in (self._live_status, self._progress) if p)
        self.query_one(StatusBar).refresh_from(self.session, progress=progress)


def _pretty_keys(keys: str) -> str:
    names = {"question_mark": "?", "slash": "/", "colon": ":", "left_square_bracket": "[",
             "right_square_bracket": "]", "pagedown": "PgDn", "pageup": "PgUp", "escape": "Esc",
             "shift+tab": "Shift+Tab", "tab": "Tab", "space": "Space", "enter": "Enter", "ctrl+c": "Ctrl+C",
             "ctrl+f": "Ctrl+F", "ctrl+b": "Ctrl+B", "home": "Home", "end": "End", "down": "↓", "up": "↑"}
    return " ".join(names.get(k.strip(), k.strip()) for k in keys.split(","))


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
    if not analyse:  # what the keys that need it (], F, r, hop.role) say, rather than "still running"
        session.missing["analysis"] = "switched off with --no-hops"
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
