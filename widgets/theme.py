"""Light and dark themes: follow the system's colour scheme, or a stored choice (NOC rooms are dark).

The theme is a QPalette on the Fusion style, so every widget and the views that read the palette
(room labels, timeline, plots) follow it; card, severity and segment colours stay what they mean.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from widgets import i18n

THEMES = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
_DEFAULT: dict[str, object] = {}


def chosen() -> str:
    """The stored theme ($MIXOPS_THEME first), else follow the system."""
    import os

    for value in (os.environ.get("MIXOPS_THEME"), i18n.settings().value("theme", "", str)):
        if value in THEMES:
            return str(value)
    return "system"


def effective(code: str) -> str:
    """light or dark: what `system` means on this desktop now."""
    if code in ("light", "dark"):
        return code
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else Qt.ColorScheme.Unknown
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def dark_palette() -> QPalette:
    """A dark palette with enough contrast for a dim room."""
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: (37, 39, 44), QPalette.ColorRole.WindowText: (222, 224, 228),
        QPalette.ColorRole.Base: (27, 29, 33), QPalette.ColorRole.AlternateBase: (44, 47, 53),
        QPalette.ColorRole.ToolTipBase: (50, 53, 60), QPalette.ColorRole.ToolTipText: (235, 235, 235),
        QPalette.ColorRole.Text: (222, 224, 228), QPalette.ColorRole.Button: (48, 51, 57),
        QPalette.ColorRole.ButtonText: (222, 224, 228), QPalette.ColorRole.BrightText: (255, 90, 90),
        QPalette.ColorRole.Highlight: (52, 120, 198), QPalette.ColorRole.HighlightedText: (255, 255, 255),
        QPalette.ColorRole.Link: (110, 170, 255), QPalette.ColorRole.PlaceholderText: (140, 144, 150),
    }
    for role, rgb in roles.items():
        p.setColor(role, QColor(*rgb))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 122, 128))
    return p


def apply(app: QApplication, code: str) -> str:
    """Apply a theme to the application; returns light or dark."""
    if not _DEFAULT:
        _DEFAULT["style"] = app.style().name()
        _DEFAULT["palette"] = QPalette(app.palette())
    mode = effective(code)
    if mode == "dark":
        app.setStyle("Fusion")
        app.setPalette(dark_palette())
    else:
        app.setStyle(str(_DEFAULT["style"]))
        default = _DEFAULT["palette"]
        assert isinstance(default, QPalette)
        app.setPalette(default)
    return mode


__all__ = ["THEMES", "apply", "chosen", "dark_palette", "effective"]
