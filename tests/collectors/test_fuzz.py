"""Fuzzing: garbage, truncation and shuffled lines only ever take the warning path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import (
    amd,
    ascend,
    biren,
    cambricon,
    denglin,
    enflame,
    hygon,
    iluvatar,
    kunlunxin,
    metax,
    mthreads,
    nvidia,
)
from collectors.model import Health
from collectors.ssh import parse_frames
from console.parse_cmd import parse_capture
from tests.conftest import fixture_text

NV = fixture_text("nvidia/h100-565-query-noheader-nounits.csv")
ASC = fixture_text("ascend/910b2c-23.0.3-info.txt")
XID = fixture_text("nvidia/kernel-xid.log")
MORE = [fixture_text(n) for n in (
    "cambricon/mlu370-x8-v5.txt", "metax/c500-2.2.9-table.txt", "metax/n260-show.txt", "hygon/k100-dtk24-show.json",
    "hygon/dcu-table.txt", "amd/mi300x-rocm6.2-show.json", "amd/mi300x-concise-rocm6.txt", "amd/amd-smi-mi325x.txt",
    "mthreads/s4000-gmi2.2.txt", "iluvatar/bi-v150-table-hung.txt", "iluvatar/mr-v100.xml",
    "enflame/s60-efsmi1.7-table.txt", "enflame/s60-q-1.5.txt", "kunlunxin/p800-m.txt", "kunlunxin/r200-table.txt",
    "denglin/ks38-2gpu.xml", "nvidia/h800-q-x-v12.xml", "nvidia/a800-default-table.txt", "ascend/910b-t-common.txt",
    "ascend/910b-m.txt")]
PARSERS = (cambricon.parse_table, metax.parse_table, metax.parse_show, hygon.parse_json, hygon.parse_table,
           amd.parse_json, amd.parse_concise, amd.parse_amd_smi_table, amd.parse_metric_json, mthreads.parse_table,
           iluvatar.parse_table, iluvatar.parse_xml, iluvatar.parse_query_csv, enflame.parse_query,
           enflame.parse_table, kunlunxin.parse_rows, kunlunxin.parse_table, denglin.parse_xml, biren.parse_list,
           ascend.parse_kv, ascend.parse_map)


def _check(result):
    for card in result.cards:
        assert card.utilization_pct is None or 0 <= card.utilization_pct <= 100
        assert card.power_w is None or card.power_w >= 0


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=3000))
def test_random_text(text):
    _check(nvidia.parse_query_csv(text))
    _check(ascend.parse_info(text))
    nvidia.parse_kernel_log(text)
    ascend.parse_health(text, 0, 0)
    parse_frames(text, "0123456789abcdef")
    for parser in PARSERS:
        _check(parser(text))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([NV, ASC, XID, *MORE]), st.integers(0, 4000), st.randoms(use_true_random=False))
def test_truncated_and_shuffled(text, cut, rnd):
    lines = text[:cut].splitlines()
    rnd.shuffle(lines)
    for variant in (text[:cut], "\n".join(lines)):
        _check(nvidia.parse_query_csv(variant))
        _check(ascend.parse_info(variant))
        for parser in PARSERS:
            _check(parser(variant))
        nvidia.parse_kernel_log(variant)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    text = data.decode("utf-8", errors="replace")
    _check(nvidia.parse(dict(query=text, kmsg=text)))
    _check(ascend.parse(dict(info=text)))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(MORE), st.binary(max_size=64), st.integers(0, 3000))
def test_random_bytes_spliced_into_captures(text, junk, at):
    mutated = text[:at] + junk.decode("latin-1") + text[at:]
    for parser in PARSERS:
        _check(parser(mutated))
    try:
        _check(parse_capture(mutated, None, None))
    except Exception as exc:  # only the documented "cannot tell which vendor" error may escape
        assert type(exc).__name__ == "ParseInputError"


# ---- issue 16: >= 100 mutated captures of every vendor, counted, with 0 tracebacks --------------------

import random  # noqa: E402
import re  # noqa: E402

from console.parse_cmd import detect  # noqa: E402
from tests.conftest import FIXTURES  # noqa: E402

_VALUE = re.compile(r"\S*\d\S*")
_METRICS = ("temperature_c", "utilization_pct", "memory_used_mib", "memory_total_mib", "power_w", "ecc_uncorrected")


def _captures() -> list[tuple[str, str, str, str]]:
    """(name, text, vendor, command) of every fixture mixops can attribute, for all vendors."""
    out = []
    for path in sorted(FIXTURES.glob("*/*")):
        # db/ holds databases of earlier mixops versions (tests/console), not vendor output
        if path.parent.name in ("adapter", "trainlogs", "db") or path.name.endswith(".source"):
            continue
        text = path.read_text(encoding="utf-8")
        vendor, command = ("biren", "brsmi gpu list") if path.parent.name == "biren" else detect(text)
        out.append((f"{path.parent.name}/{path.name}", text, vendor, command))
    return out


def test_mutated_captures_never_raise_and_na_never_becomes_a_number():
    """Each capture mutated 6 ways (a value → N/A, a line dropped, a line doubled, cut short, junk bytes
    spliced in, a header word renamed): no exception, and a value turned into N/A only ever turns
    metrics into None — it never creates or changes a number."""
    rnd = random.Random(16)
    count = tracebacks = 0
    vendors = set()
    for name, text, vendor, command in _captures():
        original = {(c.index, c.chip): c for c in parse_capture(text, vendor, command).cards}
        lines = text.splitlines()
        for _ in range(3):
            values = [(i, m) for i, ln in enumerate(lines) for m in _VALUE.finditer(ln)] or [
                (0, re.match(r"", lines[0]))]
            i, m = rnd.choice(values)
            assert m is not None
            na = lines[:i] + [lines[i][:m.start()] + "N/A" + lines[i][m.end():]] + lines[i + 1:]
            k = rnd.randrange(len(lines))
            cut = rnd.randrange(len(text))
            at = rnd.randrange(len(text))
            words = [w for w in re.findall(r"[A-Za-z][\w%().:/-]{2,}", text)]
            word = rnd.choice(words or ["xyz"])
            mutants = {
                "na": "\n".join(na) + "\n",
                "drop": "\n".join(lines[:k] + lines[k + 1:]) + "\n",
                "double": "\n".join(lines[:k + 1] + lines[k:]) + "\n",
                "cut": text[:cut],
                "junk": text[:at] + bytes(rnd.randrange(256) for _ in range(16)).decode("latin-1") + text[at:],
                "rename": text.replace(word, "Zq" + word[2:], 1),
            }
            for kind, mutant in mutants.items():
                count += 1
                try:
                    result = parse_capture(mutant, vendor, command)
                except Exception as exc:  # noqa: BLE001 - counted and reported: the suite's traceback figure
                    tracebacks += 1
                    raise AssertionError(f"{name} ({kind}): {type(exc).__name__}: {exc}") from exc
                _check(result)
                if kind == "na":
                    for card in result.cards:
                        before = original.get((card.index, card.chip))
                        if before is None or before.health is Health.CRITICAL or card.health is Health.CRITICAL:
                            continue
                        for f in _METRICS:
                            value = getattr(card, f)
                            assert value is None or value == getattr(before, f), (name, f, value, lines[i])
        vendors.add(vendor)
    print(f"mutated captures: {count}, tracebacks: {tracebacks}, vendors: {len(vendors)}")
    assert count >= 100 and tracebacks == 0
    assert vendors >= {"nvidia", "ascend", "cambricon", "hygon", "amd", "metax", "mthreads", "iluvatar", "enflame",
                       "kunlunxin", "denglin", "biren"}
