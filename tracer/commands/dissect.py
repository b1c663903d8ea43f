"""``tracer dissect FILE... [-n N]... [--filter EXPR] [--limit K] [--format text|json] [--no-hex]``.

The non-interactive twin of the TUI's layers and hex panes: the scapy dissection of chosen packets (numbers as
``tracer show`` prints them, merged order), each layer with its encapsulation level and every field with the
byte span it occupies, then a hex dump. ``json`` is one object per line, for scripts and tests.

Packet bytes are hostile: text output escapes every terminal control character (``\\x1b``) and the hex dump's
ASCII column shows printable ASCII only; JSON escapes as JSON does.
"""

from __future__ import annotations

import argparse
import json
import sys

from tracer.commands.show import add_capture_arguments, vxlan_ports
from tracer.errors import TracerError

DEFAULT_LIMIT = 20
LEVELS = {0: "outer", 1: "inner"}


def _number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a packet number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"packet numbers start at 1, not {value}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dissect", help="print the layers, fields and bytes of chosen packets (the TUI's layers and hex panes)",
        description="Dissect packets with scapy: layers (outer and inner), fields with their byte spans, hex dump.")
    add_capture_arguments(parser)
    parser.add_argument("-n", "--packet", dest="packets", type=_number, action="append", metavar="N",
                        help="packet number as `tracer show` prints it; repeatable (default: every packet)")
    parser.add_argument("--filter", metavar="EXPR", help="only packets matching this display filter")
    parser.add_argument("--limit", type=int, default=None, metavar="K",
                        help=f"at most K packets (default {DEFAULT_LIMIT} unless -n names them; 0 = no limit)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json lines")
    parser.add_argument("--no-hex", dest="hex", action="store_false", help="leave out the hex dump")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tracer.capture.filter import compile_filter
    from tracer.capture.index import load_index
    from tracer.capture.rows import escape_text
    from tracer.decode.dissect import Dissector, hexdump_rows

    flt = compile_filter(args.filter) if args.filter else None  # a bad filter fails before any file is read
    index = load_index(args.files, vxlan_ports=vxlan_ports(args.vxlan_ports))
    total = len(index)
    if args.packets:
        missing = [n for n in args.packets if n > total]
        if missing:
            raise TracerError(f"no packet {missing[0]}: the capture has {total} packets")
        rows = np.array(args.packets, np.int64) - 1
    else:
        rows = np.arange(total, dtype=np.int64)
    if flt is not None:
        rows = rows[flt.mask(index)[rows]]
    limit = args.limit if args.limit is not None else (0 if args.packets else DEFAULT_LIMIT)
    if limit > 0 and len(rows) > limit:
        print(f"tracer: showing the first {limit} of {len(rows)} packets (--limit 0 for all)", file=sys.stderr)
        rows = rows[:limit]

    dissector = Dissector(vxlan_ports=vxlan_ports(args.vxlan_ports), maxsize=4)
    out = sys.stdout
    for row in rows.tolist():
        src = index.sources[int(index["source"][row])]
        frame = index.frame(row)
        d = dissector.get(tuple(args.files), row, frame, int(src.linktype))
        head = {"no": row + 1, "file": src.file, "point": src.point, "linktype": int(src.linktype),
                "len": int(index["origlen"][row]), "caplen": int(index["caplen"][row]), "malformed": d.malformed}
        if args.format == "json":
            obj = dict(head, layers=[
                {"name": lay.name, "offset": lay.offset, "length": lay.length, "level": lay.level,
                 "fields": [{"name": f.name, "value": f.value, "offset": f.offset, "length": f.length}
                            for f in lay.fields]} for lay in d.layers])
            if args.hex:
                obj["hex"] = [list(r) for r in hexdump_rows(frame)]
            out.write(json.dumps(obj) + "\n")
            continue
        where = escape_text(src.point or src.file)
        out.write(f"#{row + 1}  {where}  {head['caplen']} of {head['len']} bytes"
                  f"{'  (malformed)' if d.malformed else ''}\n")
        levels = {lay.level for lay in d.layers}
        level = None
        for lay in d.layers:
            if len(levels) > 1 and lay.level != level:
                level = lay.level
                out.write(f"  -- {LEVELS.get(level, f'inner level {level}')} --\n")
            out.write(f"  {escape_text(lay.name)}  [{lay.offset}:{lay.offset + lay.length}]\n")
            for f in lay.fields:
                out.write(f"      {escape_text(f.name)}: {escape_text(f.value)}  [{f.offset}:{f.offset + f.length}]\n")
        if args.hex:
            for offset, hexes, text in hexdump_rows(frame):
                out.write(f"  {offset}  {hexes:<47}  {text}\n")
        out.write("\n")
    out.flush()
    for warning in index.warnings:
        print(f"tracer: warning: {warning}", file=sys.stderr)
    return 0
