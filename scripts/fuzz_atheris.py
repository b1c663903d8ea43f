#!/usr/bin/env python3
"""Coverage-guided fuzzing of tracer's readers and decoders with atheris (local use, long campaigns).

    pip install -e '.[fuzz]'        # atheris
    python3 scripts/fuzz_atheris.py -max_total_time=3600 -rss_limit_mb=1024 -timeout=10 corpus/

The first byte of each input picks the target (file reader, ``decode_frames``, ``dissect``, a two-frame batch;
see ``tracer.fuzz.targets.check_one_input``). ``-rss_limit_mb`` turns an allocation sized by an untrusted
length into a reported crash and ``-timeout`` an unbounded loop. Seeding the corpus directory with files from
../shared/captures/public (prefixed with a zero byte) gets coverage fast:

    mkdir -p corpus && for f in ../shared/captures/public/*.pcap*; do
        (printf '\\0'; cat "$f") > "corpus/$(basename "$f")"; done

Without atheris installed it says so and exits 2; the bounded CI fuzzing lives in tests/fuzz (hypothesis).
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        import atheris
    except ImportError:
        print("fuzz_atheris: atheris is not installed (pip install atheris); "
              "for a long hypothesis run use TRACER_FUZZ_EXAMPLES=100000 python3 -m pytest tests/fuzz",
              file=sys.stderr)
        return 2
    with atheris.instrument_imports():
        import tracer.capture.index  # noqa: F401
        import tracer.decode.fields  # noqa: F401
        try:
            import tracer.decode.dissect  # noqa: F401
        except ImportError:
            pass
        from tracer.fuzz.targets import check_one_input

    def one_input(data: bytes) -> None:
        try:
            check_one_input(data)
        except ImportError:
            pass  # a target whose module does not exist yet

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
