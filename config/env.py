"""Typed readers for environment variables.

Every setting that may change between deployments is read through these helpers, so a
typo in a value fails at start-up with the variable's name instead of somewhere later.
Secrets can also come from a file: ``SECRET_KEY_FILE=/run/secrets/key`` wins over
``SECRET_KEY``, which is how Docker and Kubernetes hand secrets over.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class EnvError(ValueError):
    pass


def env_str(name: str, default: str = "") -> str:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise EnvError(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise EnvError(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_json(name: str, default: Any) -> Any:
    """A JSON value (``NAME_FILE`` too: it may carry secrets)."""
    raw = env_str(name, "")
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise EnvError(f"{name} must be JSON: {exc}") from exc
