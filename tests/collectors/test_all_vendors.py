"""Every vendor's formats on our own fixtures: the cards each capture shows, detection of the vendor
and command from the text, and site-defined adapters."""

from __future__ import annotations

import pytest

from collectors import adapter, registry
from collectors.model import Health
from console.parse_cmd import detect, parse_capture
from console.site import SiteError, parse_site
from tests.conftest import fixture_text

NA = None
# fixture, vendor, command (None: detected), expected (index, temperature_c, utilization_pct,
# memory_used_mib, memory_total_mib, power_w, health) per card
CASES = [
    ("amd/mi300x-rocm6.2-show.json", "amd", None, [
        (0, 61.0, 97.0, 172032.0, 196288.0, 611.0, Health.OK), (1, 44.0, 0.0, 284.0, 196288.0, NA, Health.OK)]),
    ("amd/mi300x-concise-rocm6.txt", "amd", None, [
        (0, 61.0, 97.0, NA, NA, 611.0, Health.OK), (1, NA, NA, NA, NA, NA, Health.UNKNOWN)]),
    ("amd/amd-smi-mi325x.txt", "amd", None, [
        (0, 71.0, 99.0, 235520.0, 262144.0, 880.0, Health.OK), (1, 52.0, 0.0, 300.0, 262144.0, 160.0, Health.OK)]),
    ("mthreads/s4000-gmi2.2.txt", "mthreads", None, [
        (0, 71.0, 93.0, 41203.0, 49152.0, NA, Health.OK), (1, NA, NA, NA, NA, NA, Health.UNKNOWN)]),
    ("iluvatar/bi-v150-table-hung.txt", "iluvatar", None, [
        (0, 58.0, 96.0, 30720.0, 32768.0, 210.0, Health.OK), (1, NA, NA, 513.0, 32768.0, NA, Health.CRITICAL)]),
    ("iluvatar/query.csv", "iluvatar", "ixsmi --query-gpu=index,name,serial,pci.bus_id,temperature.gpu,"
     "utilization.gpu,memory.used,memory.total,power.draw --format=csv", [
        (0, 58.0, 96.0, 30720.0, 32768.0, 210.0, Health.OK), (1, 44.0, 0.0, 513.0, 32768.0, NA, Health.OK)]),
    ("iluvatar/mr-v100.xml", "iluvatar", None, [(0, 47.0, 12.0, 1024.0, 32768.0, 61.0, Health.OK)]),
    ("enflame/s60-efsmi1.7-table.txt", "enflame", None, [
        (0, 66.0, NA, 37604.0, 42976.0, 251.0, Health.OK), (1, 41.0, NA, 0.0, 42976.0, NA, Health.OK)]),
    ("enflame/s60-q-1.5.txt", "enflame", None, [
        (0, 66.0, 97.5, 37604.0, 42976.0, NA, Health.OK), (1, NA, 0.0, 1129.0, 42976.0, NA, Health.OK)]),
    ("kunlunxin/p800-m.txt", "kunlunxin", None, [
        (0, 61.0, 97.0, 88000.0, 98304.0, 371.0, Health.OK), (1, 38.0, 0.0, 120.0, 98304.0, 86.0, Health.OK)]),
    ("kunlunxin/r200-table.txt", "kunlunxin", None, [
        (0, NA, 88.0, 12000.0, 16384.0, NA, Health.OK), (1, NA, 0.0, 0.0, 16384.0, NA, Health.OK)]),
    ("denglin/ks38-2gpu.xml", "denglin", None, [
        (0, 71.0, 88.0, 29000.0, 32768.0, 24.1, Health.OK), (1, NA, NA, NA, 32768.0, NA, Health.UNKNOWN)]),
    ("nvidia/h800-q-x-v12.xml", "nvidia", None, [(0, 67.0, 99.0, 70212.0, 81559.0, 612.4, Health.OK)]),
    ("nvidia/a800-default-table.txt", "nvidia", None, [
        (0, 58.0, 98.0, 72011.0, 81920.0, 377.0, Health.OK), (1, 61.0, 100.0, 72011.0, 81920.0, 380.0,
                                                               Health.OK)]),
    ("ascend/910b-t-common.txt", "ascend", None, [(3, 63.0, 91.0, 49152.0, 65536.0, 318.5, Health.UNKNOWN)]),
]


@pytest.mark.parametrize(("name", "vendor", "command", "expected"), CASES, ids=[c[0] for c in CASES])
def test_expected_cards(name, vendor, command, expected):
    text = fixture_text(name)
    if command is None:
        assert detect(text)[0] == vendor
    result = parse_capture(text, vendor, command)
    assert result.vendor == vendor
    got = [(c.index, c.temperature_c, c.utilization_pct, c.memory_used_mib, c.memory_total_mib, c.power_w, c.health)
           for c in result.cards]
    assert got == expected
    for card in result.cards:       # never a 0 where the text says N/A: spot-check through the expected table
        assert card.power_w != 0


def test_hung_card_is_a_warning_and_critical():
    result = parse_capture(fixture_text("iluvatar/bi-v150-table-hung.txt"), None, None)
    assert any("impossible values" in w and "65535" in w for w in result.warnings)


def test_ecc_faults_take_the_ladder():
    for name in ("nvidia/h800-q-x-v12.xml", "amd/amd-smi-mi325x.txt", "nvidia/a800-default-table.txt"):
        result = parse_capture(fixture_text(name), None, None)
        assert result.faults and all(f.code == "ECC-UE" and f.action.value == "reset_card" for f in result.faults)


def test_ascend_map_lists_chips_not_mcus():
    result = parse_capture(fixture_text("ascend/910b-m.txt"), None, None)
    assert [(c.index, c.chip, c.model) for c in result.cards] == [(0, 0, "Ascend 910B2C"), (1, 0, "Ascend 910B2C")]


def test_biren_unknown_output_points_to_an_adapter():
    result = parse_capture(fixture_text("biren/unknown.txt"), "biren", "brsmi gpu list")
    assert result.cards == () and "site adapter" in result.warnings[0] and result.warnings[0].startswith("biren: ")


def test_detection_rules_over_ssh_output():
    assert registry.detect("rocm-smi\nhy-smi\n") == "hygon"
    assert registry.detect("rocm-smi\n") == "amd"
    assert registry.detect("xpu-smi\n") is None                       # Intel's tool, no 0x1d22 device
    assert registry.detect(f"xpu_smi\n{registry.PCI_MARK}\n") == "kunlunxin"
    shell = registry.detect_command().shell
    assert "/usr/local/corex/bin/ixsmi" in shell and "0x1d22" in shell


SITE = """
[site]
name = "t"
[[adapters]]
name = "ppu"
tool = "ppu-smi"
command = "ppu-smi --csv"
kind = "csv"
[adapters.fields]
index = "idx"
model = "name"
serial = "sn"
bus_id = "bdf"
temperature_c = { field = "temp_mC", unit = "mC" }
utilization_pct = { field = "util", unit = "fraction" }
memory_used_mib = { field = "mem_used_gib", unit = "GiB" }
memory_total_mib = { field = "mem_total_gib", unit = "GiB" }
power_w = { field = "power_mw", unit = "mW" }
health = { field = "state", ok = ["Normal"], critical = ["Error"] }
[[nodes]]
name = "ppu-1"
vendor = "ppu"
"""


def test_site_adapter_csv_end_to_end():
    site = parse_site(__import__("tomllib").loads(SITE), "site.toml", SITE)
    registry.register_adapters(site.adapters)
    try:
        vendor = registry.get("ppu")
        assert vendor is not None and vendor.tools == ("ppu-smi",)
        (cmd,) = vendor.plan(None)
        assert cmd.shell == "ppu-smi --csv"
        result = vendor.parse({cmd.section: fixture_text("adapter/ppu.csv")})
        got = [(c.index, c.model, c.serial, c.bus_id, c.temperature_c, c.utilization_pct, c.memory_used_mib,
                c.power_w, c.health) for c in result.cards]
        assert got == [(0, "PPU-ZW810E", "ZW0001", "0000:3b:00.0", 61.5, 93.0, 82432.0, 412.0, Health.OK),
                       (1, "PPU-ZW810E", "ZW0002", "0000:3c:00.0", NA, NA, NA, NA, Health.CRITICAL)]
        assert registry.detect("ppu-smi\n") == "ppu"
    finally:
        registry.register_adapters(())


def test_adapter_jsonl_and_kv():
    jl = adapter.Adapter("x", "x-smi", "x-smi --jsonl", "jsonl", {
        "index": adapter.FieldMap("idx"), "temperature_c": adapter.FieldMap("sensors.temp"),
        "utilization_pct": adapter.FieldMap("util", "fraction"),
        "memory_used_mib": adapter.FieldMap("mem.used", "GiB")})
    result = adapter.parse_output(jl, fixture_text("adapter/ppu.jsonl"))
    assert [(c.index, c.temperature_c, c.utilization_pct) for c in result.cards] == [(0, 61.5, 93.0), (1, NA, 0.0)]
    assert "not a JSON object" in result.warnings[0]
    kv = adapter.Adapter("y", "y-smi", "y-smi -q", "kv", {
        "temperature_c": adapter.FieldMap("Temperature"), "power_w": adapter.FieldMap("Power")}, r"^Device \d+")
    result = adapter.parse_output(kv, fixture_text("adapter/chip.kv"))
    assert [(c.index, c.temperature_c, c.power_w) for c in result.cards] == [(0, 55.0, 301.0), (1, 42.0, NA)]


@pytest.mark.parametrize(("snippet", "message"), [
    ('kind = "xml"', "must be one of csv, jsonl, kv"),
    ('fields = { colour = "c" }', "unknown sample field 'colour'"),
    ('fields = { power_w = { field = "p", unit = "hp" } }', "unknown unit 'hp'"),
])
def test_bad_adapter_is_one_clear_line(snippet, message):
    key = snippet.split(" =")[0]
    base = {"kind": 'kind = "csv"', "fields": 'fields = { index = "i" }'}
    base[key] = snippet
    text = f'[site]\nname = "t"\n[[adapters]]\nname = "z"\ntool = "z"\ncommand = "z"\n{base["kind"]}\n{base["fields"]}\n'
    with pytest.raises(SiteError) as exc:
        parse_site(__import__("tomllib").loads(text), "site.toml", text)
    assert any(message in p and "adapters[0]" in p for p in exc.value.problems), exc.value.problems


@pytest.mark.parametrize("name", ["iluvatar/mr-v100.xml", "denglin/ks38-2gpu.xml", "nvidia/h800-q-x-v12.xml"])
def test_xml_fast_path_matches_the_tree_reader(name):
    from collectors import smixml

    text = fixture_text(name)
    fast = smixml.parse_xml_fast(text, "v", "c")
    assert fast is not None
    assert fast.cards == smixml.parse_xml_tree(text, "v", "c").cards
    truncated = text[: len(text) // 2]
    assert smixml.parse_xml_fast(truncated, "v", "c") is None         # not the usual shape: tree reader
    assert "not well-formed" in smixml.parse_xml(truncated, "v", "c").warnings[0]
