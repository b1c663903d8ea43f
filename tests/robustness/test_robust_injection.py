"""Terminal and markup injection: hostile strings from captures and cluster dumps stay inert text.

Captures are built here: packets with scapy (DNS names, TXT answers, HTTP request lines and headers, VXLAN-wrapped
HTTP, UDP/ICMP payloads), the pcapng container with ``tracer.fuzz.build`` (interface names and descriptions, packet
comments). Every string carries Rich markup, ANSI CSI and OSC sequences (title, hyperlink, clipboard write),
C0/C1 controls and a bidi override. The rule: nothing a capture or a dump says reaches the terminal as a
control byte (``tracer show --format table``, ``stats``, ``path``, ``flows``, ``policy``, and every pane of the TUI),
and markup is shown literally.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tracer.fuzz import build as B

from .runner import commands, run_cli

# C0 controls except newline, DEL, C1 controls, and the bidi overrides/isolates that reorder what is read.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HOSTILE = ("[bold red]PWN[/bold red][link=http://evil.example]click[/link]:skull:"
           "\x1b[31mRED\x1b[0m\x1b[2J\x1b]0;title\x07\x1b]8;;http://evil.example\x1b\\osc8\x1b]8;;\x1b\\"
           "\x1b]52;c;cHduZWQ=\x07\x07\x08\x7f\u009b31m\u202etxt.exe\r")


def _frames() -> list[bytes]:
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN

    raw = HOSTILE.encode("utf-8")
    # DNS labels are at most 63 bytes: split the hostile string into labels.
    qname = b".".join(raw[i:i + 60] for i in range(0, len(raw), 60)) + b".evil.example."
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    http = (b"GET /" + raw + b" HTTP/1.1\r\nHost: " + raw + b"\r\nUser-Agent: " + raw + b"\r\nX-" + raw + b": 1\r\n\r\n")
    inner = (Ether() / IP(src="10.244.1.3", dst="10.244.2.5") / TCP(sport=40000, dport=80, flags="PA") / http)
    return [bytes(f) for f in (
        eth / IP(src="10.244.1.3", dst="10.96.0.10") / UDP(sport=5353, dport=53) / DNS(rd=1, qd=DNSQR(qname=qname)),
        eth / IP(src="10.96.0.10", dst="10.244.1.3") / UDP(sport=53, dport=5353)
        / DNS(qr=1, qd=DNSQR(qname=qname), an=DNSRR(rrname=qname, type="TXT", rdata=[raw[:200]])),
        eth / IP(src="10.244.1.3", dst="10.244.2.5") / TCP(sport=40000, dport=80, flags="PA") / http,
        eth / IP(src="192.168.2.100", dst="192.168.2.101") / UDP(sport=50000, dport=8472) / VXLAN(vni=1) / inner,
        eth / IP(src="10.244.1.3", dst="10.244.2.5") / UDP(sport=1, dport=9999) / raw,
        eth / IP(src="10.244.1.3", dst="10.244.2.5") / ICMP() / raw,
    )]


def write_hostile_capture(directory: Path) -> Path:
    """A pcapng whose interface names/descriptions, packet comments and packet bytes are all hostile."""
    path = directory / "hostile.pcapng"
    frames = _frames()
    text = HOSTILE.encode("utf-8")
    names = [("node-a/" + HOSTILE).encode(), ("pod:default/" + HOSTILE).encode(), text]
    blocks = [B.shb(options=[B.Option(1, text), B.Option(2, text), B.Option(3, text), B.Option(4, text)])]
    for name in names:
        blocks.append(B.idb(1, name=name, options=[B.Option(3, text), B.Option(1, text)]))
    for k, frame in enumerate(frames * 2):
        record = B.Record(frame, ts_sec=1_700_000_000 + k, interface=k % len(names))
        blocks.append(B.epb(record, options=[B.Option(1, text)]))
    path.write_bytes(b"".join(blocks))
    return path


def write_hostile_cluster(directory: Path) -> Path:
    """A cluster dump whose label values, annotations and one policy's names carry the hostile string."""
    import json

    def pod(name: str, ip: str, node: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "labels": {"app": name, "x": HOSTILE},
                             "annotations": {"note": HOSTILE}},
                "spec": {"nodeName": node, "containers": [{"name": HOSTILE, "ports": [
                    {"containerPort": 80, "name": "http"}]}]},
                "status": {"podIP": ip, "phase": "Running"}}

    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": {"x": HOSTILE}}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a", "labels": {"x": HOSTILE}},
         "spec": {"podCIDR": "10.244.1.0/24"}, "status": {"addresses": [{"type": "InternalIP",
                                                                          "address": "192.168.2.100"}]}},
        pod("client", "10.244.1.3", "node-a"), pod("server", "10.244.2.5", "node-b"),
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "deny", "namespace": "default", "annotations": {"n": HOSTILE}},
         "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"x": HOSTILE}}}],
                               "ports": [{"port": 80}]}]}},
        {"apiVersion": "v1", "kind": HOSTILE, "metadata": {"name": "weird"}},
    ]
    path = directory / "hostile-cluster.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


# `tracer policy matrix` separates its columns with tabs, as the upstream e2e tests print reachability; every
# escape function maps a tab *from the input* to \x09, so a tab in stdout is tracer's own.
CONTROL_BUT_TAB = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _controls(text: str, pattern: re.Pattern = CONTROL) -> list[str]:
    return sorted({repr(m.group()) for m in pattern.finditer(text)})


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    return write_hostile_capture(tmp_path), write_hostile_cluster(tmp_path)


def test_walker_reads_the_hostile_capture(hostile) -> None:
    """The hostile capture is well formed (so the tests below judge display, not parsing)."""
    from .capwalk import walk

    w = walk(hostile[0].read_bytes())
    assert w.anomaly is None and len(w.packet_ends) == 12


CLI_CASES = [
    ("show", ["show", "--format", "table", "{cap}"]),
    ("show", ["show", "--format", "table", "--cluster", "{cluster}", "{cap}"]),
    ("show", ["show", "--format", "csv", "{cap}"]),
    ("stats", ["stats", "{cap}"]),
    ("path", ["path", "--packet", "3", "{cap}"]),
    ("path", ["path", "--packet", "4", "--cluster", "{cluster}", "{cap}"]),
    ("flows", ["flows", "{cap}"]),
    ("flows", ["flows", "--cluster", "{cluster}", "{cap}"]),
    ("reach", ["reach", "--cluster", "{cluster}", "{cap}"]),
    ("policy", ["policy", "matrix", "--cluster", "{cluster}"]),
    ("policy", ["policy", "check", "--cluster", "{cluster}", "--from", "default/client", "--to", "default/server",
                "--port", "80"]),
    ("policy", ["policy", "explain", "--cluster", "{cluster}", "default/deny"]),
]


@pytest.mark.parametrize("command, argv", CLI_CASES, ids=[" ".join(a[:2]) + ("+cluster" if "{cluster}" in a[2:]
                                                                                else "") for _, a in CLI_CASES])
def test_cli_output_has_no_control_bytes(hostile, capsys, command: str, argv: list[str]) -> None:
    """Text output (stdout and stderr) of every command holds no control byte but newline, whatever the input."""
    if command not in commands():
        pytest.skip(f"`tracer {command}` is not implemented yet")
    cap, cluster = hostile
    result = run_cli([a.format(cap=cap, cluster=cluster) for a in argv], capsys)
    assert result.problem() is None, result.problem()
    stdout_rule = CONTROL_BUT_TAB if argv[:2] == ["policy", "matrix"] else CONTROL
    assert not _controls(result.out, stdout_rule), f"stdout carries {_controls(result.out, stdout_rule)}"
    assert not _controls(result.err), f"stderr carries {_controls(result.err)}: {result.err[-300:]!r}"
    if command == "show" and result.code == 0 and "csv" not in argv:
        assert len(result.out.splitlines()) >= 12, "expected a row per packet"


def test_show_table_keeps_markup_literal(hostile, capsys) -> None:
    """The markup in an HTTP request line reaches the table as literal text (escaped, not interpreted)."""
    if "show" not in commands():
        pytest.skip("`tracer show` is not implemented yet")
    result = run_cli(["show", "--format", "table", str(hostile[0])], capsys)
    assert result.code == 0, result.err
    assert "[bold red]" in result.out or "[bold red]" in result.out.replace("\\[", "["), result.out[-500:]


# --- the TUI -------------------------------------------------------------------------------------------

async def _settle(app, pilot) -> None:
    for _ in range(60):
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not getattr(app.session, "loading", False) and not any(w.is_running for w in app.workers):
            break
    await pilot.pause()


def _screen(app) -> str:
    # What the compositor paints (every visible widget, every screen layer), one line per terminal row.
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())  # noqa: SLF001


ZOOMED = (3,)  # the VXLAN-wrapped HTTP request (most layers): every pane zoomed on it


def test_every_tui_pane_shows_hostile_strings_inert(hostile) -> None:
    """Walk every packet and every pane/screen of the TUI: no control character is ever painted, markup is
    shown literally, and the app neither crashes nor changes its title."""
    pytest.importorskip("tracer.ui.app", reason="the TUI is not written yet")
    from tracer.ui.app import create_app

    cap, cluster = hostile
    app = create_app([str(cap)], cluster=[str(cluster)])
    seen: list[tuple[str, str]] = []

    async def scenario() -> None:
        async with app.run_test(size=(200, 60)) as pilot:
            await _settle(app, pilot)
            title = app.title
            seen.append(("start", _screen(app)))
            for k in range(12):  # every packet: list row, layers tree, hex/ASCII, hop ladder, verdict
                seen.append((f"packet {k + 1}", _screen(app)))
                if k in ZOOMED:
                    for pane in range(5):  # focus each pane in turn and zoom it (its whole text shows)
                        await pilot.press("tab", "z")
                        await pilot.pause()
                        seen.append((f"packet {k + 1} pane {pane} zoomed", _screen(app)))
                        await pilot.press("z")
                await pilot.press("down")
                await app.workers.wait_for_complete()
                await pilot.pause()
            for key in ("F", "r", "question_mark"):  # flows screen, reach screen, help
                await pilot.press(key)
                await _settle(app, pilot)
                seen.append((f"screen {key}", _screen(app)))
                await pilot.press("escape")
                await _settle(app, pilot)
            assert app.title == title, f"the title changed to {app.title!r}"
            svg = app.export_screenshot()
            assert "\x1b" not in svg and "\x07" not in svg

    asyncio.run(scenario())
    bad = [(where, _controls(text)) for where, text in seen if _controls(text)]
    assert not bad, f"control characters painted: {bad[:5]}"
    assert any("[bold red]" in text for _, text in seen), "the markup never showed literally"


EVIL_NAMES = ["x\x1b]52;c;cHduZWQ=\x07y", "w\x1b[2Jz", "two\nlines", "bidi\u202etxt", "bell\x07"]


def test_hostile_file_names_in_errors_and_warnings(tmp_path: Path, public_captures: Path, capsys) -> None:
    """File names are attacker-controlled too (`tracer show captures/*` over files copied off a node): errors and
    warnings that name them hold no control character, and stay one line per file."""
    import shutil

    corrupt = public_captures / "corrupt-record-huge-caplen-suricata.pcap"
    invalid = public_captures / "corrupt-pcap-invalid-version-libpcap.pcap"
    problems = []
    for k, evil in enumerate(EVIL_NAMES):
        d = tmp_path / str(k)
        d.mkdir()
        damaged, refused = d / f"{evil}.pcap", d / f"{evil}-v1.pcap"
        shutil.copy(corrupt, damaged)
        shutil.copy(invalid, refused)
        runs = [["show", "--format", "jsonl", str(damaged)],                 # warning: kept 1 packet
                ["show", "--format", "jsonl", str(refused)],                 # error: nothing readable
                ["show", "--format", "jsonl", str(damaged), str(refused)],   # two warnings
                ["show", str(d / f"{evil}-missing.pcap")],                   # error: no such file
                ["stats", str(damaged)],
                ["policy", "check", "--cluster", str(d / f"{evil}.yaml"), "--from", "a/b", "--to", "c/d", "--port", "80"]]
        for argv in runs:
            if argv[0] not in commands():
                continue
            result = run_cli(argv, capsys)
            files = sum(1 for a in argv if evil in a)
            lines = [line for line in result.err.splitlines() if line.strip()]
            if result.crash:
                problems.append(f"{evil!r} {argv[0]}: {result.problem()}")
            elif _controls(result.err):
                problems.append(f"{evil!r} {argv[0]}: stderr carries {_controls(result.err)}")
            elif len(lines) > files:
                problems.append(f"{evil!r} {argv[0]}: {len(lines)} stderr lines for {files} file(s): {lines!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="needs root to create a network namespace")
def test_ifaces_with_hostile_interface_names(capsys) -> None:
    """Interface names may hold any byte but '/', ':' and blanks: `tracer ifaces` prints them inert."""
    import os
    import subprocess

    if "ifaces" not in commands():
        pytest.skip("`tracer ifaces` is not implemented yet")
    ns = f"trrobust{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "e\x1b[2Jx", "type", "veth", "peer", "name", "b\u202ex\x07"],
                       check=True)
        for argv in (["ifaces", "--netns", ns], ["ifaces", "--netns", ns, "--json"]):
            result = run_cli(argv, capsys)
            assert result.problem() is None, result.problem()
            assert result.code == 0, result.err
            assert not _controls(result.out + result.err), _controls(result.out + result.err)
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="needs root to create a network namespace and capture")
def test_live_with_hostile_interface_names(tmp_path: Path) -> None:
    """`tracer live` on interfaces named with escape sequences: its stderr (spool, per-point summary) is inert."""
    import os
    import subprocess
    import sys

    if "live" not in commands():
        pytest.skip("`tracer live` is not implemented yet")
    ns = f"trrlive{os.getpid()}"
    names = ["e\x1b[2Jx", "b\u202ex\x07"]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", names[0], "type", "veth", "peer", "name", names[1]], check=True)
        for name in names:
            subprocess.run(["ip", "-n", ns, "link", "set", name, "up"], check=True)
        proc = subprocess.run([sys.executable, "-m", "tracer", "live", "--netns", ns, "-i", names[0], "-i", names[1],
                               "--duration", "0.5", "--quiet", "--write", str(tmp_path / "live.pcapng")],
                              capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
    assert proc.returncode == 0, proc.stderr
    assert "per point" in proc.stderr
    assert not _controls(proc.stderr), _controls(proc.stderr)


def _pcapng_texts(data: bytes) -> list[str]:
    """Every if_name/if_description/comment option of a little-endian pcapng (what tracer's export writes)."""
    import struct

    texts, pos = [], 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        body = data[pos + 8: pos + blen - 4]
        if btype == 1:  # IDB: link type, reserved, snaplen, then options
            start = 8
        elif btype == 6:  # EPB: interface, timestamp (2), caplen, origlen, padded data, then options
            start = 20 + ((struct.unpack_from("<I", body, 12)[0] + 3) & ~3)
        else:
            start = None
        while start is not None and start + 4 <= len(body):
            code, length = struct.unpack_from("<HH", body, start)
            if code == 0:
                break
            if code in (1, 2, 3):
                texts.append(body[start + 4: start + 4 + length].decode("utf-8", "replace"))
            start += 4 + ((length + 3) & ~3)
        pos += blen
    return texts


def test_export_writes_inert_names(hostile, tmp_path: Path) -> None:
    """The TUI export (`e`) writes interface names, descriptions and comments without control characters: the
    exported file is opened by other tools and terminals."""
    pytest.importorskip("tracer.ui.export", reason="the TUI export is not written yet")
    from tracer.capture.index import load_index
    from tracer.ui.export import export_pcapng

    index = load_index([str(hostile[0])])
    out = tmp_path / "export.pcapng"
    n = export_pcapng(index, range(len(index)), str(out), comment=lambda row: HOSTILE)
    assert n == 12
    texts = _pcapng_texts(out.read_bytes())
    assert len(texts) >= 12 + 3, texts  # a comment per packet, a name per interface
    assert not [t for t in texts if CONTROL.search(t)], [t for t in texts if CONTROL.search(t)][:3]
