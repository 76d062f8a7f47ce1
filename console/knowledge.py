"""What a fault code means and what to do, in English and Simplified Chinese, for the on-call view.

Entries follow NVIDIA's Xid catalog for the codes operators meet on training clusters, Ascend's health
levels, and mixops's own conditions (ECC, thermal, node unreachable, host key, collector failures).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    """Meaning and recommended action in both languages."""

    meaning_en: str
    meaning_zh: str
    action_en: str
    action_zh: str

    def meaning(self, lang: str) -> str:
        """The meaning in a language ('zh_CN' or English)."""
        return self.meaning_zh if lang.startswith("zh") else self.meaning_en

    def action(self, lang: str) -> str:
        """The recommended action in a language."""
        return self.action_zh if lang.startswith("zh") else self.action_en


XID: dict[int, Entry] = {
    13: Entry("Graphics engine exception: usually the application (bad kernel, out-of-range access).",
              "图形引擎异常：通常由应用程序引起（错误的内核或越界访问）。",
              "Check the job's log; if it repeats on one card with different jobs, run diagnostics.",
              "检查作业日志；若同一张卡在不同作业上反复出现，运行诊断。"),
    31: Entry("GPU memory page fault: usually an illegal address in the application.",
              "GPU 显存页错误：通常是应用访问了非法地址。",
              "Check the job; repeated on one card across jobs → reset the card and run diagnostics.",
              "检查作业；若同卡跨作业反复出现 → 重置该卡并运行诊断。"),
    43: Entry("GPU stopped processing: the application was reset (often after a user error).",
              "GPU 停止处理：应用被重置（常见于用户程序错误之后）。",
              "Watch; no action unless it repeats.", "观察；除非反复出现，否则无需处理。"),
    45: Entry("Preemptive cleanup after earlier errors (the job was killed).",
              "先前错误后的抢占式清理（作业已被终止）。",
              "Look at the Xid that came before it.", "查看在此之前出现的 Xid。"),
    48: Entry("Double-bit (uncorrectable) ECC error in GPU memory.",
              "GPU 显存发生双比特（不可纠正）ECC 错误。",
              "Restart the job elsewhere, reset the card (row remap); repeated → replace (RMA).",
              "将作业迁移重启，重置该卡（行重映射）；反复出现 → 返修更换（RMA）。"),
    63: Entry("ECC page retirement / row remapping recorded (pending until reset).",
              "已记录 ECC 页退役/行重映射（重置后生效）。",
              "Watch; reset the card at the next maintenance window.", "观察；在下个维护窗口重置该卡。"),
    64: Entry("ECC page retirement / row remapping failed.", "ECC 页退役/行重映射失败。",
              "Drain the card and replace it (RMA).", "隔离该卡并返修更换（RMA）。"),
    74: Entry("NVLink error: a link between GPUs is degraded or down.", "NVLink 错误：GPU 间链路降级或断开。",
              "Reset the cards on the link; repeated → check the baseboard / NVSwitch.",
              "重置该链路上的卡；反复出现 → 检查基板/NVSwitch。"),
    79: Entry("GPU has fallen off the bus: the node cannot reach the card any more.",
              "GPU 已从总线掉卡：节点无法再访问该卡。",
              "Move the job off the node and reboot it; repeated → replace the card (RMA).",
              "将作业迁出该节点并重启节点；反复出现 → 返修更换该卡（RMA）。"),
    92: Entry("High single-bit ECC error rate.", "单比特 ECC 错误率过高。",
              "Watch the card; schedule a reset.", "观察该卡；安排重置。"),
    94: Entry("Contained ECC error: only the affected application was stopped.",
              "受控 ECC 错误：仅受影响的应用被终止。",
              "Restart the job; reset the card when it is drained.", "重启作业；卡空闲后重置。"),
    95: Entry("Uncontained ECC error: every application on the card is affected.",
              "不受控 ECC 错误：该卡上所有应用都受影响。",
              "Stop the jobs on the card and reset it; repeated → replace (RMA).",
              "停止该卡上的作业并重置；反复出现 → 返修更换（RMA）。"),
    109: Entry("Context switch timeout.", "上下文切换超时。", "Reset the card.", "重置该卡。"),
    119: Entry("GSP RPC timeout: the GPU System Processor stopped answering.",
               "GSP RPC 超时：GPU 系统处理器无响应。", "Reset the card; repeated → reboot the node.",
               "重置该卡；反复出现 → 重启节点。"),
    120: Entry("GSP error.", "GSP 错误。", "Reset the card; repeated → reboot the node.", "重置该卡；反复出现 → 重启节点。"),
    140: Entry("Unrecovered ECC error.", "未恢复的 ECC 错误。", "Reset the card; repeated → replace (RMA).",
               "重置该卡；反复出现 → 返修更换（RMA）。"),
}

CODES: dict[str, Entry] = {
    "ECC-UE": Entry("Uncorrectable ECC errors reported by the vendor tool.", "厂商工具报告了不可纠正的 ECC 错误。",
                    "Restart the job elsewhere and reset the card; repeated → replace (RMA).",
                    "将作业迁移重启并重置该卡；反复出现 → 返修更换（RMA）。"),
    "THERMAL": Entry("The card runs above its temperature limit (cooling, fan or cold plate).",
                     "卡温度超过上限（散热、风扇或冷板问题）。",
                     "Check the rack's cooling and airflow; move the job if it keeps rising.",
                     "检查机柜散热与风道；温度持续上升则迁移作业。"),
    "HEALTH": Entry("The vendor tool reports the card in a failed state.", "厂商工具报告该卡处于故障状态。",
                    "Isolate the card and run the vendor's diagnostics.", "隔离该卡并运行厂商诊断。"),
    "TEMP": Entry("Temperature threshold breached.", "温度超过阈值。",
                  "Check cooling in the rack; the incident resolves itself when the card cools down.",
                  "检查机柜散热；卡降温后事件自动恢复。"),
    "POWER": Entry("Board power above the vendor's limit.", "板卡功耗超过厂商上限。",
                   "Check power capping and the rack's PDU load.", "检查功率封顶设置与机柜 PDU 负载。"),
    "MEMORY": Entry("Accelerator memory almost full.", "加速卡显存即将用满。",
                    "Information: the job may fail with out-of-memory.", "提示：作业可能因显存不足失败。"),
    "NODE-UNREACHABLE": Entry("The node does not answer over SSH (down, network, or sshd).",
                              "节点 SSH 无应答（宕机、网络或 sshd 问题）。",
                              "Check the node's BMC/console and network; its jobs are at risk.",
                              "检查节点的 BMC/控制台与网络；其上作业面临风险。"),
    "COLLECTOR": Entry("The vendor tool on the node failed, hung or printed output mixops cannot read.",
                       "节点上的厂商工具失败、挂起或输出无法解析。",
                       "Run the tool by hand on the node; check driver and tool versions.",
                       "在节点上手动运行该工具；检查驱动与工具版本。"),
    "ssh-hostkey-changed": Entry("The node's SSH host key changed: reinstalled, or someone in the middle.",
                                 "节点 SSH 主机密钥已变更：可能重装系统，或存在中间人攻击。",
                                 "Verify with the node's owner before trusting the new key.",
                                 "信任新密钥前先与节点负责人核实。"),
    "RACK-UNREACHABLE": Entry("Several nodes of one rack stopped answering at once (power or top-of-rack switch).",
                              "同一机柜多个节点同时无应答（电源或接入交换机问题）。",
                              "Check the rack's PDU and switch before the single nodes.",
                              "先检查机柜 PDU 与交换机，再逐个排查节点。"),
    "JOB-STALLED": Entry("The training job stopped reporting progress for 5× its usual step-report interval "
                         "(a hung collective, a stuck data loader or storage).",
                         "训练作业超过其常规进度间隔 5 倍未报告进度（集合通信挂起、数据加载或存储卡住）。",
                         "Look at the job's log and the cards of its nodes; restart from the last checkpoint if it "
                         "does not recover — every minute costs the job's cards.",
                         "查看作业日志及其节点的加速卡；若无法恢复则从最近检查点重启——每分钟都在消耗全部卡时。"),
    "JOB-DOWN": Entry("The training job crashed or is restarting (fatal error, agent restart or checkpoint load "
                      "in its log).",
                      "训练作业崩溃或正在重启（日志中出现致命错误、代理重启或检查点加载）。",
                      "Find the failed node or card (cause on the incident), isolate it and check that the job "
                      "resumes within 10 minutes.",
                      "找出故障节点或卡（见事件原因），隔离后确认作业在 10 分钟内恢复。"),
}

ASCEND = Entry("Ascend NPU health alarm; the code's handling level comes from the Ascend device plugin.",
               "昇腾 NPU 健康告警；处理级别来自昇腾设备插件的故障码表。",
               "Follow the ladder action (restart job / reset NPU / isolate); see npu-smi info -t health.",
               "按处置建议执行（重启作业/复位 NPU/隔离）；参见 npu-smi info -t health。")
GENERIC = Entry("A fault reported by the vendor tool.", "厂商工具报告的故障。",
                "Follow the ladder action shown.", "按显示的处置建议执行。")


def lookup(code: str | None) -> Entry:
    """The entry for a fault code ('Xid 79', 'ECC-UE', an Ascend hex code, …)."""
    if not code:
        return GENERIC
    if code.startswith(("Xid ", "SXid ")):
        try:
            return XID.get(int(code.split()[1]), GENERIC)
        except ValueError:
            return GENERIC
    if code in CODES:
        return CODES[code]
    if len(code) == 8 and all(c in "0123456789ABCDEFabcdef" for c in code):
        return ASCEND
    return GENERIC


def all_entries() -> list[Entry]:
    """Every entry (for the both-languages test)."""
    return [*XID.values(), *CODES.values(), ASCEND, GENERIC]
