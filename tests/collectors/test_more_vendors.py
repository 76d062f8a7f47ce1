"""Cambricon, MetaX and Hygon parsers on our own fixtures: a table of expected cards per layout."""

from __future__ import annotations

import pytest

from collectors import cambricon, hygon, ladder, metax, registry
from collectors.model import Health
from console.parse_cmd import detect
from tests.conftest import fixture_text

# (fixture, parser, expected cards as (index, model, temperature_c, utilization_pct, memory_used_mib,
#  memory_total_mib, power_w, health))
CASES = [
    ("cambricon/mlu370-x8-v5.txt", cambricon.parse_table, [
        (0, "MLU370-X8", 67.0, 87.0, 20110.0, 23374.0, 201.0, Health.OK),
        (1, "MLU370-X8", 71.0, 91.0, 21003.0, 23374.0, 214.0, Health.OK),
        (2, "MLU370-X8", None, None, None, 23374.0, None, Health.UNKNOWN),
    ]),
    ("cambricon/mlu370-x4-v4.txt", cambricon.parse_table, [
        (0, "MLU370-X4", 52.0, 45.0, 9120.0, 23308.0, 98.0, Health.OK),
        (1, "MLU370-X4", 34.0, 0.0, 0.0, 23308.0, 27.0, Health.OK),
    ]),
    ("metax/c500-2.2.9-table.txt", metax.parse_table, [
        (0, "MetaX C500", 74.0, 97.0, 60112.0, 65536.0, 312.0, Health.OK),
        (1, "MetaX C500", 36.0, 0.0, 826.0, 65536.0, 61.0, Health.WARNING),
    ]),
    ("metax/c500-2.0-table.txt", metax.parse_table, [
        (0, "MXC500", 41.0, 12.0, 4096.0, 65536.0, 88.0, Health.OK),
        (1, "MXC500", None, None, None, None, None, Health.UNKNOWN),
    ]),
    ("metax/n260-show.txt", metax.parse_show, [
        (0, "MXN260", 58.5, 63.0, 32768.0, 65536.0, None, Health.OK),
    ]),
    ("hygon/k100-dtk24-show.json", hygon.parse_json, [
        (0, "K100_AI", 66.0, 94.0, 61000.0, 65520.0, 233.0, Health.OK),
        (1, "K100_AI", 41.0, 0.0, 2.0, 65520.0, None, Health.OK),
    ]),
    ("hygon/dcu-table.txt", hygon.parse_table, [
        (0, None, 61.0, 97.0, None, None, 210.0, Health.OK),
        (1, None, 30.0, 0.0, None, None, None, Health.OK),
    ]),
]


@pytest.mark.parametrize(("name", "parser", "expected"), CASES, ids=[c[0] for c in CASES])
def test_expected_cards(name, parser, expected):
    result = parser(fixture_text(name))
    assert result.warnings == ()
    got = [(c.index, c.model, c.temperature_c, c.utilization_pct, c.memory_used_mib, c.memory_total_mib,
            c.power_w, c.health) for c in result.cards]
    assert got == expected


def test_cnmon_ecc_raises_a_fault_on_the_ladder():
    result = ladder.apply(cambricon.parse_table(fixture_text("cambricon/mlu370-x8-v5.txt")))
    assert [(f.code, f.card_index, f.action.value) for f in result.faults] == [("ECC-UE", 1, "reset_card")]


def test_hygon_json_with_banner_and_truncation():
    text = fixture_text("hygon/k100-dtk24-show.json")
    result = hygon.parse_json(text[: text.index('"card1"') + 40])
    assert [c.index for c in result.cards] == [0]
    assert "read 1 complete card object" in result.warnings[0]


@pytest.mark.parametrize("text", ["", "garbage\n", "{", "| x |\n|===|\n| 1 |"])
def test_unreadable_text_warns_with_vendor_and_command(text):
    for parser, vendor in ((cambricon.parse_table, "cambricon"), (metax.parse_table, "metax"),
                           (hygon.parse_json, "hygon"), (hygon.parse_table, "hygon")):
        result = parser(text)
        assert result.cards == ()
        if text.strip():
            assert result.warnings and result.warnings[0].startswith(f"{vendor}: ")


@pytest.mark.parametrize(("name", "vendor"), [
    ("cambricon/mlu370-x8-v5.txt", "cambricon"), ("metax/c500-2.2.9-table.txt", "metax"),
    ("metax/n260-show.txt", "metax"), ("hygon/k100-dtk24-show.json", "hygon"), ("hygon/dcu-table.txt", "hygon"),
])
def test_parse_detects_the_vendor(name, vendor):
    assert detect(fixture_text(name))[0] == vendor


def test_registry_detects_hygon_before_rocm_smi():
    assert registry.detect("rocm-smi\nhy-smi\n") == "hygon"
    assert registry.detect("cnmon\n") == "cambricon"
    assert registry.detect("mx-smi\n") == "metax"
