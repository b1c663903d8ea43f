"""``python -m tracer`` behaves exactly like the ``tracer`` console script."""

import sys

from tracer.cli import main

if __name__ == "__main__":
    sys.exit(main())
