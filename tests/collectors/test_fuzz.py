"""Fuzzing: garbage, truncation and shuffled lines only ever take the warning path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import ascend, cambricon, hygon, metax, nvidia
from collectors.ssh import parse_frames
from tests.conftest import fixture_text

NV = fixture_text("nvidia/h100-565-query-noheader-nounits.csv")
ASC = fixture_text("ascend/910b2c-23.0.3-info.txt")
XID = fixture_text("nvidia/kernel-xid.log")
MORE = [fixture_text(n) for n in ("cambricon/mlu370-x8-v5.txt", "metax/c500-2.2.9-table.txt",
                                  "metax/n260-show.txt", "hygon/k100-dtk24-show.json", "hygon/dcu-table.txt")]
PARSERS = (cambricon.parse_table, metax.parse_table, metax.parse_show, hygon.parse_json, hygon.parse_table)


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
