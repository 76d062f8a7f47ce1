"""Shift report output that needs Qt: the room heatmap image (the GUI's own colouring code) and the PDF
(A4, paginated, page numbers, CJK font). Also the `mixops report` command and the GUI dialog."""

from __future__ import annotations

import os
import sqlite3
import sys
import time

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QRectF, QSizeF, Qt, QUrl
from PySide6.QtGui import (
    QFont,
    QGuiApplication,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QTextDocument,
)

from console import reports
from console.live import open_readonly, read_snapshot
from widgets.heatmap import card_colours, compute_geometry, palette

IMAGE_URL = "mixops://heatmap.png"


def heatmap_image(conn: sqlite3.Connection, start: float, end: float, scale: int = 2) -> tuple[bytes | None, float | None]:
    """PNG of the room coloured by each card's hottest reading in the window, and when the hottest sweep was."""
    snap = read_snapshot(conn, now=end)
    if not snap.card_node:
        return None, None
    rows = conn.execute("SELECT card_id, max(temperature_c) FROM samples WHERE ts >= ? AND ts < ? GROUP BY card_id",
                        (start, end)).fetchall()
    hottest = {int(a): b for a, b in rows}
    temps = np.array([np.nan if hottest.get(int(cid)) is None else hottest[int(cid)] for cid in snap.card_id],
                     dtype=np.float32)
    snap.metrics["temperature_c"] = temps
    snap.stale = np.zeros(len(temps), dtype=bool)
    geometry = compute_geometry(snap)
    plain, patt = card_colours(snap, "temperature_c")
    rgba = np.ascontiguousarray(palette(plain, patt)[geometry.pix])
    if scale > 1:
        rgba = np.ascontiguousarray(rgba.repeat(scale, axis=0).repeat(scale, axis=1))
    h, w = rgba.shape[:2]
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    at = conn.execute("SELECT ts FROM samples WHERE ts >= ? AND ts < ? ORDER BY temperature_c DESC LIMIT 1",
                      (start, end)).fetchone()
    return bytes(data.data()), (float(at[0]) if at else None)


def _document(rep: reports.Report, width_pt: float) -> QTextDocument:
    doc = QTextDocument()
    font = QFont("Noto Sans CJK SC")
    font.setPointSizeF(8.5)
    doc.setDefaultFont(font)
    if rep.heatmap_png:
        image = QImage()
        image.loadFromData(rep.heatmap_png, "PNG")
        doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(IMAGE_URL), image)
    text = reports.to_html(rep, with_image=bool(rep.heatmap_png))
    if rep.heatmap_png:
        start = text.find("<img src='data:image/png;base64,")
        end = text.find("'", start + 10)
        text = text[:start] + f"<img src='{IMAGE_URL}'" + text[end + 1:]
    doc.setHtml(text)
    doc.setPageSize(QSizeF(width_pt, 10_000))
    doc.setTextWidth(width_pt)
    return doc


def render_pdf(rep: reports.Report, path: str) -> int:
    """Write the report as an A4 PDF with page numbers; returns the page count."""
    writer = QPdfWriter(path)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(12, 12, 12, 14), QPageLayout.Unit.Millimeter))
    writer.setResolution(96)
    writer.setTitle(f"{reports.t('title', rep.lang)} — {rep.site}")
    writer.setCreator("mixops")
    body = writer.pageLayout().paintRectPixels(writer.resolution())
    footer_h = 18.0
    page_h = body.height() - footer_h
    doc = _document(rep, float(body.width()))
    doc.setPageSize(QSizeF(body.width(), page_h))
    pages = max(1, doc.pageCount())
    painter = QPainter(writer)
    try:
        for page in range(pages):
            if page:
                writer.newPage()
            painter.save()
            painter.translate(0, -page * page_h)
            doc.drawContents(painter, QRectF(0, page * page_h, body.width(), page_h))
            painter.restore()
            painter.setFont(QFont("Noto Sans CJK SC", 7))
            label = f"{rep.site} · {rep.local(rep.start)} – {rep.local(rep.end)}"
            if rep.demo:
                label = f"{reports.t('demo', rep.lang)} · {label}"
            painter.drawText(QRectF(0, page_h + 4, body.width(), footer_h), Qt.AlignmentFlag.AlignLeft, label)
            painter.drawText(QRectF(0, page_h + 4, body.width(), footer_h), Qt.AlignmentFlag.AlignRight,
                             f"{page + 1} / {pages}")
    finally:
        painter.end()
    return pages


def write(rep: reports.Report, path: str) -> int | None:
    """Write by extension (.pdf, .html, .md); returns the page count for PDF."""
    low = path.lower()
    if low.endswith(".pdf"):
        return render_pdf(rep, path)
    text = reports.to_html(rep) if low.endswith((".html", ".htm")) else reports.to_markdown(rep)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return None


def build_for(db_path: str, start: float, end: float, lang: str, by: str, image: bool = True) -> reports.Report:
    """The report model plus the heatmap image, from a database file."""
    conn = open_readonly(db_path)
    try:
        rep = reports.build(conn, start, end, lang, by)
        if image:
            rep.heatmap_png, rep.heatmap_at = heatmap_image(conn, start, end)
        return rep
    finally:
        conn.close()


def run_report_cli(argv: list[str]) -> int:
    """`mixops report --db FILE (--shift "DATE NAME" | --from ISO --to ISO) [--lang] --out FILE`."""
    from console import paths
    from console.argv import UsageError, build_parser

    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2

    def fail(message: str) -> int:
        print(f"mixops report: {message}", file=sys.stderr)
        return 2

    if not args.out:
        return fail("--out FILE.pdf|.html|.md is required")
    if not args.out.lower().endswith((".pdf", ".html", ".htm", ".md")):
        return fail(f"{args.out}: the output must end in .pdf, .html or .md")
    db = args.db or (str(paths.data_dir() / "demo.db") if paths.configured_site() is None else None)
    if db is None:
        return fail("--db FILE is required")
    if not os.path.exists(db):
        return fail(f"{db}: no such database")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK) or (
            os.path.exists(args.out) and not os.access(args.out, os.W_OK)):
        return fail(f"{args.out}: cannot write there")
    try:
        conn = open_readonly(db)
        try:
            info = reports.meta(conn)
            if args.shift:
                start, end = reports.shift_window(conn, args.shift)
            elif args.from_ and args.to:
                tz = info.get("timezone", "UTC")
                start, end = reports.parse_when(args.from_, tz), reports.parse_when(args.to, tz)
            else:
                return fail("give --shift \"YYYY-MM-DD NAME\" or --from and --to")
        finally:
            conn.close()
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")
        _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
        lang = args.lang or ("zh_CN" if os.environ.get("LANG", "").startswith("zh") else "en")
        t0 = time.perf_counter()
        rep = build_for(db, start, end, lang, os.environ.get("USER") or "mixops",
                        image=not args.out.lower().endswith(".md"))
        pages = write(rep, args.out)
    except reports.ReportError as exc:
        return fail(str(exc))
    except (sqlite3.Error, OSError) as exc:
        return fail(f"{db}: {exc}")
    extra = f", {pages} page(s)" if pages else ""
    print(f"report {args.out}: {rep.local(start)} – {rep.local(end)} ({rep.timezone}){extra}, "
          f"built in {time.perf_counter() - t0:.1f} s")
    return 0


# ---- the GUI dialog -------------------------------------------------------------------------------

from PySide6.QtCore import QDateTime, QObject, QRunnable, QThreadPool, Signal  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)


def current_shift(db_path: str, now: float | None = None) -> tuple[float, float, str]:
    """The shift containing `now` (or the last 8 hours when the site defines none)."""
    now = time.time() if now is None else now
    conn = open_readonly(db_path)
    try:
        info = reports.meta(conn)
        import json
        from datetime import datetime, timedelta
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(info.get("timezone", "UTC"))
        for name, start_hm, hours in json.loads(info.get("shifts", "[]")):
            hh, mm = (int(x) for x in start_hm.split(":"))
            for back in (0, 1):
                day = datetime.fromtimestamp(now, tz) - timedelta(days=back)
                begin = day.replace(hour=hh, minute=mm, second=0, microsecond=0)
                end = begin + timedelta(hours=float(hours))
                if begin.timestamp() <= now < end.timestamp():
                    return begin.timestamp(), end.timestamp(), f"{begin:%Y-%m-%d} {name}"
    finally:
        conn.close()
    return now - 8 * 3600, now, "last 8 h"


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)


class _Build(QRunnable):
    def __init__(self, db: str, start: float, end: float, lang: str, by: str) -> None:
        super().__init__()
        self.args = (db, start, end, lang, by)
        self.signals = _Signals()

    def run(self) -> None:
        try:
            self.signals.done.emit(build_for(*self.args))
        except (reports.ReportError, sqlite3.Error, OSError) as exc:
            self.signals.failed.emit(str(exc))


class ReportDialog(QDialog):
    """Shift report: the window pre-filled with the current shift, a preview, export to PDF/HTML/Markdown."""

    def __init__(self, db_path: str, language: str, by: str, parent: QWidget | None = None,
                 pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        from PySide6.QtCore import QCoreApplication

        def tr(text: str) -> str:
            return QCoreApplication.translate("mixops", text)

        self.db_path, self.by = db_path, by
        self.pool = pool or QThreadPool.globalInstance()
        self.report: reports.Report | None = None
        self.setWindowTitle(tr("Shift report"))
        self.resize(900, 760)
        start, end, label = current_shift(db_path)
        self.start_edit = QDateTimeEdit(QDateTime.fromSecsSinceEpoch(int(start)))
        self.end_edit = QDateTimeEdit(QDateTime.fromSecsSinceEpoch(int(end)))
        for edit in (self.start_edit, self.end_edit):
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.setCalendarPopup(True)
        self.lang = QComboBox()
        self.lang.addItem("English", "en")
        self.lang.addItem("简体中文", "zh_CN")
        self.lang.setCurrentIndex(1 if language.startswith("zh") else 0)
        preview = QPushButton(tr("Preview"))
        preview.clicked.connect(self.build)
        self.status = QLabel(label)
        top = QHBoxLayout()
        for w in (QLabel(tr("From")), self.start_edit, QLabel(tr("to")), self.end_edit, self.lang, preview):
            top.addWidget(w)
        top.addStretch(1)
        self.view = QTextBrowser()
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        for ext, text in (("pdf", "PDF…"), ("html", "HTML…"), ("md", "Markdown…")):
            b = QPushButton(tr("Export") + " " + text)
            b.clicked.connect(lambda _=False, ext=ext: self.export(ext))
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        self._jobs: list[_Build] = []
        self.build()

    def build(self) -> None:
        """Build the report in the pool and show it."""
        start = float(self.start_edit.dateTime().toSecsSinceEpoch())
        end = float(self.end_edit.dateTime().toSecsSinceEpoch())
        job = _Build(self.db_path, start, end, str(self.lang.currentData()), self.by)
        self._generation = getattr(self, "_generation", 0) + 1
        generation = self._generation
        # only the newest build is shown: an earlier one may finish later
        job.signals.done.connect(lambda rep: self._show(rep) if generation == self._generation else None)
        job.signals.failed.connect(self.status.setText)
        self._jobs = [job]
        self.status.setText("…")
        self.pool.start(job)

    def _show(self, rep: object) -> None:
        if not isinstance(rep, reports.Report):
            return
        self.report = rep
        if rep.heatmap_png:
            image = QImage()
            image.loadFromData(rep.heatmap_png, "PNG")
            self.view.document().addResource(QTextDocument.ResourceType.ImageResource, QUrl(IMAGE_URL), image)
        text = reports.to_html(rep, with_image=bool(rep.heatmap_png))
        if rep.heatmap_png:
            a = text.find("<img src='data:image/png;base64,")
            b = text.find("'", a + 10)
            text = text[:a] + f"<img src='{IMAGE_URL}'" + text[b + 1:]
        self.view.setHtml(text)
        self.status.setText(f"{rep.local(rep.start)} – {rep.local(rep.end)} ({rep.timezone})")

    def export(self, ext: str, path: str | None = None) -> str | None:
        """Write the previewed report; asks for the file when no path is given."""
        if self.report is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "mixops", f"handover.{ext}")
            if not path:
                return None
        try:
            pages = write(self.report, path)
        except OSError as exc:
            self.status.setText(f"{path}: {exc}")
            return None
        self.status.setText(f"{path}" + (f" ({pages} pages)" if pages else ""))
        return path
