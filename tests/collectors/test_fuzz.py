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
