"""Units of the TUI that need no terminal: inert text, column formatting, the keymap file, the demo lookup."""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.text import Text

from tracer.ui import columns as C
from tracer.ui.keymap import load_keymap
from tracer.ui.safe import ascii_byte, clean, plain

HOSTILE = ["[bold red]x[/bold red]", "[link=http://evil.example]y[/link]", "\x1b[31mred\x1b[0m",
           "\x1b]0;title\x07", "\x1b]8;;http://e\x1b\\z\x1b]8;;\x1b\\", "a\x00b\x08c\x7fd\x9be", "\u202eevil"]


@pytest.mark.parametrize("value", HOSTILE)
def test_clean_leaves_no_control_characters(value: str) -> None:
    """No C0/C1 control, DEL or bidi override survives ``clean``; printable text is kept."""
    out = clean(value)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch == "\u202e" for ch in out)
    assert out.replace("\ufffd", "").strip() != ""


@pytest.mark.parametrize("value", HOSTILE)
def test_plain_renders_markup_literally(value: str) -> None:
    """``plain`` never parses markup: the brackets reach the terminal as text, with no escape sequences."""
    console = Console(record=True, width=200, force_terminal=True, color_system="truecolor")
    console.print(plain(value))
    rendered = console.export_text(styles=False)
    assert "[" not in value or "[" in rendered
    assert "\x1b" not in rendered and "\x07" not in rendered
    assert isinstance(plain(value), Text) and plain(value).spans == []


def test_ascii_column_shows_only_printable_ascii() -> None:
    """Every byte outside 0x20–0x7e is a dot in the hex view's ASCII column."""
    shown = "".join(ascii_byte(b) for b in range(256))
    assert shown[0x41] == "A" and shown[0x1B] == "." and shown[0x7F] == "." and shown[0x9B] == "."
    assert all(0x20 <= ord(ch) < 0x7F for ch in shown)


@pytest.mark.parametrize(("mode", "expected"), [
    ("relative", "1.500000"), ("delta", "0.250000"), ("absolute", "22:13:21.500000"),
])
def test_time_formats(mode: str, expected: str) -> None:
    """Relative to the first packet, delta to the previous row shown, absolute in UTC with microseconds."""
    first = 1_700_000_000 * 10**9
    assert C.format_time(first + 1_500_000_000, mode, first_ns=first, prev_ns=first + 1_250_000_000) == expected


@pytest.mark.parametrize(("encap", "vni", "label"), [(0, -1, "–"), (1, 1, "VXLAN 1"), (3, -1, "IPIP"),
                                                      (2, 4096, "Geneve 4096")])
def test_encap_label(encap: int, vni: int, label: str) -> None:
    assert C.encap_label(encap, vni) == label


@pytest.mark.parametrize("width", [80, 120, 200])
def test_columns_fit_the_terminal(width: int) -> None:
    """The columns plus separators never exceed the terminal width (Info takes what is left)."""
    w = C.ColumnWidths.fit(width, 1_000_000)
    used = 2 + w.no + 1 + w.time + 1 + w.point + 1 + w.conv + 1 + w.proto + 1 + w.encap + 1 + w.info + 1 + 1
    assert used <= width and w.info >= 0


def test_keymap_file_is_read(tmp_path) -> None:
    """A YAML mapping of binding id to keys is the keymap; lists of keys are joined."""
    path = tmp_path / "keymap.yaml"
    path.write_text("list.down: ctrl+n\napp.filter: [slash, ctrl+f]\n")
    assert load_keymap(path) == ({"list.down": "ctrl+n", "app.filter": "slash,ctrl+f"}, None)


@pytest.mark.parametrize("content", ["[unclosed", "- a\n- b\n", "list.down: 3\n", "a: &x [*x]\n"])
def test_bad_keymap_is_reported_and_ignored(tmp_path, content: str) -> None:
    """A keymap that is not a mapping of id to keys is ignored with a message naming the file."""
    path = tmp_path / "keymap.yaml"
    path.write_text(content)
    keymap, problem = load_keymap(path)
    assert keymap == {} and problem and str(path) in problem


def test_missing_keymap_is_empty(tmp_path) -> None:
    assert load_keymap(tmp_path / "absent.yaml") == ({}, None)


def test_scapy_is_imported_lazily() -> None:
    """Starting the TUI imports no scapy: only the layers pane's dissection (in a worker) loads it."""
    import subprocess
    import sys

    code = ("import sys, tracer.cli, tracer.commands.open, tracer.ui.app; tracer.ui.app.create_app(['x.pcap']); "
            "print(any(m.split('.')[0] == 'scapy' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_open_resolves_files_points_and_the_demo(tmp_path) -> None:
    """``tracer open`` takes FILE@POINT names, rejects missing files in one line, and finds the bundled demo."""
    import argparse

    from tracer.commands.open import demo_dir, resolve
    from tracer.errors import TracerError

    capture = tmp_path / "a.pcap"
    capture.write_bytes(b"")
    args = argparse.Namespace(files=[f"{capture}@node1/eth0"], cluster=None)
    assert resolve(args) == ([f"{capture}@node1/eth0"], [])
    with pytest.raises(TracerError, match="no such file"):
        resolve(argparse.Namespace(files=[str(tmp_path / "missing.pcap")], cluster=None))
    demo = demo_dir()
    if demo is None:
        pytest.skip("the bundled demo is not in this checkout")
    files, cluster = resolve(argparse.Namespace(files=[], cluster=None))
    assert files and all(f.startswith(str(demo)) for f in files)
    assert cluster == [str(demo / "cluster.yaml")]


@pytest.mark.parametrize(("src", "dst", "width"), [
    ("python/tomcat-8tqr4vzfqx-vzfqx:48812", "linux/tomcat-ccxwgt64rl-t64rl:8080", 38),
    ("10.244.1.9:41000", "linux/tomcat-ccxwgt64rl-t64rl:8080", 30),
    ("a:1", "b:2", 38),
])
def test_conversation_fits_and_keeps_both_ends(src: str, dst: str, width: int) -> None:
    """Long pod names are cut in the middle: the text fits and both ports and name starts survive."""
    text = C.conversation(src, dst, width)
    assert len(text) <= width
    left, right = text.split(" → ")
    assert left.endswith(src.rsplit(":", 1)[1]) and right.endswith(dst.rsplit(":", 1)[1])
    assert left[:4] == src[:4] and right[:4] == dst[:4]


def test_every_binding_has_an_id_and_a_tooltip() -> None:
    """Each binding of the app, its panes and screens can be remapped by id and explains itself."""
    from textual.binding import Binding

    from tracer.ui.app import TracerApp
    from tracer.ui.flows_screen import FlowsScreen
    from tracer.ui.help_screen import HelpScreen
    from tracer.ui.layer_tree import LayerTree
    from tracer.ui.packet_list import PacketList
    from tracer.ui.prompt_bar import PromptBar
    from tracer.ui.reach_screen import ReachScreen

    bindings = [b for cls in (TracerApp, PacketList, LayerTree, PromptBar, FlowsScreen, ReachScreen, HelpScreen)
                for b in cls.BINDINGS]
    assert all(isinstance(b, Binding) and b.id and b.tooltip for b in bindings), bindings
    ids = [b.id for b in bindings]
    assert len(ids) == len(set(ids)), "binding ids must be unique"


@pytest.mark.parametrize("ts_ns", [0, -1, 2**63 - 1, -(2**63)])
@pytest.mark.parametrize("mode", ["relative", "absolute", "delta"])
def test_time_never_raises_on_extreme_timestamps(ts_ns: int, mode: str) -> None:
    """Timestamps come from the capture (hostile): every format renders something for every int64."""
    assert C.format_time(ts_ns, mode, first_ns=0, prev_ns=0)
