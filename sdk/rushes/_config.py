"""The CLI's stored login: ``$XDG_CONFIG_HOME/rushes/config.json`` (else ``~/.config/rushes/``), mode 0600."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rushes" / "config.json"


def load_config() -> dict[str, Any]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def save_config(data: dict[str, Any]) -> Path:
    """Writes the file readable by its owner only, never briefly wider."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def forget_config() -> bool:
    try:
        config_path().unlink()
    except FileNotFoundError:
        return False
    return True
