"""Shift reports from a demo database: sections with the right numbers (cross-checked with direct
queries), escaping, an empty shift, an unwritable output, and a PDF that pdftoppm can render."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console import demo, reports

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "demo.db"
    end = time.time()
    demo.build_history(str(path), days=0.1, cards=320, end=end)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO handover_notes(ts, author, text) VALUES (?, ?, ?)",
                 (end - 600, "li.wei", "B-row CRAC unit 2 serviced at 03:00"))
    conn.execute("UPDATE nodes SET name = '<script>alert(1)</script>' WHERE name = (SELECT min(name) FROM nodes)")
    conn.execute("INSERT INTO incidents(opened_at, severity, state, title, node, key, source) VALUES "
                 "(?, 'P2', 'open', '<script>alert(1)</script>: Xid 48', '<script>alert(1)</script>', 'x', 'fault')",
                 (end - 300,))
    conn.commit()
    conn.close()
    return str(path), end - 0.1 * 86400, end


def test_sections_have_the_numbers_of_the_database(demo_db):
    path, start, end = demo_db
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rep = reports.build(conn, start, end, "en", "tester", now=end)
    assert rep.summary["Cards monitored"] == str(conn.execute("SELECT count(*) FROM cards").fetchone()[0])
    opened = conn.execute("SELECT count(*) FROM incidents WHERE opened_at >= ? AND opened_at < ?",
                          (start, end)).fetchone()[0]
    assert rep.summary["Incidents opened / acknowledged / resolved"].startswith(f"{opened} / ")
    still_open = conn.execute("SELECT count(*) FROM incidents WHERE state != 'resolved' AND suppressed_by IS NULL"
                              ).fetchone()[0]
    assert len(rep.open_incidents) == still_open
    faults = conn.execute("SELECT count(*) FROM faults WHERE ts >= ? AND ts < ?", (start, end)).fetchone()[0]
    assert sum(int(r[1]) for r in rep.vendor_faults) == faults
    assert rep.hot_racks and float(rep.hot_racks[0][1]) >= float(rep.hot_racks[-1][1])
    assert rep.notes == [[rep.local(end - 600), "li.wei", "B-row CRAC unit 2 serviced at 03:00"]]
    assert rep.demo
    md = reports.to_markdown(rep)
    for title in ("1. Summary", "2. Open incidents", "3. Training jobs", "4. Hot spots", "5. Faults by vendor",
                  "6. Collector health", "7. Handover notes"):
        assert title in md
    assert "llm-70b-mix" in md and "NVIDIA 64" in md and "ETTR" in md     # the demo job, against the goals
    page = reports.to_html(rep)
    # the job's composition sits under its name (8 columns fit A4), the goal marks are explained once
    assert "llm-70b-mix<br><span class='sub'>" in page and "cards: NVIDIA 64" in page
    assert "Goals, in order" in md and all(len(row) == 8 for row in rep.jobs)


def test_values_are_escaped(demo_db):
    path, start, end = demo_db
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rep = reports.build(conn, start, end, "en", "<b>x</b>", now=end)
    page = reports.to_html(rep)
    md = reports.to_markdown(rep)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in md and "<b>x</b>" not in page


def test_empty_shift_says_no_data_per_section(demo_db):
    path, _, end = demo_db
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rep = reports.build(conn, end - 30 * 86400, end - 29 * 86400, "zh_CN", "t", now=end)
    md = reports.to_markdown(rep)
    assert md.count("本班次无数据。") >= 5 and "# 交接班报告" in md


def _mixops(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin",
                                                       "HOME": "/tmp"})


def test_cli_writes_pdf_html_md_and_refuses_bad_output(demo_db, tmp_path):
    path, start, end = demo_db
    window = ["--from", time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start)),
              "--to", time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(end))]
    for ext in ("pdf", "html", "md"):
        out = tmp_path / f"handover.{ext}"
        done = _mixops("report", "--db", path, *window, "--out", out)
        assert done.returncode == 0, done.stderr
        assert out.stat().st_size > 500
    assert "page(s)" in _mixops("report", "--db", path, *window, "--out", tmp_path / "again.pdf").stdout
    html_text = (tmp_path / "handover.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html_text and "<script>" not in html_text
    bad = _mixops("report", "--db", path, *window, "--out", "/proc/nope/handover.pdf")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "cannot write there" in bad.stderr
    unknown = _mixops("report", "--db", path, "--shift", "2026-11-22 lunch", "--out", tmp_path / "x.md")
    assert unknown.returncode == 2 and "unknown shift 'lunch' (known: day, night)" in unknown.stderr
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "40", "-png", str(tmp_path / "handover.pdf"), str(tmp_path / "page")],
                       check=True, timeout=60)
        assert list(tmp_path.glob("page-*.png"))


def test_report_dialog_previews_and_exports(qtbot, demo_db, tmp_path):
    from widgets.report import ReportDialog

    path, start, end = demo_db
    dialog = ReportDialog(path, "en", "tester")
    qtbot.addWidget(dialog)
    from PySide6.QtCore import QDateTime
    dialog.start_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(start)))
    dialog.end_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(end)))
    dialog.build()
    qtbot.waitUntil(lambda: dialog.report is not None and dialog.report.start == float(int(start)), timeout=20_000)
    assert "Shift handover report" in dialog.view.toPlainText() and "DEMO" in dialog.view.toPlainText()
    for ext in ("md", "html", "pdf"):
        assert dialog.export(ext, str(tmp_path / f"h.{ext}")) is not None
        assert (tmp_path / f"h.{ext}").stat().st_size > 300
