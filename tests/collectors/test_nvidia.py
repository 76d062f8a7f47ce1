"""NVIDIA parsers on recorded-format fixtures."""

from __future__ import annotations

import pytest

from collectors import nvidia
from collectors.model import Action, Health, Severity
from tests.conftest import fixture_text


@pytest.mark.parametrize(("fixture", "fields", "expected"), [
    ("nvidia/h100-565-query-noheader-nounits.csv", nvidia.QUERY_FIELDS, [
        (0, "NVIDIA H100 80GB HBM3", "1654922001234", "0000:18:00.0", 61.0, 97.0, 71234.0, 81559.0, 652.31, 0, Health.OK),
        (1, "NVIDIA H100 80GB HBM3", "1654922001235", "0000:2a:00.0", 58.0, 95.0, 70111.0, 81559.0, 640.02, 0, Health.OK),
        # serial [N/A] falls back to the UUID; power and ECC not reported stay None
        (2, "NVIDIA H100 80GB HBM3", "GPU-5b2f1c9e-7a61-4c1d-9e0a-1f2e3d4c5b62", "0000:3a:00.0", 44.0, 0.0, 4.0,
         81559.0, None, None, Health.OK),
        # an ECC total is a counter (the ladder reports it; a sweep counts its increase), not a health state
        (3, "NVIDIA H100 80GB HBM3", "1654922001237", "0000:5d:00.0", 83.0, 100.0, 80011.0, 81559.0, 699.9, 2,
         Health.OK),
    ]),
    ("nvidia/l20-535-query-header-units.csv", None, [
        (0, "NVIDIA L20", None, "0000:16:00.0", 41.0, 3.0, 12.0, 46068.0, None, None, Health.OK),
        (1, "NVIDIA L20", None, "0000:19:00.0", 66.0, 88.0, 30110.0, 46068.0, None, None, Health.OK),
    ]),
])
def test_query_csv_cards(fixture, fields, expected):
    result = nvidia.parse_query_csv(fixture_text(fixture), fields)
    assert result.warnings == ()
    got = [(c.index, c.model, c.serial, c.bus_id, c.temperature_c, c.utilization_pct, c.memory_used_mib,
            c.memory_total_mib, c.power_w, c.ecc_uncorrected, c.health) for c in result.cards]
    assert got == expected


def test_hung_card_values_are_not_metrics():
    result = nvidia.parse_query_csv(fixture_text("nvidia/hung-card-query.csv"))
    (card,) = result.cards
    assert card.power_w is None and card.temperature_c is None
    assert card.health is Health.CRITICAL
    assert any("impossible values" in w and "65535" in w for w in result.warnings)


def test_wrong_field_count_warns_with_the_line():
    result = nvidia.parse_query_csv("0, NVIDIA H100, 42\n")
    assert result.cards == ()
    assert "expected 11 fields" in result.warnings[0] and "NVIDIA H100" in result.warnings[0]


def test_kernel_log_xids_map_to_the_ladder():
    result = nvidia.parse_kernel_log(fixture_text("nvidia/kernel-xid.log"),
                                     {"0000:18:00.0": 0, "0000:5d:00.0": 3, "0000:2a:00.0": 1})
    codes = [(f.code, f.card_index, f.action, f.severity) for f in result.faults]
    assert codes == [
        ("Xid 79", 0, Action.REBOOT_NODE, Severity.CRITICAL),
        ("Xid 48", 3, Action.RESET_CARD, Severity.CRITICAL),
        ("Xid 13", 1, Action.WATCH, Severity.WARNING),
    ]
    assert result.faults[0].ts == pytest.approx(1795281002.118201)
    assert result.faults[2].ts == pytest.approx(1795281180.0)
    assert "fallen off the bus" in result.faults[0].message


def test_sweep_sections_mark_xid_card_critical():
    sections = {"query": fixture_text("nvidia/h100-565-query-noheader-nounits.csv"),
                "kmsg": fixture_text("nvidia/kernel-xid.log")}
    result = nvidia.parse(sections)
    assert result.cards[0].health is Health.CRITICAL
    assert result.cards[1].health is Health.OK  # Xid 13 is application-side: watch only
    assert len(result.faults) == 3


def test_xids_outside_our_table_take_nvidia_catalog_resolution():
    from collectors.nvidia import xid_ladder

    assert xid_ladder(79)[1].value == "reboot_node"
    severity, action, meaning = xid_ladder(8)          # not in mixops's table, in NVIDIA's catalog
    assert action.value in {"ignore", "watch", "restart_job", "reset_card", "reboot_node", "isolate"} and meaning
    assert xid_ladder(99999)[1].value == "watch"


def test_xml_mig_instances_are_not_the_gpu_and_index_is_the_enumeration():
    """Issue 16 (b): <mig_devices> comes before the GPU's own fb_memory_usage; minor_number is the /dev node."""
    from collectors import smixml

    text = fixture_text("nvidia/a100-mig-535-q-x-v12.xml")
    for reader in (smixml.parse_xml, smixml.parse_xml_tree):
        result = reader(text, "nvidia", "nvidia-smi -q -x")
        got = [(c.index, c.bus_id, c.memory_used_mib, c.memory_total_mib, c.utilization_pct, c.ecc_uncorrected)
               for c in result.cards]
        assert got == [(0, "0000:07:00.0", 24217.0, 40960.0, None, 0), (1, "0000:0f:00.0", 4.0, 40960.0, 0.0, 0)]
    assert smixml.parse_xml_fast(text, "nvidia", "c") is not None


def test_table_mig_devices_are_not_cards():
    from collectors import smitable

    text = fixture_text("nvidia/h100-mig-590-table.txt")
    result = smitable.parse_smi_table(text, "nvidia", "nvidia-smi")
    got = [(c.index, c.memory_used_mib, c.memory_total_mib, c.utilization_pct, c.ecc_uncorrected, c.power_w)
           for c in result.cards]
    assert got == [(0, 51210.0, 81559.0, None, None, 212.0), (1, 4.0, 81559.0, 0.0, 0, 121.0)]
    assert result.warnings == ()
    # a capture holding only the MIG devices table gives no card (its GPU column is the parent's number)
    only_mig = text[text.index("| MIG devices:"):]
    result = smitable.parse_smi_table(only_mig, "nvidia", "nvidia-smi")
    assert result.cards == () and "sub-device" in result.warnings[0]


def test_csv_newer_power_spelling_is_read():
    """Issue 16 (c): a site asking for power.draw.instant (R550+) gets power; MIG's [N/A] util stays None."""
    result = nvidia.parse_query_csv(fixture_text("nvidia/h100-570-query-instant-power.csv"), None)
    assert [(c.index, c.power_w, c.utilization_pct, c.memory_used_mib) for c in result.cards] == [
        (0, 212.4, None, 51210.0), (1, 120.75, 0.0, 4.0)]


def test_kernel_log_command_reads_binary_logs():
    assert "grep -a -E 'NVRM: S?Xid'" in nvidia.KERNEL_LOG
    assert "\n" not in nvidia.KERNEL_LOG and "`" not in nvidia.KERNEL_LOG
