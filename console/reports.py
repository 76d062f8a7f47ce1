"""Shift handover reports: a model built from the database, rendered to Markdown and HTML here and to
PDF by widgets.report (Qt painting). Every section says "no data" when the database has none for it.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from console import continuity
from console import incidents as inc
from console.fmt import vendor_label
from console.jobview import read_jobs
from console.live import Snapshot, read_snapshot
from console.samples import WindowStats, window_stats

T: dict[str, dict[str, str]] = {
    "title": {"en": "Shift handover report", "zh": "交接班报告"},
    "site": {"en": "Site", "zh": "站点"}, "window": {"en": "Shift window", "zh": "班次时段"},
    "generated": {"en": "Generated", "zh": "生成时间"}, "by": {"en": "by", "zh": "生成人"},
    "summary": {"en": "1. Summary", "zh": "1. 概要"},
    "open": {"en": "2. Open incidents to hand over", "zh": "2. 待交接的未关闭事件"},
    "jobs": {"en": "3. Training jobs", "zh": "3. 训练作业"},
    "hot": {"en": "4. Hot spots", "zh": "4. 热点机柜"},
    "faults": {"en": "5. Faults by vendor", "zh": "5. 按厂商统计的故障"},
    "collector": {"en": "6. Collector health", "zh": "6. 采集健康度"},
    "notes": {"en": "7. Handover notes", "zh": "7. 交接备注"},
    "no_data": {"en": "No data for this shift.", "zh": "本班次无数据。"},
    "demo": {"en": "DEMO — simulated data", "zh": "演示 — 模拟数据"},
    "cards": {"en": "Cards monitored", "zh": "监控卡数"}, "nodes": {"en": "Nodes monitored", "zh": "监控节点数"},
    "coverage": {"en": "Collector coverage (samples received / expected)", "zh": "采集覆盖率（实收/应收采样）"},
    "opened": {"en": "Incidents opened / acknowledged / resolved", "zh": "事件 新开/已确认/已解决"},
    "mtta": {"en": "MTTA", "zh": "平均确认时间"}, "mttr": {"en": "MTTR", "zh": "平均解决时间"},
    "severity": {"en": "Sev.", "zh": "级别"}, "title_col": {"en": "Title", "zh": "标题"},
    "where": {"en": "Node / card", "zh": "节点/卡"}, "job": {"en": "Job", "zh": "作业"},
    "state": {"en": "State", "zh": "状态"}, "owner": {"en": "Owner", "zh": "负责人"},
    "age": {"en": "Age", "zh": "持续"}, "next": {"en": "Next action", "zh": "下一步"},
    "rack": {"en": "Rack", "zh": "机柜"}, "max_temp": {"en": "Max °C", "zh": "最高温度"},
    "avg_temp": {"en": "Avg °C", "zh": "平均温度"}, "vendor": {"en": "Vendor", "zh": "厂商"},
    "count": {"en": "Faults", "zh": "故障数"}, "card_hours": {"en": "Card-hours", "zh": "卡时"},
    "rate": {"en": "per 1,000 card-hours", "zh": "每千卡时"},
    "offenders": {"en": "Repeat offenders (≥ 3 incidents in 30 days: RMA candidates)",
                  "zh": "反复故障（30 天内 ≥ 3 次事件：建议返修）"},
    "isolated": {"en": "Cards to isolate or replace", "zh": "需隔离或更换的卡"},
    "node": {"en": "Node", "zh": "节点"}, "failed_for": {"en": "Failed or stale (sweeps)", "zh": "失败或失联（次）"},
    "last_error": {"en": "Last error", "zh": "最后错误"}, "gaps": {"en": "Gaps", "zh": "数据缺口"},
    "jobs_none": {"en": "No training-job data in the database yet (continuity collection is not configured).",
                  "zh": "数据库中尚无训练作业数据（未配置连续性采集）。"},
    "author": {"en": "Author", "zh": "作者"}, "time": {"en": "Time", "zh": "时间"}, "note": {"en": "Note", "zh": "备注"},
    "heatmap": {"en": "Room at the hottest sweep of the shift (temperature)", "zh": "班次最热时刻机房温度图"},
    "page": {"en": "Page", "zh": "第"},
    "card": {"en": "Card", "zh": "卡"}, "code": {"en": "Code", "zh": "故障码"},
    "last_progress": {"en": "Last progress", "zh": "最后进展"}, "last_step": {"en": "Last step", "zh": "最后步数"},
    "job_cards": {"en": "Job · cards", "zh": "作业 · 加速卡"}, "cards_n": {"en": "cards", "zh": "卡"},
    "ckpt_age": {"en": "Ckpt age", "zh": "检查点时长"},
    "stops": {"en": "Stops in shift", "zh": "本班中断"}, "worst_ttr": {"en": "Worst resume", "zh": "最长恢复"},
    "ettr": {"en": "ETTR 24 h / life", "zh": "ETTR 24 小时 / 全程"},
    "goals": {"en": "Goals", "zh": "目标"},
    "goals_legend": {"en": "Goals, in order: every resume ≤ 10 min · 15 days without interruption · ETTR ≥ 90 % "
                           "(✓ met, ✗ missed, – not known yet).",
                     "zh": "目标依次为：每次恢复 ≤ 10 分钟 · 连续运行 15 天无中断 · ETTR ≥ 90%（✓ 达到，✗ 未达到，– 尚不可知）。"},
    "running": {"en": "running", "zh": "运行中"}, "stalled": {"en": "stalled", "zh": "停滞"},
    "finished": {"en": "finished", "zh": "已完成"},
    "down": {"en": "down", "zh": "中断"}, "no data": {"en": "no data", "zh": "无数据"}, "resuming": {"en": "resuming", "zh": "恢复中"},
    "cannot read": {"en": "cannot read", "zh": "无法读取"}, "no progress pattern": {"en": "no progress pattern",
                                                                                   "zh": "无法识别进度"},
    "open_state": {"en": "open", "zh": "未处理"}, "acknowledged": {"en": "acknowledged", "zh": "已确认"},
    "silenced": {"en": "silenced", "zh": "已静默"},
    "ignore": {"en": "ignore", "zh": "忽略"}, "watch": {"en": "watch", "zh": "观察"},
    "restart_job": {"en": "restart job", "zh": "重启作业"}, "reset_card": {"en": "reset card", "zh": "复位卡"},
    "reboot_node": {"en": "reboot node", "zh": "重启节点"}, "isolate": {"en": "isolate", "zh": "隔离"},
    "replace": {"en": "replace (RMA)", "zh": "更换（RMA）"},
    "kind": {"en": "Kind", "zh": "类型"}, "serial_or_node": {"en": "Card serial / node", "zh": "卡序列号/节点"},
    "incidents_30d": {"en": "Incidents (30 d)", "zh": "事件数（30 天）"},
    "kind_card": {"en": "card", "zh": "卡"}, "kind_node": {"en": "node", "zh": "节点"},
    "links_section": {"en": "Links (down, flapping, errors) by vendor", "zh": "按厂商统计的互联链路（断开、抖动、错误）"}, "links_n": {"en": "Links", "zh": "链路数"},
    "links_down": {"en": "Down at end", "zh": "结束时断开"}, "links_went_down": {"en": "Went down", "zh": "本班断开"},
    "links_flapping": {"en": "Flapping", "zh": "抖动"}, "link_errors": {"en": "Error count", "zh": "错误计数"},
    "link_errors_rate": {"en": "Errors / h", "zh": "错误 / 小时"},
    "link_counters_top": {"en": "Largest error counters", "zh": "增量最大的错误计数器"},
    "gap_merged": {"en": "{n} intervals between sweeps, longest {longest}",
                   "zh": "{n} 个采集间隔，最长 {longest}"},
}


def word(value: str, lang: str) -> str:
    """A state or ladder action in the report's language (unknown words unchanged)."""
    key = "open_state" if value == "open" else value
    return t(key, lang) if key in T else value


def t(key: str, lang: str) -> str:
    """A report string in English or Chinese."""
    return T[key]["zh" if lang.startswith("zh") else "en"]


class ReportError(Exception):
    """Bad report input (unknown shift, empty window): one line, exit 2."""


@dataclass(slots=True)
class Report:
    """Everything the report shows; renderers only format it."""

    lang: str
    site: str
    timezone: str
    start: float
    end: float
    generated_at: float
    by: str
    demo: bool
    summary: dict[str, str] = field(default_factory=dict)
    open_incidents: list[list[str]] = field(default_factory=list)
    jobs: list[list[str]] = field(default_factory=list)
    hot_racks: list[list[str]] = field(default_factory=list)
    vendor_faults: list[list[str]] = field(default_factory=list)
    offenders: list[list[str]] = field(default_factory=list)
    isolated: list[list[str]] = field(default_factory=list)
    links: list[list[str]] = field(default_factory=list)        # per vendor: links, down, went down, flapping, errors,
                                                                # errors/h, largest error counters
    collector: list[list[str]] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    notes: list[list[str]] = field(default_factory=list)
    heatmap_png: bytes | None = None
    heatmap_at: float | None = None
    card_peak_c: dict[int, float] = field(default_factory=dict, repr=False)   # card id → hottest reading
    stats: WindowStats | None = field(default=None, repr=False)             # the window's sample figures

    def local(self, ts: float, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A timestamp in the site's timezone."""
        return datetime.fromtimestamp(ts, zone(self.timezone)).strftime(fmt)


def meta(conn: sqlite3.Connection) -> dict[str, str]:
    """The site facts the collector stored (name, timezone, shifts)."""
    return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}


def zone(name: str) -> ZoneInfo:
    """The site's timezone; a name the tz database does not know is bad input (one line), not a traceback."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(f"timezone '{name}' (database meta): not a known IANA timezone") from None


def _shifts(info: dict[str, str]) -> dict[str, tuple[str, float]]:
    """The site's shifts as the collector stored them: name → (start HH:MM, hours)."""
    try:
        out = {str(name): (str(start), float(hours)) for name, start, hours in json.loads(info.get("shifts", "[]"))}
        for start_hm, hours in out.values():
            hh, mm = (int(x) for x in start_hm.split(":"))
            if not (0 <= hh < 24 and 0 <= mm < 60 and 0 < hours <= 48):
                raise ValueError(start_hm)
    except (ValueError, TypeError):
        raise ReportError(f"the shifts stored in the database (meta 'shifts') are unreadable: "
                          f"{info.get('shifts', '')[:80]!r}") from None
    return out


def _window(day: datetime, start_hm: str, hours: float) -> tuple[float, float]:
    hh, mm = (int(x) for x in start_hm.split(":"))
    begin = day.replace(hour=hh, minute=mm, second=0, microsecond=0)
    return begin.timestamp(), (begin + timedelta(hours=hours)).timestamp()


def shift_window(conn: sqlite3.Connection, spec: str) -> tuple[float, float]:
    """`"2026-11-22 night"` → (start, end) unix seconds, from the site's shifts in the site's timezone."""
    m = re.fullmatch(r"\s*(\d{4}-\d{2}-\d{2})\s+(\S+)\s*", spec)
    if m is None:
        raise ReportError(f"--shift '{spec}': expected \"YYYY-MM-DD NAME\"")
    info = meta(conn)
    shifts = _shifts(info)
    if m.group(2) not in shifts:
        known = ", ".join(shifts) or "none defined in the site file"
        raise ReportError(f"--shift '{spec}': unknown shift '{m.group(2)}' (known: {known})")
    try:
        day = datetime.strptime(m.group(1), "%Y-%m-%d").replace(tzinfo=zone(info.get("timezone", "UTC")))
        return _window(day, *shifts[m.group(2)])
    except (ValueError, OverflowError):
        raise ReportError(f"--shift '{spec}': '{m.group(1)}' is not a date this report can cover") from None


def _shift_windows(conn: sqlite3.Connection, now: float) -> list[tuple[float, float, str]]:
    """Every window of the site's shifts that began within two days before `now` (or soon after)."""
    info = meta(conn)
    tz = zone(info.get("timezone", "UTC"))
    out = []
    for name, (start_hm, hours) in _shifts(info).items():
        for back in range(-1, 4):           # a night shift may have begun yesterday, a long one before
            day = datetime.fromtimestamp(now, tz) - timedelta(days=back)
            begin, end = _window(day, start_hm, hours)
            out.append((begin, end, f"{datetime.fromtimestamp(begin, tz):%Y-%m-%d} {name}"))
    return out


def current_shift(conn: sqlite3.Connection, now: float) -> tuple[float, float, str]:
    """The site's shift containing `now`, with its "DATE NAME" label (the last 12 hours when none does)."""
    running = [w for w in _shift_windows(conn, now) if w[0] <= now < w[1]]
    return max(running) if running else (now - 12 * 3600, now, "last 12 h")


def last_finished_shift(conn: sqlite3.Connection, now: float) -> tuple[float, float, str]:
    """The site's most recent shift that ended by `now`, with its "DATE NAME" label (DESIGN §4: the last
    12 hours when the site has no shifts)."""
    done = [w for w in _shift_windows(conn, now) if w[1] <= now]
    return max(done, key=lambda w: (w[1], w[0])) if done else (now - 12 * 3600, now, "last 12 h")


def hottest(conn: sqlite3.Connection, start: float, end: float, peaks: dict[int, float] | None = None,
            stats: WindowStats | None = None) -> tuple[Snapshot | None, float | None]:
    """The room with each card at its hottest reading of the window (for the report's heatmap), and the
    time of the hottest reading. `peaks` (card id → °C, Report.card_peak_c) saves reading them again."""
    snap = read_snapshot(conn, now=end)
    if not snap.card_node:
        return None, None
    stats = stats or window_stats(conn, start, end)     # Report.stats: the build has read them already
    peak: dict[int, float | None] = dict(peaks) if peaks else dict(stats.temp_max)
    snap.metrics["temperature_c"] = np.array(
        [np.nan if peak.get(int(cid)) is None else peak[int(cid)] for cid in snap.card_id], dtype=np.float32)
    snap.stale = np.zeros(len(snap.card_node), dtype=bool)
    return snap, stats.hottest_at


def add_handover_note(conn: sqlite3.Connection, author: str, text: str, now: float | None = None) -> None:
    """A note for the next shift; it appears in that shift's report."""
    conn.execute("INSERT INTO handover_notes(ts, author, text) VALUES (?, ?, ?)",
                 (time.time() if now is None else now, author, text))


EARLIEST = 0.0                      # 1970-01-01: the store holds nothing older
LATEST = 253_402_128_000.0          # 9999-12-30 UTC: a date every timezone can still show


def parse_when(text: str, tz_name: str, what: str = "") -> float:
    """An ISO date-time (site timezone when it has none) → unix seconds; anything else is one line of
    ReportError naming the option (`what`, e.g. "--from")."""
    name = f"{what} '{text}'" if what else f"'{text}'"
    try:
        when = datetime.fromisoformat(text.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=zone(tz_name))
        ts = when.timestamp()
    except (ValueError, OverflowError, OSError):
        raise ReportError(f"{name}: not an ISO date-time (e.g. 2026-11-22T20:00)") from None
    if not EARLIEST <= ts <= LATEST:
        raise ReportError(f"{name}: out of range (1970-01-01 … 9999-12-30)")
    return ts


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "N/A"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def build(conn: sqlite3.Connection, start: float, end: float, lang: str = "en", by: str = "mixops",
          now: float | None = None) -> Report:
    """The report model of [start, end) from the database."""
    if end <= start:
        raise ReportError("the report window is empty (end is not after start)")
    info = meta(conn)
    now = time.time() if now is None else now
    rep = Report(lang, info.get("site_name", "?"), info.get("timezone", "UTC"), start, end, now, by,
                 "demo" in info)
    zone(rep.timezone)                      # an unknown zone is one line of bad input, before any work
    cards = conn.execute("SELECT count(*) FROM cards WHERE first_seen < ?", (end,)).fetchone()[0]
    nodes = conn.execute("SELECT count(*) FROM nodes").fetchone()[0]
    sweeps = conn.execute("SELECT count(*), sum(cards) FROM sweeps WHERE started >= ? AND started < ?",
                          (start, end)).fetchone()
    stats = rep.stats = window_stats(conn, start, end)
    got = stats.samples
    expected = (sweeps[0] or 0) * cards
    timing = inc.timing(conn, start, end)
    if sweeps[0]:
        rep.summary = {
            t("cards", lang): str(cards), t("nodes", lang): str(nodes),
            t("coverage", lang): f"{100.0 * got / expected:.1f} % ({got:,} / {expected:,})" if expected else "N/A",
            t("opened", lang): f"{timing.opened} / {timing.acknowledged} / {timing.resolved}",
            t("mtta", lang): _dur(timing.mtta_s), t("mttr", lang): _dur(timing.mttr_s),
        }
    for row in conn.execute(
            """SELECT severity, title, node, card_idx, job, state, acknowledged_by, opened_at, action FROM incidents
               WHERE opened_at < ? AND (resolved_at IS NULL OR resolved_at >= ?) AND state != 'resolved'
               AND suppressed_by IS NULL ORDER BY severity, opened_at""", (end, end)):
        sev, title, node, card, job, state, owner, opened, action = row
        rep.open_incidents.append([sev, title, f"{node or '-'}" + (f" / {card}" if card is not None else ""),
                                   job or "-", word(state, lang), owner or "-", _dur(min(end, now) - opened),
                                   word(action, lang) if action else "-"])
    for job in read_jobs(conn, min(end, now)):
        m = job.model
        in_shift = [i for i in m.interruptions if start <= i.stopped_at < end]
        ttrs = [i.time_to_resume_s for i in in_shift if i.time_to_resume_s is not None]
        g = continuity.goals(m)
        verdict = " ".join("✓" if ok else "✗" if ok is False else "–" for ok in
                             (g["ttr_le_10_min"], g["15_days_uninterrupted"], g["ettr_ge_90"]))
        # The job's name, then its composition on a second line (HTML breaks it, Markdown joins it)
        mix = job.vendors if len(job.mix) > 1 else " · ".join(vendor_label(v) for v, _ in job.mix)  # one: no repeat
        who = f"{job.name}\n" + (f"{job.cards:,} {t('cards_n', lang)}: {mix}" if mix else f"N/A {t('cards_n', lang)}")
        ettr = " / ".join("N/A" if v is None else f"{100 * v:.1f}" for v in (m.ettr_24h, m.ettr)) + " %"
        rep.jobs.append([who, word(job.state, lang), "N/A" if m.last_step is None else f"{m.last_step:,}",
                         "N/A" if m.checkpoint_age_s is None else _dur(m.checkpoint_age_s),
                         str(len(in_shift)), _dur(max(ttrs)) if ttrs else "-", ettr, verdict])
    rep.hot_racks, rep.card_peak_c = _hot_racks(conn, stats)
    rep.vendor_faults = _vendor_faults(conn, start, end)
    rep.offenders = _offenders(conn, end, lang)
    rep.isolated = _isolated(conn, start, end, lang)
    rep.links = _links(conn, start, end, lang)
    typical, rep.gaps = _gaps(rep, conn, min(end, now))
    for node, bad, last_error in conn.execute(
            """SELECT o.node, count(*), (SELECT last_error FROM nodes WHERE name = o.node) FROM node_outcomes o
               JOIN sweeps s ON s.id = o.sweep_id WHERE s.started >= ? AND s.started < ? AND o.status != 'ok'
               GROUP BY o.node ORDER BY 2 DESC LIMIT 20""", (start, end)):
        how_long = f"{bad} (≈ {_dur(bad * typical)})" if typical else str(bad)
        rep.collector.append([node, how_long, (last_error or "-")[:100]])
    rep.notes = [[rep.local(ts), author or "-", text] for ts, author, text in conn.execute(
        "SELECT ts, author, text FROM handover_notes WHERE ts >= ? AND ts < ? ORDER BY ts", (start, end))]
    return rep


def _hot_racks(conn: sqlite3.Connection, stats: WindowStats) -> tuple[list[list[str]], dict[int, float]]:
    """The five hottest racks of the window (max, mean °C) and each card's hottest reading.

    Every stored reading of the window counts (console.samples.window_stats: rollups for the whole hours
    already rolled up, the raw head and chunks for the rest), the current hour included: reading rollups
    alone left it out of a report made during the shift (the window's dialog) while the same window
    reported later (the CLI) had it."""
    rack_of = {int(cid): str(rack) for cid, rack in conn.execute(
        "SELECT c.id, n.rack FROM cards c JOIN nodes n ON n.name = c.node WHERE n.rack IS NOT NULL")}
    racks: dict[str, list[float]] = {}                  # rack → [max, sum, n]
    for cid, tmax in stats.temp_max.items():
        rack = rack_of.get(cid)
        if rack is None:
            continue
        acc = racks.setdefault(rack, [tmax, 0.0, 0.0])
        acc[0] = max(acc[0], tmax)
        acc[1] += stats.temp_sum.get(cid, 0.0)
        acc[2] += stats.temp_n.get(cid, 0)
    ranked = sorted(racks.items(), key=lambda kv: (-kv[1][0], -(kv[1][1] / kv[1][2] if kv[1][2] else 0.0), kv[0]))
    rows = [[rack, f"{tmax:.0f}", f"{tsum / n:.1f}" if n else "N/A"] for rack, (tmax, tsum, n) in ranked[:5]]
    return rows, dict(stats.temp_max)


def _vendor_faults(conn: sqlite3.Connection, start: float, end: float) -> list[list[str]]:
    """Faults per vendor in [start, end) and per 1,000 card-hours: every vendor on the site, 0 included."""
    hours = (end - start) / 3600.0
    cards = {str(v): int(n) for v, n in conn.execute(
        "SELECT vendor, count(*) FROM cards WHERE vendor IS NOT NULL AND first_seen < ? GROUP BY vendor", (end,))}
    vendors = dict.fromkeys(cards, 0)
    vendors.update({str(v): 0 for (v,) in conn.execute("SELECT DISTINCT vendor FROM nodes WHERE vendor IS NOT NULL")})
    for vendor, n in conn.execute(
            """SELECT coalesce(f.vendor, n.vendor, '?'), count(*) FROM faults f LEFT JOIN nodes n ON n.name = f.node
               WHERE f.ts >= ? AND f.ts < ? GROUP BY 1""", (start, end)):
        vendors[str(vendor)] = int(n)
    rows = []
    for vendor, n in sorted(vendors.items(), key=lambda kv: (-kv[1], vendor_label(kv[0]).lower())):
        card_hours = cards.get(vendor, 0) * hours
        rows.append([vendor_label(vendor), str(n), f"{card_hours:,.0f}" if card_hours else "N/A",
                     f"{1000.0 * n / card_hours:.2f}" if card_hours else "N/A"])
    return rows


# The error counters' names as the collectors store them (collectors.links: vendor names normalised), in Chinese;
# widgets translate the same names from resources/i18n/zh_CN.json ("link counter: <name>"). A name not listed is
# shown as stored.
COUNTER_NAMES_ZH = {
    "crc_errors": "CRC 错误", "replay_errors": "重传错误", "recovery_errors": "恢复错误", "symbol_error": "符号错误",
    "link_downed": "链路断开次数", "link_up_count": "链路建立次数", "link_error_recovery": "链路错误恢复次数",
    "local_link_integrity_errors": "本地链路完整性错误", "excessive_buffer_overrun_errors": "缓冲区超限错误",
    "port_rcv_errors": "端口接收错误", "port_xmit_discards": "端口发送丢弃", "mac_rx_bad_pkt_num": "MAC 接收坏包数",
    "mac_tx_bad_pkt_num": "MAC 发送坏包数", "mac_rx_fcs_err_pkt_num": "MAC 接收 FCS 错误包数",
    "roce_rx_err_pkt_num": "RoCE 接收错误包数", "roce_tx_err_pkt_num": "RoCE 发送错误包数",
    "roce_cqe_err_num": "RoCE CQE 错误数", "roce_qp_status_err_num": "RoCE QP 状态错误数",
}
TOP_COUNTERS = 3


def counter_name(name: str, lang: str) -> str:
    """A link counter's name in the report's language (as stored when it has no translation)."""
    return COUNTER_NAMES_ZH.get(name, name) if lang.startswith("zh") else name


def _links(conn: sqlite3.Connection, start: float, end: float, lang: str = "en") -> list[list[str]]:
    """Links per vendor (the node's) in [start, end): stored, down at the end, went down, flapping (the incidents'
    flap rule: that many state changes in the shift), error counters' increase and per hour, and the error
    counters that rose most (their names in the report's language). No links: no rows."""
    flap = inc.LINK_SETTINGS.flap_changes
    hours = (end - start) / 3600.0
    top: dict[str, list[str]] = {}
    for vendor, name, total in conn.execute(
            """SELECT coalesce(nd.vendor, '?'), d.name, sum(d.delta) FROM link_counter_deltas d
               JOIN links l ON l.id = d.link_id LEFT JOIN nodes nd ON nd.name = l.node
               WHERE d.ts >= ? AND d.ts < ? AND d.name NOT IN ('link_up_count', 'link_downed') AND l.first_seen < ?
               GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2""", (start, end, end)):
        names = top.setdefault(str(vendor), [])
        if len(names) < TOP_COUNTERS:
            names.append(f"{counter_name(str(name), lang)} {int(total):,}")
    rows = []
    for vendor, n, down, went, flapping, errs in conn.execute(
            """SELECT coalesce(nd.vendor, '?'), count(*), sum(l.state = 'down' AND coalesce(l.last_change, 0) < ?),
                      sum(coalesce(e.went, 0) > 0), sum(coalesce(e.n, 0) >= ?), sum(r.errs)
               FROM links l LEFT JOIN nodes nd ON nd.name = l.node
               LEFT JOIN (SELECT link_id, count(*) AS n, sum(state = 'down') AS went FROM link_events
                          WHERE ts >= ? AND ts < ? GROUP BY link_id) e ON e.link_id = l.id
               LEFT JOIN (SELECT link_id, sum(delta) AS errs FROM link_counter_deltas WHERE ts >= ? AND ts < ?
                          AND name NOT IN ('link_up_count', 'link_downed') GROUP BY link_id) r ON r.link_id = l.id
               WHERE l.first_seen < ? GROUP BY 1 ORDER BY 1""", (end, flap, start, end, start, end, end)):
        rows.append([vendor_label(str(vendor)), str(n), str(down or 0), str(went or 0), str(flapping or 0),
                     "N/A" if errs is None else f"{int(errs):,}",
                     "N/A" if errs is None or hours <= 0 else f"{int(errs) / hours:,.1f}",
                     "; ".join(top.get(str(vendor), [])) or "N/A"])
    return rows


def _offenders(conn: sqlite3.Connection, end: float, lang: str) -> list[list[str]]:
    """Repeat offenders: kind, the card's serial (with where it sits) or the node, incidents in 30 days."""
    rows = []
    for kind, name, count in inc.repeat_offenders(conn, end):
        where = name
        if kind == "card":
            at = conn.execute("SELECT node, idx FROM cards WHERE serial = ? ORDER BY last_seen DESC LIMIT 1",
                              (name,)).fetchone()
            where = f"{name} ({at[0]} / {at[1]})" if at else name
        rows.append([t("kind_card" if kind == "card" else "kind_node", lang), where, str(count)])
    return rows


GENERIC_CODES = ("HEALTH",)          # collectors.ladder: the card's state, not the vendor's reason for it


def _isolated(conn: sqlite3.Connection, start: float, end: float, lang: str) -> list[list[str]]:
    """Cards to isolate or replace in [start, end), one row each, with the vendor codes that explain it.

    A card the vendor tool reports as failed gets the generic HEALTH fault; the code that says why (Xid 79,
    an Ascend alarm such as 8C084E00) is another fault of the same card, in the window or the day before."""
    cards: dict[tuple[str, int | None], tuple[list[str], str]] = {}
    for node, card, code, action in conn.execute(
            """SELECT node, card_idx, code, action FROM faults WHERE ts >= ? AND ts < ?
               AND action IN ('isolate', 'replace') ORDER BY ts""", (start, end)):
        codes, worst = cards.get((node, card), ([], action))
        codes.append(str(code))
        cards[(node, card)] = (codes, "replace" if "replace" in (worst, action) else worst)
    rows = []
    for (node, card), (codes, action) in sorted(cards.items(), key=lambda kv: (kv[0][0], kv[0][1] or -1)):
        named = [c for c in codes if c not in GENERIC_CODES]
        if len(named) < len(codes):
            named += [str(c) for (c,) in conn.execute(
                f"""SELECT code FROM faults WHERE node = ? AND card_idx IS ? AND ts >= ? AND ts < ?
                    AND code NOT IN ({",".join("?" * len(GENERIC_CODES))}) ORDER BY ts DESC""",
                (node, card, start - 86400, end, *GENERIC_CODES))]
        shown = list(dict.fromkeys(named)) or list(dict.fromkeys(codes))
        rows.append([node, "-" if card is None else str(card), ", ".join(shown), word(action, lang)])
    return rows


def _gaps(rep: Report, conn: sqlite3.Connection, until: float) -> tuple[float | None, list[str]]:
    """The typical spacing of sweeps in the window and its gaps (longer than 3 × that, and 2 min), with
    back-to-back or overlapping gaps merged into one range."""
    start, end = rep.start, rep.end
    times = [float(r[0]) for r in conn.execute(
        "SELECT started FROM sweeps WHERE started >= ? AND started < ? ORDER BY 1", (start, end))]
    spacing = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    typical = spacing[len(spacing) // 2] if spacing else None
    if typical is None:
        return None, []
    # the collector may have been down at the edges: look at the sweeps just outside the window too
    before = conn.execute("SELECT max(started) FROM sweeps WHERE started < ?", (start,)).fetchone()[0]
    after = conn.execute("SELECT min(started) FROM sweeps WHERE started >= ?", (end,)).fetchone()[0]
    points = ([float(before)] if before is not None else []) + times + [
        float(after) if after is not None else max(until, times[-1])]
    limit = max(3 * typical, 120.0)
    merged: list[list[float]] = []                       # [from, to, intervals, longest]
    for a, b in zip(points, points[1:], strict=False):
        a, b = max(a, start), min(b, until)
        if b - a <= limit:
            continue
        if merged and a <= merged[-1][1]:
            last = merged[-1]
            last[1], last[2], last[3] = max(last[1], b), last[2] + 1, max(last[3], b - a)
        else:
            merged.append([a, b, 1, b - a])
    fmt = "%H:%M" if end - start <= 86400 else "%m-%d %H:%M"
    out = []
    for a, b, n, longest in merged:
        text = f"{rep.local(a, fmt)} – {rep.local(b, fmt)} ({_dur(b - a)}"
        if n > 1:
            text += "; " + t("gap_merged", rep.lang).format(n=int(n), longest=_dur(longest))
        out.append(text + ")")
    return typical, out


# ---- Markdown and HTML ------------------------------------------------------------------------------

# `(`, `#`, `+`, `-` only act after a `]` or at the start of a line, which an escaped cell never has
MD_SPECIAL = frozenset("\\`*_[]{}!|~")
MD_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md_escape(value: str) -> str:
    """A value from the database as literal Markdown text: every metacharacter backslash-escaped (a card
    serial `[x](http://…)` must not become a link, `*` no emphasis), `&<>` as entities (no raw HTML), one
    line (a line break would end a table row)."""
    out = []
    for ch in value.replace("\r", "").replace("\n", " — "):
        out.append(MD_ENTITY.get(ch) or ("\\" + ch if ch in MD_SPECIAL else ch))
    return "".join(out)


def _md_cell(value: str) -> str:
    """Markdown table cell: metacharacters, pipes and HTML neutralised, one line."""
    return md_escape(value)


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    head = head or [""] * len(rows[0])
    out = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return out


def _sections(rep: Report) -> list[tuple[str, list[str], list[list[str]], str | None]]:
    """(title, header, rows, text) per section, shared by Markdown and HTML."""
    L = rep.lang
    summary_rows = [[k, v] for k, v in rep.summary.items()]
    vendor_rows = rep.vendor_faults
    return [
        (t("summary", L), [], summary_rows, None),
        (t("open", L), [t(k, L) for k in ("severity", "title_col", "where", "job", "state", "owner", "age", "next")],
         rep.open_incidents, None),
        (t("jobs", L), [t(k, L) for k in ("job_cards", "state", "last_step", "ckpt_age", "stops", "worst_ttr",
                                          "ettr", "goals")], rep.jobs,
         t("goals_legend", L) if rep.jobs else t("jobs_none", L)),
        (t("hot", L), [t("rack", L), t("max_temp", L), t("avg_temp", L)], rep.hot_racks, None),
        (t("faults", L), [t("vendor", L), t("count", L), t("card_hours", L), t("rate", L)], vendor_rows, None),
        (t("offenders", L), [t("kind", L), t("serial_or_node", L), t("incidents_30d", L)], rep.offenders, None),
        (t("isolated", L), [t("node", L), t("card", L), t("code", L), t("next", L)], rep.isolated, None),
        (t("links_section", L), [t(k, L) for k in ("vendor", "links_n", "links_down", "links_went_down",
                                                    "links_flapping", "link_errors", "link_errors_rate",
                                                    "link_counters_top")],
         rep.links, None),
        (t("collector", L), [t("node", L), t("failed_for", L), t("last_error", L)], rep.collector,
         (t("gaps", L) + ": " + "; ".join(rep.gaps)) if rep.gaps else None),
        (t("notes", L), [t("time", L), t("author", L), t("note", L)], rep.notes, None),
    ]


def to_markdown(rep: Report) -> str:
    """Plain, diff-friendly Markdown (no images)."""
    L = rep.lang
    lines = [f"# {t('title', L)}", ""]
    if rep.demo:
        lines += [f"**{t('demo', L)}**", ""]
    lines += [f"- {t('site', L)}: {_md_cell(rep.site)}",
              f"- {t('window', L)}: {rep.local(rep.start)} – {rep.local(rep.end)} ({rep.timezone})",
              f"- {t('generated', L)}: {rep.local(rep.generated_at)} {t('by', L)} {_md_cell(rep.by)}", ""]
    for title, head, rows, text in _sections(rep):
        lines += [f"## {title}", ""]
        if rows:
            lines += _md_table(head, rows)
        elif not text:
            lines.append(t("no_data", L))
        if text:
            lines += ["", _md_cell(text)]
        lines.append("")
    return "\n".join(lines)


# Latin first, CJK second: digits and Latin letters come from a Latin font. Qt's PDF engine gives the digits
# of Noto Sans CJK SC no text in the PDF's text layer (pdftotext read "Shift window: - - :"), so a
# handover PDF could not be searched for a time or a node name (issue 16 #11).
FONT_FAMILIES = ("Noto Sans", "DejaVu Sans", "Liberation Sans", "Arial", "Noto Sans CJK SC", "Source Han Sans SC",
                 "WenQuanYi Micro Hei", "Microsoft YaHei")
CSS = "body{font-family:" + ",".join(f"'{f}'" for f in FONT_FAMILIES) + ",sans-serif;" + """font-size:10pt;color:#222;margin:18px}
h1{font-size:16pt;margin:0 0 4px}h2{font-size:12pt;border-bottom:1px solid #999;margin:14px 0 4px}
table{border-collapse:collapse;width:100%;margin:4px 0}th,td{border:1px solid #bbb;padding:2px 5px;
text-align:left;vertical-align:top}th{background:#eee}.demo{background:#b8860b;color:#000;padding:2px 8px;
font-weight:bold}.muted{color:#666}.sub{color:#555;font-size:8pt}.P1{color:#d73027;font-weight:bold}.P2{color:#f46d43;font-weight:bold}"""


def _html_cell(value: str) -> str:
    """Escaped; a cell's second line (a job's composition) is set smaller under the first."""
    first, _, rest = value.partition("\n")
    return html.escape(first) + (f"<br><span class='sub'>{html.escape(rest)}</span>" if rest else "")


def to_html(rep: Report, with_image: bool = True) -> str:
    """One self-contained HTML file: CSS inline, the heatmap as a data URI, every value escaped."""
    L = rep.lang
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='{'zh-CN' if L.startswith('zh') else 'en'}'><head><meta charset='utf-8'>"
             f"<title>{e(t('title', L))} — {e(rep.site)}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(t('title', L))}</h1>"]
    if rep.demo:
        parts.append(f"<p><span class='demo'>{e(t('demo', L))}</span></p>")
    parts.append(f"<p>{e(t('site', L))}: <b>{e(rep.site)}</b><br>{e(t('window', L))}: {e(rep.local(rep.start))} – "
                 f"{e(rep.local(rep.end))} ({e(rep.timezone)})<br>{e(t('generated', L))}: "
                 f"{e(rep.local(rep.generated_at))} {e(t('by', L))} {e(rep.by)}</p>")
    for title, head, rows, text in _sections(rep):
        parts.append(f"<h2>{e(title)}</h2>")
        if rows:
            # <thead>: a table broken across PDF pages repeats its header row
            parts.append("<table width='100%'>" + ("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head)
                                                  + "</tr></thead>" if head else ""))
            wide = " width='30%'" if title == t("jobs", L) else ""
            for r in rows:
                cls = f" class='{r[0]}'" if r and r[0] in ("P1", "P2") else ""
                parts.append("<tr>" + "".join(f"<td{(cls + wide) if i == 0 else ''}>{_html_cell(c)}</td>"
                                              for i, c in enumerate(r)) + "</tr>")
            parts.append("</table>")
        elif not text:
            parts.append(f"<p class='muted'>{e(t('no_data', L))}</p>")
        if text:
            parts.append(f"<p class='muted'>{e(text)}</p>")
        if title == t("hot", L) and with_image and rep.heatmap_png:
            data = base64.b64encode(rep.heatmap_png).decode("ascii")
            when = rep.local(rep.heatmap_at) if rep.heatmap_at else ""
            parts.append(f"<p class='muted'>{e(t('heatmap', L))} {e(when)}</p>"
                         f"<img src='data:image/png;base64,{data}' width='640'>")
    parts.append("</body></html>")
    return "".join(parts)
