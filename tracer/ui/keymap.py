"""The user's keymap: ``binding id -> keys`` from ``$TRACER_KEYMAP`` or ``~/.config/tracer/keymap.yaml``.

Example file (YAML)::

    list.down: "j,down,ctrl+n"
    app.filter: "slash,ctrl+slash"

Every ``Binding`` in the app has an ``id`` (listed by ``?``); a remap replaces that binding's keys. A file that
does not parse is reported (one line, in the app) and ignored, never fatal.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

MAX_KEYMAP_BYTES = 64 * 1024


def keymap_path() -> Path:
    """``$TRACER_KEYMAP``, else ``$XDG_CONFIG_HOME/tracer/keymap.yaml`` (``~/.config`` by default)."""
    env = os.environ.get("TRACER_KEYMAP")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "tracer" / "keymap.yaml"


def load_keymap(path: str | os.PathLike | None = None) -> tuple[dict[str, str], str | None]:
    """(keymap, problem): an absent file is an empty keymap; a bad one is an empty keymap and a message."""
    file = Path(path) if path is not None else keymap_path()
    if not file.exists():
        return {}, None
    try:
        if file.stat().st_size > MAX_KEYMAP_BYTES:
            return {}, f"{file}: keymap larger than {MAX_KEYMAP_BYTES} bytes, ignored"
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return {}, f"{file}: cannot read keymap ({type(exc).__name__}), ignored"
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        return {}, f"{file}: keymap must map binding ids to keys, ignored"
    keymap: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
            return {}, f"{file}: entry {key!r} must be 'binding-id: keys', ignored"
        keymap[key] = value.strip()
    return keymap, None
