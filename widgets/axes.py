"""A date axis that speaks the UI's language: pyqtgraph's DateAxisItem formats with strftime, whose
month and weekday names ("Dec", "Wed 02") stay English under a Chinese UI."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg

from widgets import i18n

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ZH_DAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def zh_label(text: str) -> str:
    """'Dec 02' → '12月02日', 'Wed 02' → '周三 02日', 'Dec' → '12月'; anything else as it is."""
    parts = text.split()
    out: list[str] = []
    for k, part in enumerate(parts):
        if part in MONTHS:
            month = f"{MONTHS.index(part) + 1}月"
            if k + 1 < len(parts) and parts[k + 1].isdigit():
                out.append(month + parts[k + 1] + "日")
                parts[k + 1] = ""
            else:
                out.append(month)
        elif part in DAYS:
            out.append(ZH_DAYS[DAYS.index(part)])
        elif part:
            out.append(part + ("日" if part.isdigit() and k > 0 and parts[k - 1] in DAYS else ""))
    return " ".join(out)


class DateAxis(pg.DateAxisItem):  # type: ignore[misc]
    """pyqtgraph's date axis with Chinese month and weekday names when the UI is Chinese."""

    def tickStrings(self, values: Any, scale: Any, spacing: Any) -> list[str]:  # noqa: N802 - pyqtgraph API
        strings: list[str] = super().tickStrings(values, scale, spacing)
        if not i18n.current_language().startswith("zh"):
            return strings
        return [zh_label(s) for s in strings]
