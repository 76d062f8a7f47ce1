"""Where mixops keeps its files: the configured site and the default database."""

from __future__ import annotations

import os
import re
from pathlib import Path


def _xdg(variable: str, default: Path) -> Path:
    """An XDG base directory: the variable when it is an absolute path, else the default (XDG spec:
    relative values are invalid and ignored, so a stray `XDG_DATA_HOME=data` cannot move the database)."""
    value = os.environ.get(variable, "")
    return Path(value) if os.path.isabs(value) else default


def config_dir() -> Path:
    """~/.config/mixops (XDG_CONFIG_HOME honoured)."""
    return _xdg("XDG_CONFIG_HOME", Path.home() / ".config") / "mixops"


def data_dir() -> Path:
    """~/.local/share/mixops (XDG_DATA_HOME honoured)."""
    return _xdg("XDG_DATA_HOME", Path.home() / ".local" / "share") / "mixops"


def configured_site() -> Path | None:
    """The site file from $MIXOPS_SITE or ~/.config/mixops/site.toml, if any."""
    env = os.environ.get("MIXOPS_SITE")
    if env:
        return Path(env)
    default = config_dir() / "site.toml"
    return default if default.exists() else None


def default_db(site_name: str) -> Path:
    """The default database of a site: one file per site in the user's data directory."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", site_name).strip("-").lower() or "site"
    return data_dir() / f"{slug}.db"
