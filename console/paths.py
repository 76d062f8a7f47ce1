"""Where mixops keeps its files: the configured site and the default database."""

from __future__ import annotations

import os
import re
from pathlib import Path


def config_dir() -> Path:
    """~/.config/mixops (XDG_CONFIG_HOME honoured)."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "mixops"


def data_dir() -> Path:
    """~/.local/share/mixops (XDG_DATA_HOME honoured)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "mixops"


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
