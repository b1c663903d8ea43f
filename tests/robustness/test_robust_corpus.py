"""Every public capture, and truncations of each, pass through tracer without a traceback and lose nothing.

Truncations are cut at every record/block boundary and at a few seeded random offsets, found by the
independent walker in ``capwalk`` (not by tracer's readers). Where the walker says the structure before the
cut is sound, tracer must yield exactly the complete packet records before the cut; elsewhere (corrupt
tails, broken pcapng sections) it must still answer with rows or exactly one error line, never a traceback.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import re
from pathlib import Path

import pytest

from .capwalk import walk
from .runner import Hang, need_command, record_figure, run_cli, time_bound

RANDOM_CUTS = 4  # per file, on top of the boundaries
CLI_BOUNDARIES = 8  # boundaries per file run through the CLI (in-process, ~20 ms each); the loader takes all
SEED = 20261126


def corpus_files(public: Path) -> list[Path]:
    return sorted(p for p in public.rglob("*") if p.is_file() and p.suffix != ".md")


def manifest_counts(public: Path) -> dict[str, int]:
    """File -> packets tshark read, from the MANIFEST tables (column 'Pkts')."""
    counts = {}
    for line in (public / "MANIFEST.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 8 and re.fullmatch(r"`[^`]+`", cells[1]) and cells[6].replace(",", "").isdigit():
            counts[cells[1].strip("`")] = int(cells[6].replace(",", ""))
    return counts


def counts_are_defined(name: str, kind: str) -> bool:
    """Whether "packets before the cut" is well defined for this file's sound prefix.

    A classic pcap's records are self-delimiting, so its sound prefix always has a definite packet count,
    even in a deliberately corrupt file. A corrupt pcapng (bad version, packet before any IDB, impossible
    tsresol) may be refused as a whole, so only "no traceback" is asserted for those.
    """
    return not name.startswith("corrupt-") or kind.endswith("pcap")


def cuts_for(data: bytes, boundaries: list[int], rng: random.Random, *, cap: int | None = None) -> list[int]:
    """Cut offsets: the ends, a few offsets inside the first headers, random offsets, and the boundaries
    (all of them, or ``cap`` of them evenly spread, always including the first and last three)."""
    cuts = {0, len(data)}
    if cap is None or len(boundaries) <= cap:
        cuts.update(boundaries)
    else:
        step = (len(boundaries) - 1) / (cap - 1)
        cuts.update(boundaries[round(k * step)] for k in range(cap))
        cuts.update(boundaries[:3] + boundaries[-3:])
    # A few cuts inside headers, where a reader is most tempted to trust a half-read length.
    for b in boundaries[:2]:
        cuts.update(c for c in (b + 1, b + 8) if c < len(data))
    if len(data) > 1:
        cuts.update(rng.randrange(1, len(data)) for _ in range(RANDOM_CUTS))
    return sorted(cuts)


def truncations(public: Path, tmp_path: Path, *, cap: int | None):
    """Yield (name, walk, cut, path of the cut file) for every public capture and every chosen cut."""
    rng = random.Random(SEED)
    for path in corpus_files(public):
        name = str(path.relative_to(public))
        w = walk(path.read_bytes())
        gz = w.kind.startswith("gzip+")
        target = tmp_path / path.name
        for cut in cuts_for(w.data, w.boundaries, rng, cap=cap):
            piece = w.data[:cut]
            # A gzip file is cut inside its decompressed content and compressed again, so the gzip reader sees
            # a well-formed stream around a truncated capture (cuts in the raw stream are tested separately).
            target.write_bytes(gzip.compress(piece, mtime=0) if gz else piece)
            yield name, w, cut, target


def jsonl_rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def files(public_captures: Path) -> list[Path]:
    return corpus_files(public_captures)


def test_walker_agrees_with_manifest(public_captures: Path) -> None:
    """The independent walker counts what tshark counted (minus pcapng Custom Blocks, which are not packets)."""
    counts = manifest_counts(public_captures)
    checked = 0
    for path in corpus_files(public_captures):
        name = str(path.relative_to(public_captures))
        if name.startswith("corrupt-"):
            continue
        w = walk(path.read_bytes())
        assert w.anomaly is None, (name, w.anomaly)
        assert len(w.packet_ends) + w.custom_blocks == counts[name], name
        checked += 1
    assert checked >= 80


def test_show_every_public_capture(public_captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tracer show --format jsonl` on each public file: rows or one error line; sound files give every packet."""
    need_command("show")
    problems = []
    record_figure("files_tried", len(corpus_files(public_captures)))
    for path in corpus_files(public_captures):
        name = str(path.relative_to(public_captures))
        w = walk(path.read_bytes())
        result = run_cli(["show", "--format", "jsonl", str(path)], capsys)
        if why := result.problem():
            problems.append(f"{name}: {why}")
            continue
        rows = jsonl_rows(result.out) if result.code == 0 else []
        if counts_are_defined(name, w.kind) and w.anomaly is None:
            if len(rows) != len(w.packet_ends):
                problems.append(f"{name}: {len(rows)} rows, file holds {len(w.packet_ends)} packets")
        elif counts_are_defined(name, w.kind) and len(rows) < len(w.packet_ends):
            problems.append(f"{name}: lost packets before the damage: {len(rows)} < {len(w.packet_ends)}")
    assert not problems, "\n".join(problems)


def test_show_truncations(public_captures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tracer show` on each file cut at boundaries and random offsets: exactly the complete packets before the cut.

    Up to ``CLI_BOUNDARIES`` boundaries per file go through the CLI (the loader test below takes every one).
    """
    need_command("show")
    problems: list[str] = []
    tried = 0
    for name, w, cut, target in truncations(public_captures, tmp_path, cap=CLI_BOUNDARIES):
        result = run_cli(["show", "--format", "jsonl", str(target)], capsys)
        tried += 1
        if why := result.problem():
            problems.append(f"{name} cut at {cut}: {why}")
            continue
        if cut <= w.valid_until and counts_are_defined(name, w.kind):
            expected = w.packets_before(cut)
            got = len(jsonl_rows(result.out)) if result.code == 0 else 0
            if expected and result.code != 0:
                problems.append(f"{name} cut at {cut}: exit {result.code}, but {expected} packets precede it")
            elif got != expected:
                problems.append(f"{name} cut at {cut}: {got} rows, expected {expected}")
    record_figure("cli_truncations_tried", tried)
    assert tried > 500
    assert not problems, f"{len(problems)} of {tried} truncations fail:\n" + "\n".join(problems[:40])


def test_tui_loader_truncations(public_captures: Path, tmp_path: Path) -> None:
    """The TUI's loading path (IndexBuilder in batches, then painting rows) on every boundary cut.

    Same expectations as ``tracer show``: the complete packets before the cut, or a one-line TracerError.
    """
    if importlib.util.find_spec("tracer.ui.app") is None:
        pytest.skip("tracer.ui.app is not written yet")
    from tracer.capture.index import IndexBuilder
    from tracer.errors import TracerError
    try:  # the app's loader: its own module since the TUI was split into mixins
        from tracer.ui.loading import FIRST_BATCH, _iter_progress
    except ImportError:
        from tracer.ui.app import FIRST_BATCH, _iter_progress
    from tracer.ui.session import Session

    problems: list[str] = []
    tried = 0
    for name, w, cut, target in truncations(public_captures, tmp_path, cap=None):
        tried += 1
        try:
            with time_bound(20):
                builder = IndexBuilder([str(target)], vxlan_ports=(4789, 8472))
                for _ in _iter_progress(builder, FIRST_BATCH):
                    pass
                index = builder.finish()
                session = Session(paths=[str(target)])
                session.index, session.count = index, len(index)
                # Paint the rows a user sees first and the ones next to the cut (where damage would show);
                # every row of every cut would be quadratic in the file's packets.
                for pos in {*range(min(3, len(index))), *range(max(0, len(index) - 3), len(index))}:
                    session.cells(pos)
            got: int | None = len(index)
        except TracerError as exc:
            if "\n" in str(exc).strip():
                problems.append(f"{name} cut at {cut}: error is not one line: {exc!r}")
            got = None
        except (Exception, Hang) as exc:  # noqa: BLE001 - collected, reported below
            problems.append(f"{name} cut at {cut}: {type(exc).__name__}: {exc}")
            continue
        if cut <= w.valid_until and counts_are_defined(name, w.kind):
            expected = w.packets_before(cut)
            if (got or 0) != expected:
                problems.append(f"{name} cut at {cut}: loader gave {got}, expected {expected}")
    record_figure("truncations_tried", tried)
    assert tried > 3000
    assert not problems, f"{len(problems)} of {tried} truncations fail:\n" + "\n".join(problems[:40])


def test_show_truncated_gzip_stream(public_captures: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A gzip capture cut inside the compressed stream keeps every packet decompressible before the cut."""
    need_command("show")
    problems = []
    for path in corpus_files(public_captures):
        raw = path.read_bytes()
        if raw[:2] != b"\x1f\x8b":
            continue
        for cut in sorted({10, 11, 30, len(raw) // 3, len(raw) // 2, len(raw) - 9, len(raw) - 1}):
            target = tmp_path / f"cut-{cut}-{path.name}"
            target.write_bytes(raw[:cut])
            expected = walk(raw[:cut]).packets_before(10**12)
            result = run_cli(["show", "--format", "jsonl", str(target)], capsys)
            if why := result.problem():
                problems.append(f"{path.name} cut at {cut}: {why}")
            elif (len(jsonl_rows(result.out)) if result.code == 0 else 0) != expected:
                problems.append(f"{path.name} cut at {cut}: {len(jsonl_rows(result.out))} rows, expected {expected}")
    assert not problems, "\n".join(problems)


def test_stats_every_public_capture(public_captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tracer stats --json` on each public file: a packet count equal to the file's, or one error line."""
    need_command("stats")
    problems = []
    for path in corpus_files(public_captures):
        name = str(path.relative_to(public_captures))
        w = walk(path.read_bytes())
        result = run_cli(["stats", "--json", str(path)], capsys)
        if why := result.problem():
            problems.append(f"{name}: {why}")
            continue
        if result.code == 0 and counts_are_defined(name, w.kind) and w.anomaly is None:
            packets = json.loads(result.out).get("packets")
            if packets != len(w.packet_ends):
                problems.append(f"{name}: stats says {packets} packets, file holds {len(w.packet_ends)}")
    assert not problems, "\n".join(problems)


def test_path_every_public_capture(public_captures: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`tracer path --packet N --json` on each file and a random truncation: JSON or one error line."""
    need_command("path")
    rng = random.Random(SEED + 1)
    problems = []
    for path in corpus_files(public_captures):
        name = str(path.relative_to(public_captures))
        raw = path.read_bytes()
        w = walk(raw)
        targets = [(path, len(w.packet_ends))]
        if not w.kind.startswith("gzip") and len(raw) > 1:
            cut = rng.randrange(1, len(raw))
            piece = tmp_path / f"cut-{path.name}"
            piece.write_bytes(raw[:cut])
            targets.append((piece, w.packets_before(cut) if cut <= w.valid_until else 0))
        for target, count in targets:
            for no in {1, max(count, 1), count + 1}:
                result = run_cli(["path", str(target), "--packet", str(no), "--json"], capsys)
                if why := result.problem():
                    problems.append(f"{name} ({target.name}) --packet {no}: {why}")
                elif result.code == 0:
                    try:
                        json.loads(result.out)
                    except ValueError as exc:
                        problems.append(f"{name} --packet {no}: output is not JSON ({exc})")
    assert not problems, "\n".join(problems)


def test_flows_every_public_capture(public_captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tracer flows --json` on each public file: JSON or one error line."""
    need_command("flows")
    problems = []
    for path in corpus_files(public_captures):
        result = run_cli(["flows", str(path), "--json"], capsys)
        if why := result.problem():
            problems.append(f"{path.name}: {why}")
    assert not problems, "\n".join(problems)


DISSECT_PER_FILE = 20


def test_dissect_public_packets(public_captures: Path) -> None:
    """The layers pane's dissection (scapy) of the first packets of every public file: no exception, plain-string
    fields with spans inside the frame (tracer.fuzz.targets.check_dissect)."""
    if importlib.util.find_spec("tracer.decode.dissect") is None:
        pytest.skip("tracer.decode.dissect is not written yet")
    from tracer.capture.index import load_index
    from tracer.errors import TracerError
    from tracer.fuzz.targets import check_dissect

    problems = []
    done = 0
    for path in corpus_files(public_captures):
        try:
            index = load_index([str(path)])
        except TracerError:
            continue
        for row in range(min(len(index), DISSECT_PER_FILE)):
            linktype = index.sources[int(index["source"][row])].linktype
            try:
                with time_bound(10):
                    check_dissect(index.frame(row), int(linktype))
                done += 1
            except (Exception, Hang) as exc:  # noqa: BLE001 - collected below
                problems.append(f"{path.name} packet {row + 1}: {type(exc).__name__}: {exc}")
    record_figure("packets_dissected", done)
    assert done > 700
    assert not problems, "\n".join(problems[:20])


def test_show_truncated_stdin(public_captures: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`tracer show -` reading a capture cut mid-record from a pipe (the `ssh node tcpdump -w - |` case): the
    complete packets, one warning line at most, no traceback."""
    import os
    import threading

    need_command("show")
    problems = []
    rng = random.Random(SEED + 2)
    for name in ("vxlan-4789-http-vni1-zeek.pcap", "pcapng-ens33-docker0-tls-gopacket.pcapng",
                 "sll-tcp-http-426pkts-suricata.pcap", "corrupt-garbage-after-record6-suricata.pcap"):
        raw = (public_captures / name).read_bytes()
        w = walk(raw)
        for cut in (w.valid_until, rng.randrange(25, w.valid_until), len(raw)):
            read_fd, write_fd = os.pipe()

            def feed(data: bytes = raw[:cut], fd: int = write_fd) -> None:
                with os.fdopen(fd, "wb") as pipe:
                    pipe.write(data)

            writer = threading.Thread(target=feed)
            writer.start()
            with os.fdopen(read_fd, "r") as stdin:
                monkeypatch.setattr("sys.stdin", stdin)
                result = run_cli(["show", "--format", "jsonl", "-"], capsys)
            writer.join()
            expected = w.packets_before(min(cut, w.valid_until))
            if why := result.problem():
                problems.append(f"{name} cut at {cut} on stdin: {why}")
            elif (result.code != 0 and expected) or len(jsonl_rows(result.out)) != expected:
                problems.append(f"{name} cut at {cut} on stdin: exit {result.code}, {len(jsonl_rows(result.out))} "
                                f"rows, expected {expected}")
    assert not problems, "\n".join(problems)


def test_corrupt_file_beside_a_good_one(public_captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tracer show GOOD CORRUPT` keeps every packet of GOOD (plus what CORRUPT holds before its damage) and warns
    once per damaged file: one unreadable file must not cost the others' packets."""
    need_command("show")
    good = public_captures / "vxlan-4789-http-vni1-zeek.pcap"
    good_packets = len(walk(good.read_bytes()).packet_ends)
    problems = []
    for bad in sorted(public_captures.glob("corrupt-*")):
        w = walk(bad.read_bytes())
        result = run_cli(["show", "--format", "jsonl", str(good), str(bad)], capsys)
        rows = jsonl_rows(result.out) if result.code == 0 else []
        files = [r["file"] for r in rows]
        if why := result.problem():
            problems.append(f"{bad.name}: {why}")
        elif result.code != 0 or files.count(str(good)) != good_packets:
            problems.append(f"{bad.name}: exit {result.code}, {files.count(str(good))} of {good_packets} packets "
                            f"of the good file kept; stderr {result.err.strip()[-200:]!r}")
        elif w.kind == "pcap" and files.count(str(bad)) != w.packets_before(w.valid_until):
            problems.append(f"{bad.name}: {files.count(str(bad))} of its {w.packets_before(w.valid_until)} "
                            "readable packets kept")
        elif len(result.err.strip().splitlines()) > 1:
            problems.append(f"{bad.name}: more than one warning line: {result.err!r}")
    assert not problems, "\n".join(problems)
