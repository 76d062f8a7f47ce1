"""The window starts offscreen and labels a demo as a demo."""

from __future__ import annotations

from widgets.app import build_window


def test_no_site_opens_labelled_demo(qtbot, monkeypatch, tmp_path):
    monkeypatch.delenv("MIXOPS_SITE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    window = build_window(None, None, demo=False)
    qtbot.addWidget(window)
    window.show()
    assert "DEMO" in window.windowTitle()
    assert "DEMO" in window.centralWidget().text()


def test_broken_site_file_is_shown_not_raised(qtbot, tmp_path):
    site = tmp_path / "site.toml"
    site.write_text("[site\n")
    window = build_window(str(site), None, demo=False)
    qtbot.addWidget(window)
    assert "TOML syntax error" in window.centralWidget().text()
