"""Shift report output that needs Qt: the room heatmap image (the GUI's own colouring code) and the PDF
(A4, paginated, page numbers, CJK font). Also the `mixops report` command and the GUI dialog."""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from datetime import datetime

import numpy as np
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QDate,
    QDateTime,
    QFile,
    QFileDevice,
    QIODevice,
    QMarginsF,
    QRectF,
    QSizeF,
    QStandardPaths,
    Qt,
    QThreadPool,
    QTime,
    QTimeZone,
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
    QTextBlock,
    QTextCursor,
    QTextDocument,
    QTextFormat,
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
from widgets.i18n import settings, tr

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


def report_font(point_size: float) -> QFont:
    """The report's font: Latin first (digits and Latin text searchable in the PDF), CJK after it."""
    font = QFont()
    font.setFamilies(list(reports.FONT_FAMILIES))
    font.setPointSizeF(point_size)
    return font


def _document(rep: reports.Report, width_pt: float) -> QTextDocument:
    doc = QTextDocument()
    doc.setDefaultFont(report_font(8.5))
    doc.setHtml(qt_html(rep, doc))
    doc.setPageSize(QSizeF(width_pt, 10_000))
    doc.setTextWidth(width_pt)
    return doc


def _extent(doc: QTextDocument, block: QTextBlock) -> tuple[float, float]:
    """Where a block's lines really are (top of the first, bottom of the last), in document coordinates.
    A paginated layout pushes a line that does not fit to the next page inside its block, which
    blockBoundingRect does not show: it gives the block's position, not its lines'."""
    rect = doc.documentLayout().blockBoundingRect(block)
    lines = block.layout()
    if lines is None or lines.lineCount() == 0:
        return rect.top(), rect.bottom()
    first, last = lines.lineAt(0), lines.lineAt(lines.lineCount() - 1)
    return rect.top() + first.y(), rect.top() + last.y() + last.height()


def _first_content_bottom(doc: QTextDocument, heading: QTextBlock) -> float | None:
    """Where the first content under a heading ends: a paragraph, or a table's header and first row."""
    block = heading.next()
    if not block.isValid():
        return None
    table = QTextCursor(block).currentTable()
    if table is None:
        return _extent(doc, block)[1]
    row = min(1, table.rows() - 1)
    if row + 1 < table.rows():          # the top of the row after it, cell padding and border included
        return _extent(doc, table.cellAt(row + 1, 0).firstCursorPosition().block())[0]
    return doc.documentLayout().frameBoundingRect(table).bottom()


def _break_before(block: QTextBlock) -> None:
    fmt = block.blockFormat()
    fmt.setPageBreakPolicy(QTextFormat.PageBreakFlag.PageBreak_AlwaysBefore)
    QTextCursor(block).setBlockFormat(fmt)


def keep_headings_with_content(doc: QTextDocument, page_h: float) -> int:
    """A heading that would be left alone at the foot of a page (its first content, a paragraph or a
    table's header and first row, on the next) moves to the next page. Returns how many page breaks were
    added; `doc` must have its page size already. (A table broken across pages repeats its header row:
    to_html marks it <thead>.)"""
    added = 0
    block = doc.begin()
    while block.isValid():
        fmt = block.blockFormat()
        top = _extent(doc, block)[0]
        page_top = (top // page_h) * page_h
        page_end = page_top + page_h
        bottom: float | None = None
        if fmt.pageBreakPolicy() & QTextFormat.PageBreakFlag.PageBreak_AlwaysBefore:
            pass
        elif fmt.headingLevel() > 0:
            bottom = _first_content_bottom(doc, block)
        if bottom is not None and bottom > page_end + 0.5 and top - page_top > 0.1 * page_h:
            _break_before(block)
            # the layout is incremental: what follows keeps stale positions until it is marked dirty
            doc.markContentsDirty(block.position(), doc.characterCount() - block.position())
            added += 1
            continue                         # measure this block again: it is on the next page now
        block = block.next()
    return added


def paginated(rep: reports.Report, width: float, page_h: float) -> QTextDocument:
    """The report as the PDF's pages lay it out: `page_h` tall pages, headings kept with their content."""
    doc = _document(rep, width)
    doc.setPageSize(QSizeF(width, page_h))
    keep_headings_with_content(doc, page_h)
    return doc


class WriteError(OSError):
    """The report could not be written to its file (one line naming the output file)."""


def _pdf_failed(path: str, why: str) -> WriteError:
    return WriteError(f"{path}: cannot write there ({why})")


def render_pdf(rep: reports.Report, path: str) -> int:
    """Write the report as an A4 PDF with page numbers; returns the page count. Raises WriteError when the
    file could not be opened, painted or completely written (a full disk, /proc, a directory)."""
    out = QFile(path)
    if not out.open(QIODevice.OpenModeFlag.WriteOnly | QIODevice.OpenModeFlag.Truncate):
        raise _pdf_failed(path, out.errorString())
    writer = QPdfWriter(out)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(12, 12, 12, 14), QPageLayout.Unit.Millimeter))
    writer.setResolution(96)
    writer.setTitle(f"{reports.t('title', rep.lang)} — {rep.site}")
    writer.setCreator("mixops")
    body = writer.pageLayout().paintRectPixels(writer.resolution())
    footer_h = 18.0
    page_h = body.height() - footer_h
    doc = paginated(rep, float(body.width()), page_h)
    pages = max(1, doc.pageCount())
    painter = QPainter()
    if not painter.begin(writer):
        out.close()
        raise _pdf_failed(path, out.errorString() if out.error() != QFileDevice.FileError.NoError
                          else "the PDF writer did not start")
    try:
        for page in range(pages):
            if page and not writer.newPage():
                break
            painter.save()
            painter.translate(0, -page * page_h)
            doc.drawContents(painter, QRectF(0, page * page_h, body.width(), page_h))
            painter.restore()
            painter.setFont(report_font(7))
            label = f"{rep.site} · {rep.local(rep.start)} – {rep.local(rep.end)}"
            if rep.demo:
                label = f"{reports.t('demo', rep.lang)} · {label}"
            painter.drawText(QRectF(0, page_h + 4, body.width(), footer_h), Qt.AlignmentFlag.AlignLeft, label)
            painter.drawText(QRectF(0, page_h + 4, body.width(), footer_h), Qt.AlignmentFlag.AlignRight,
                             f"{page + 1} / {pages}")
    finally:
        ended = painter.end()
        del painter, writer
        out.close()
    if out.error() != QFileDevice.FileError.NoError:
        raise _pdf_failed(path, out.errorString())
    if not ended:
        raise _pdf_failed(path, "the PDF writer failed")
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - 64))
            complete = b"%%EOF" in fh.read()
    except OSError as exc:
        raise _pdf_failed(path, exc.strerror or str(exc)) from None
    if not complete:
        raise _pdf_failed(path, "the PDF is incomplete: the disk may be full")
    return pages


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass                            # not Linux, or no /proc: the common default below
    return 0o022


def write(rep: reports.Report, path: str) -> int | None:
    """Write by extension (.pdf, .html, .md); returns the page count for PDF.

    The report goes to a temporary file beside the target and is renamed over it only when complete, so a
    failed write (full disk, no permission) leaves no partial file and any earlier report intact. Every
    failure is a WriteError naming the output file."""
    target = os.path.abspath(path)
    low = target.lower()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".part",
                                   dir=os.path.dirname(target))
    except OSError as exc:
        raise WriteError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    try:
        pages: int | None = None
        if low.endswith(".pdf"):
            os.close(fd)
            pages = render_pdf(rep, tmp)
        else:
            text = reports.to_html(rep) if low.endswith((".html", ".htm")) else reports.to_markdown(rep)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        if os.path.getsize(tmp) == 0:
            raise WriteError(f"{path}: cannot write there (nothing was written)")
        mode = os.stat(target).st_mode & 0o777 if os.path.exists(target) else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except WriteError as exc:
        _discard(tmp)
        raise WriteError(str(exc).replace(tmp, path)) from None
    except OSError as exc:
        _discard(tmp)
        raise WriteError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    return pages


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def build_for(db_path: str, start: float, end: float, lang: str, by: str, image: bool = True) -> reports.Report:
    """The report model plus the heatmap image, from a database file."""
    def read(conn: sqlite3.Connection) -> reports.Report:
        rep = reports.build(conn, start, end, lang, by)
        if image:
            room, rep.heatmap_at = reports.hottest(conn, start, end, stats=rep.stats)
            rep.heatmap_png = heatmap_png(room) if room is not None else None
        return rep

    return read_with(db_path, read)


def run_report_cli(argv: list[str]) -> int:
    """`mixops report --db FILE [--shift "DATE NAME" | --from ISO --to ISO] [--lang] --out FILE`; without a
    window, the site's last finished shift (the last 12 h when the site has none)."""
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
    if args.shift and (args.from_ or args.to):
        return fail("give either --shift or --from/--to, not both")
    if bool(args.from_) != bool(args.to):
        return fail("--from and --to go together")
    db = args.db or (str(paths.data_dir() / "demo.db") if paths.configured_site() is None else None)
    if db is None:
        return fail("--db FILE is required")
    if not os.path.exists(db):
        return fail(f"{db}: no such database")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK) or (
            os.path.exists(args.out) and not os.access(args.out, os.W_OK)):
        return fail(f"{args.out}: cannot write there")
    lang = args.lang or ("zh_CN" if os.environ.get("LANG", "").startswith("zh") else "en")
    t0 = time.perf_counter()
    try:
        conn = open_readonly(db)
        try:
            info = reports.meta(conn)
            if args.shift:
                start, end = reports.shift_window(conn, args.shift)
            elif args.from_:
                tz = info.get("timezone", "UTC")
                start, end = reports.parse_when(args.from_, tz, "--from"), reports.parse_when(args.to, tz, "--to")
            else:
                start, end, _label = reports.last_finished_shift(conn, time.time())
        finally:
            conn.close()
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")
        _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
        rep = build_for(db, start, end, lang, os.environ.get("USER") or "mixops",
                        image=not args.out.lower().endswith(".md"))
    except reports.ReportError as exc:
        return fail(str(exc))
    except sqlite3.Error as exc:
        return fail(f"{db}: {exc}")
    try:
        pages = write(rep, args.out)
    except OSError as exc:              # WriteError: names the output file
        return fail(str(exc))
    extra = f", {pages} page(s)" if pages else ""
    print(f"report {args.out}: {rep.local(start)} – {rep.local(end)} ({rep.timezone}){extra}, "
          f"built in {time.perf_counter() - t0:.1f} s")
    return 0


# ---- the GUI dialog -------------------------------------------------------------------------------

FILE_FILTERS = {"pdf": "PDF (*.pdf)", "html": "HTML (*.html *.htm)", "md": "Markdown (*.md)"}
LAST_DIR_KEY = "report/last_dir"


class ReportDialog(QDialog):
    """Shift report: the window pre-filled with the current shift, a preview, export to PDF/HTML/Markdown.

    From/To are wall-clock times of the site's timezone (the zone the report covers, named beside them),
    whatever the timezone of the machine running the window."""

    def __init__(self, db_path: str, language: str, by: str, parent: QWidget | None = None,
                 pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.db_path, self.by = db_path, by
        self.pool = pool or QThreadPool.globalInstance()
        self.report: reports.Report | None = None
        self.setWindowTitle(tr("Shift report"))
        self.resize(900, 760)
        now = time.time()

        def first(conn: sqlite3.Connection) -> tuple[str, tuple[float, float, str]]:
            tz = reports.meta(conn).get("timezone", "UTC")
            try:
                reports.zone(tz)
            except reports.ReportError:
                tz = "UTC"
            return tz, reports.current_shift(conn, now)

        self.tz_name, (start, end, label) = read_with(db_path, first)
        self.zone = reports.zone(self.tz_name)
        self.start_edit = QDateTimeEdit()
        self.end_edit = QDateTimeEdit()
        for edit in (self.start_edit, self.end_edit):
            # the edits hold the site's wall clock in UTC (no DST gaps there); window() reads it back in
            # the site's zone, so the machine's own timezone never enters
            edit.setTimeZone(QTimeZone.utc())
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.setCalendarPopup(True)
            edit.setToolTip(tr("Time in the site's timezone") + f" ({self.tz_name})")
        self.set_window(start, end)
        self.zone_label = QLabel(self.tz_name)
        self.zone_label.setToolTip(tr("Time in the site's timezone"))
        self.lang = QComboBox()
        self.lang.addItem("English", "en")
        self.lang.addItem("简体中文", "zh_CN")
        self.lang.setCurrentIndex(1 if language.startswith("zh") else 0)
        preview = QPushButton(tr("Preview"))
        preview.clicked.connect(self.build)
        self.status = QLabel(tr(label) if label.startswith("last ") else label)
        top = QHBoxLayout()
        for w in (QLabel(tr("From")), self.start_edit, QLabel(tr("to")), self.end_edit, self.zone_label, self.lang,
                  preview):
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

    def _to_edit(self, ts: float) -> QDateTime:
        wall = datetime.fromtimestamp(ts, self.zone)
        return QDateTime(QDate(wall.year, wall.month, wall.day), QTime(wall.hour, wall.minute), QTimeZone.utc())

    def _from_edit(self, edit: QDateTimeEdit) -> float:
        value = edit.dateTime()
        d, hm = value.date(), value.time()
        return datetime(d.year(), d.month(), d.day(), hm.hour(), hm.minute(), tzinfo=self.zone).timestamp()

    def set_window(self, start: float, end: float) -> None:
        """Show [start, end) (unix seconds) as the site's wall clock, to the minute."""
        self.start_edit.setDateTime(self._to_edit(start))
        self.end_edit.setDateTime(self._to_edit(end))

    def window(self) -> tuple[float, float]:
        """The From/To edits as unix seconds, read as the site's wall clock."""
        return self._from_edit(self.start_edit), self._from_edit(self.end_edit)

    def build(self) -> None:
        """Build the report in the pool and show it."""
        start, end = self.window()
        args = (self.db_path, start, end, str(self.lang.currentData()), self.by)
        job = Task(lambda: build_for(*args))
        self._generation = getattr(self, "_generation", 0) + 1
        generation = self._generation
        # only the newest build is shown: an earlier one may finish later
        job.signals.done.connect(lambda rep: self._show(rep) if generation == self._generation else None)
        job.signals.failed.connect(self.status.setText)
        self.status.setText("…")
        job.start(self.pool)

    def _show(self, rep: object) -> None:
        if not isinstance(rep, reports.Report):
            return
        self.report = rep
        self.view.setHtml(qt_html(rep, self.view.document()))
        self.status.setText(f"{rep.local(rep.start)} – {rep.local(rep.end)} ({rep.timezone})")

    def save_location(self, ext: str) -> tuple[str, str]:
        """(suggested file, file-type filter) for the save dialog: the folder last exported to, else the
        user's documents folder, never the working directory."""
        last = str(settings().value(LAST_DIR_KEY, "", str) or "")
        folder = last if last and os.path.isdir(last) else (
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
            or os.path.expanduser("~"))
        stamp = self.report.local(self.report.start, "%Y-%m-%d_%H%M") if self.report else "shift"
        return os.path.join(folder, f"handover_{stamp}.{ext}"), FILE_FILTERS[ext]

    def export(self, ext: str, path: str | None = None) -> str | None:
        """Write the previewed report; asks for the file when no path is given."""
        if self.report is None:
            return None
        if path is None:
            suggested, file_filter = self.save_location(ext)
            path, _ = QFileDialog.getSaveFileName(self, tr("Export shift report"), suggested, file_filter)
            if not path:
                return None
            if not path.lower().endswith(tuple(x.strip("*") for x in file_filter[file_filter.index("(") + 1:-1]
                                               .split())):
                path += f".{ext}"
        try:
            pages = write(self.report, path)
        except OSError as exc:              # WriteError names the file
            self.status.setText(str(exc))
            return None
        settings().setValue(LAST_DIR_KEY, os.path.dirname(os.path.abspath(path)))
        self.status.setText(f"{path}" + (f" ({pages} pages)" if pages else ""))
        return path
