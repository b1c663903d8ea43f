"""Command-line entry point: wires subcommands from ``tracer.commands`` and turns errors into one line.

Each subcommand lives in ``tracer/commands/<name>.py`` and provides ``register(subparsers)``, which adds its
parser and sets ``func`` (called with the parsed ``args``, returning the exit status). Modules are imported
only to register their parser, so they keep heavy imports (numpy, scapy, textual) inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tracer import __version__
from tracer.errors import TracerError, one_line

# The order here is the order in ``tracer --help``.
COMMANDS = ("open", "show", "stats", "path", "flows", "reach", "policy", "live", "ifaces", "lab", "dissect")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracer",
        description="Where did my packet die, and which policy or hop killed it? "
        "A packet-trace explorer for flannel and Calico.",
    )
    parser.add_argument("--version", action="version", version=f"tracer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tracer.commands.{name}")
        except ModuleNotFoundError as exc:
            # A command whose module is not written yet is simply absent; any other missing module is a bug.
            if exc.name == f"tracer.commands.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        if args.command is None and "open" in parser._subparsers._group_actions[0].choices:  # noqa: SLF001
            # Bare `tracer` opens the bundled demo, like `tracer open`.
            args = parser.parse_args(["open", *(argv or [])])
        else:
            parser.print_help()
            return 2
    try:
        return int(args.func(args) or 0)
    except TracerError as exc:
        print(f"tracer: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `tracer show … | head`: the reader went away; that is not an error worth a message.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback, unless asked
        if os.environ.get("TRACER_DEBUG"):
            raise
        print(f"tracer: internal error: {type(exc).__name__}: {one_line(str(exc))} (set TRACER_DEBUG=1 for details)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
