"""What every benchmark prints about the machine it ran on (the figures mean nothing without it)."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe() -> str:
    """``x86_64, 2 cores, <model>, load average 0.42 0.50 0.61`` — the line each benchmark records."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{platform.machine()}, {os.cpu_count()} cores, {cpu_model()}, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
