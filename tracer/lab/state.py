"""The running lab's plan, saved under /run so ``tracer lab status|traffic|capture|down`` find it again."""

from __future__ import annotations

import json
import os

from tracer.lab.plan import LabPlan
from tracer.safe_write import write_replacing

STATE_DIR = os.environ.get("TRACER_LAB_STATE", "/run/tracer-lab")
STATE_FILE = os.path.join(STATE_DIR, "state.json")


def save(plan: LabPlan) -> None:
    os.makedirs(STATE_DIR, exist_ok=True)
    write_replacing(STATE_FILE, json.dumps(plan.to_dict(), indent=1))


def load() -> LabPlan | None:
    try:
        with open(STATE_FILE) as f:
            return LabPlan.from_dict(json.load(f))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear() -> None:
    try:
        os.unlink(STATE_FILE)
    except FileNotFoundError:
        pass
