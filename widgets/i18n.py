"""English and Simplified Chinese: a QTranslator fed from resources/i18n/<lang>.json.

The UI's strings are English in the code (QCoreApplication.translate, context "mixops"); the JSON
catalogue maps each to its Chinese. The language comes from the setting, else the system locale.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLocale, QSettings, QTranslator

from console.fmt import vendor_label

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "i18n"
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}


class CatalogTranslator(QTranslator):
    """Looks strings up in a dict; unknown strings fall back to English."""

    def __init__(self, catalog: dict[str, str]) -> None:
        super().__init__()
        self.catalog = catalog

    def translate(self, context: str, source: str, disambiguation: str | None = None,  # type: ignore[override]
                  n: int = -1) -> str | None:
        # None (a null QString) makes Qt fall back to the English source; "" would show an empty label.
        # A disambiguated string ("down" of a link, not of a job) is catalogued as "<disambiguation>: <source>".
        if disambiguation:
            return self.catalog.get(f"{disambiguation}: {source}", self.catalog.get(source))
        return self.catalog.get(source)

    def isEmpty(self) -> bool:  # noqa: N802 - Qt API
        return not self.catalog


def tr(text: str, disambiguation: str | None = None) -> str:
    """Translate a UI string (context "mixops"); disambiguation tells apart one English word's meanings."""
    return QCoreApplication.translate("mixops", text, disambiguation)


def settings() -> QSettings:
    """The user's settings (language, operator name)."""
    return QSettings("mixops", "mixops")


def chosen_language(explicit: str | None = None) -> str:
    """--lang, then $MIXOPS_LANG, then the setting, then the system locale."""
    for value in (explicit, os.environ.get("MIXOPS_LANG"), settings().value("language", "", str)):
        if value in LANGUAGES:
            return str(value)
    return "zh_CN" if QLocale.system().name().startswith("zh") else "en"


def catalog(language: str) -> dict[str, str]:
    """The string catalogue of a language ({} for English)."""
    path = RESOURCES / f"{language}.json"
    if language == "en" or not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()}


_current = "en"
_installed: CatalogTranslator | None = None      # kept alive here; replaced when the language changes


def current_language() -> str:
    """The language installed for this run (knowledge-base texts follow it)."""
    return _current


def install(app: QCoreApplication, language: str) -> CatalogTranslator | None:
    """Install the translator for a language in place of the previous one (this module keeps it alive)."""
    global _current, _installed
    _current = language
    if _installed is not None:
        app.removeTranslator(_installed)
        _installed = None
    table = catalog(language)
    if not table:
        return None
    _installed = CatalogTranslator(table)
    app.installTranslator(_installed)
    return _installed


VENDOR_NAMES_ZH = {"nvidia": "英伟达", "ascend": "昇腾", "cambricon": "寒武纪", "hygon": "海光", "metax": "沐曦",
                   "mthreads": "摩尔线程", "iluvatar": "天数智芯", "enflame": "燧原", "biren": "壁仞",
                   "kunlunxin": "昆仑芯", "denglin": "登临", "amd": "AMD"}


def vendor_name(vendor: str | None, lang: str) -> str:
    """The vendor as operators write it in the UI's language (`NVIDIA` / `英伟达`); N/A when unknown."""
    if not vendor:
        return "N/A"
    if lang.startswith("zh") and vendor in VENDOR_NAMES_ZH:
        return VENDOR_NAMES_ZH[vendor]
    return vendor_label(vendor)


def vendor_mix(mix: list[tuple[str, int]], lang: str | None = None) -> str:
    """A job's cards per vendor in the UI's language (`NVIDIA 256 · 昇腾 256`)."""
    lang = lang or current_language()
    return " · ".join(f"{vendor_name(v, lang)} {n}" for v, n in mix)
