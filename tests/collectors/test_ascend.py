"""Ascend parsers on recorded-format fixtures."""

from __future__ import annotations

import pytest

from collectors import ascend
from collectors.model import Action, Health, Severity
from tests.conftest import fixture_text


@pytest.mark.parametrize(("fixture", "expected"), [
    ("ascend/910b2c-23.0.3-info.txt", [
        (0, 0, "910B2C", "0000:c1:00.0", Health.OK, 312.4, 61.0, 92.0, 52110.0, 65536.0),
        (1, 0, "910B2C", "0000:c2:00.0", Health.WARNING, 305.9, 66.0, 90.0, 51002.0, 65536.0),
        (6, 0, "910B2C", "0000:81:00.0", Health.OK, None, 48.0, 0.0, 3316.0, 65536.0),
    ]),
    ("ascend/310-20.2.0-info.txt", [
        (3, 0, "310", "0000:da:00.0", Health.OK, 12.1, 52.0, 10.0, 1880.0, 8192.0),
        (3, 1, "310", "0000:db:00.0", Health.CRITICAL, 12.1, 57.0, 0.0, 2703.0, 8192.0),
    ]),
    ("ascend/910a-21.0.rc1-info.txt", [
        (2, 0, "910A", "0000:3d:00.0", Health.OK, 70.3, 33.0, 45.0, 20001.0, 32768.0),
    ]),
    # A3: two dies per NPU, card power once ('-' on the second die); the last die's temperature is blank
    # and stays None (before: the Hugepages pair shifted into Temp(C) and read 0)
    ("ascend/910-93-25.5.1-info.txt", [
        (0, 0, "Ascend910", "0000:9d:00.0", Health.OK, 182.6, 44.0, 71.0, 51200.0, 65536.0),
        (0, 1, "Ascend910", "0000:9f:00.0", Health.OK, None, 46.0, 68.0, 50112.0, 65536.0),
        (1, 0, "Ascend910", "0000:99:00.0", Health.WARNING, 150.2, 52.0, 0.0, 3120.0, 65536.0),
        (1, 1, "Ascend910", "0000:9b:00.0", Health.OK, None, None, 0.0, 2876.0, 65536.0),
    ]),
    # 25.6: four cells, no chip column, `NPU Util(%)` for AICore(%)
    ("ascend/950dt-25.6.rc1-info.txt", [
        (0, 0, "Ascend950DT", None, Health.OK, 371.2, 47.0, 93.0, 70211.0, 86016.0),
        (3, 0, "Ascend950DT", None, Health.OK, None, 39.0, 0.0, 5120.0, 86016.0),
    ]),
])
def test_info_table_cards(fixture, expected):
    result = ascend.parse_info(fixture_text(fixture))
    assert result.warnings == ()
    got = [(c.index, c.chip, c.model, c.bus_id, c.health, c.power_w, c.temperature_c, c.utilization_pct,
            c.memory_used_mib, c.memory_total_mib) for c in result.cards]
    assert got == expected


def test_health_alarm_gives_a_fault_with_its_code():
    result = ascend.parse_health(fixture_text("ascend/health-alarm.txt"), 1, 0)
    (fault,) = result.faults
    assert fault.code == "80E01801"
    # action from the device plugin's catalog (RestartBusiness), severity from the chip's Alarm health
    assert fault.action is Action.RESTART_JOB and fault.severity is Severity.CRITICAL
    assert fault.card_index == 1 and "uncorrectable ECC" in fault.message


def test_health_ok_has_no_fault():
    assert ascend.parse_health(fixture_text("ascend/health-ok.txt"), 0, 0).faults == ()


def test_unhealthy_chips_get_a_health_query_next_sweep():
    info = ascend.parse_info(fixture_text("ascend/910b2c-23.0.3-info.txt"))
    plan = ascend.plan(ascend.unhealthy_chips(info))
    assert [c.shell for c in plan] == ["npu-smi info", "npu-smi info -t health -i 1 -c 0"]


def test_not_a_table_warns():
    result = ascend.parse_info("npu-smi: command failed\n")
    assert result.cards == () and "no npu-smi table header" in result.warnings[0]


def test_catalog_levels_map_to_the_ladder():
    assert ascend.fault_ladder("80E21007", Health.OK) == (Severity.INFO, Action.IGNORE)          # NotHandle
    assert ascend.fault_ladder("80E18000", Health.WARNING)[1] is Action.RESET_CARD               # RestartNPU
    assert ascend.fault_ladder("FFFFFFFF", Health.CRITICAL) == (Severity.CRITICAL, Action.RESET_CARD)


def test_unknown_metric_column_is_warned_and_not_read():
    text = fixture_text("ascend/910b2c-23.0.3-info.txt").replace("AICore(%)", "AIcube(%)")
    result = ascend.parse_info(text)
    assert result.cards and all(c.utilization_pct is None for c in result.cards)
    assert any("'aicube(%)'" in w and "not read" in w for w in result.warnings)
