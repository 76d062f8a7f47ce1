"""Shift report output that needs Qt: the room heatmap image (the GUI's own colouring code) and the PDF
(A4, paginated, page numbers, CJK font). Also the `mixops report` command and the GUI dialog."""

from __future__ import annotations

import os
import sqlite3
import sys
import time

import numpy as np
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QDateTime,
    QIODevice,
    QMarginsF,
    QRectF,
    QSizeF,
    Qt,
    QThreadPool,
    QUrl,
)
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
from PySide6.QtWidgets import (
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

from console import reports
from console.live import Snapshot, open_readonly, read_with
from widgets.common import Task
from widgets.heatmap import card_colours, compute_geometry, palette
from widgets.i18n import tr

IMAGE_URL = "mixops://heatmap.png"


def heatmap_png(snapshot: Snapshot, scale: int = 2) -> bytes:
    """PNG of the room coloured by temperature, with the room view's own layout and colours."""
    geometry = compute_geometry(snapshot)
    plain, patt = card_colours(snapshot, "temperature_c")
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
    return bytes(data.data())


def qt_html(rep: reports.Report, document: QTextDocument) -> str:
    """The report's HTML for a QTextDocument: the heatmap becomes a document resource (Qt does not load
    data: URIs)."""
    if not rep.heatmap_png:
        return reports.to_html(rep, with_image=False)
    image = QImage()
    image.loadFromData(rep.heatmap_png, "PNG")
    document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(IMAGE_URL), image)
    text = reports.to_html(rep)
    a = text.find("<img src='data:image/png;base64,")
    b = text.find("'", a + 10)
    return text[:a] + f"<img src='{IMAGE_URL}'" + text[b + 1:]


def _document(rep: reports.Report, width_pt: float) -> QTextDocument:
    doc = QTextDocument()
    font = QFont("Noto Sans CJK SC")
    font.setPointSizeF(8.5)
    doc.setDefaultFont(font)
    doc.setHtml(qt_html(rep, doc))
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
    def read(conn: sqlite3.Connection) -> reports.Report:
        rep = reports.build(conn, start, end, lang, by)
        if image:
            room, rep.heatmap_at = reports.hottest(conn, start, end)
            rep.heatmap_png = heatmap_png(room) if room is not None else None
        return rep

    return read_with(db_path, read)


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



class ReportDialog(QDialog):
    """Shift report: the window pre-filled with the current shift, a preview, export to PDF/HTML/Markdown."""

    def __init__(self, db_path: str, language: str, by: str, parent: QWidget | None = None,
                 pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.db_path, self.by = db_path, by
        self.pool = pool or QThreadPool.globalInstance()
        self.report: reports.Report | None = None
        self.setWindowTitle(tr("Shift report"))
        self.resize(900, 760)
        now = time.time()
        start, end, label = read_with(db_path, lambda conn: reports.current_shift(conn, now))
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
        self.build()

    def build(self) -> None:
        """Build the report in the pool and show it."""
        start = float(self.start_edit.dateTime().toSecsSinceEpoch())
        end = float(self.end_edit.dateTime().toSecsSinceEpoch())
        args = (self.db_path, start, end, str(self.lang.currentData()), self.by)
        job = Task(lambda: build_for(*args))
        self._generation = getattr(self, "_generation", 0) + 1
        generation = self._generation
        # only the newest build is shown: an earlier one may finish later
        job.signals.done.connect(lambda rep: self._show(rep) if generation == self._generation else None)
        job.signals.failed.connect(self.status.setText)
        self.status.setText("…")
        self.pool.start(job)

    def _show(self, rep: object) -> None:
        if not isinstance(rep, reports.Report):
            return
        self.report = rep
        self.view.setHtml(qt_html(rep, self.view.document()))
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
