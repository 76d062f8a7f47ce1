"""Durations as operators read them, shared by the window and the reports."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """`45 s`, `12 min`, `3.4 h`, `2.1 d`; `N/A` when unknown."""
    if seconds is None:
        return "N/A"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


VENDOR_LABELS = {"nvidia": "NVIDIA", "ascend": "Ascend", "hygon": "Hygon", "amd": "AMD", "cambricon": "Cambricon",
                 "metax": "MetaX", "mthreads": "Moore Threads", "iluvatar": "Iluvatar", "enflame": "Enflame",
                 "kunlunxin": "Kunlunxin", "denglin": "Denglin", "biren": "Biren"}


def vendor_label(vendor: str | None) -> str:
    """The vendor as operators write it (`NVIDIA`, `MetaX`); a site adapter's own name as given."""
    return "?" if vendor is None else VENDOR_LABELS.get(vendor, vendor)
