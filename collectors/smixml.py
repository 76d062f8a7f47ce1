"""nvidia-smi-style XML (`nvidia-smi -q -x` DTD v10-v13, `ixsmi -q -x`, `dlsmi query --xml-format`).

The three tools share the layout of NVIDIA's `<gpu>` element but renamed fields across versions and
vendors; every field is looked up through an explicit list of known paths, first present wins, and an
element not in a list is never read. A GPU's index is its place in the document (the tool's enumeration,
what `-i N` takes), not `minor_number` (the /dev node, which differs in containers and after a rebind).
`<mig_devices>` (MIG instances inside a GPU: their own memory, ECC and BAR1) is cut out of the GPU before
any field is read, so an instance's values are never taken for the GPU's own.
"""

from __future__ import annotations

from lxml import etree

from collectors.model import (
    CardSample,
    Health,
    ParseResult,
    first_line,
    integer,
    is_na,
    mebibytes,
    norm_bus_id,
    number,
    sanity,
)

_TEMP = ("temperature/gpu_temp", "temperature/gpu_current_temp")
_UTIL = ("utilization/gpu_util", "utilization/gpu")
_MEM_USED = ("fb_memory_usage/used", "memory_usage/used")
_MEM_TOTAL = ("fb_memory_usage/total", "memory_usage/total")
# DTD v10-v11 `power_readings/power_draw`; v12 (R535+) `gpu_power_readings` with `power_draw`, then R550+
# `instant_power_draw` / `average_power_draw` (power_draw gone); ixsmi/dlsmi keep v10's names.
_POWER = ("power_readings/power_draw", "gpu_power_readings/instant_power_draw",
          "gpu_power_readings/average_power_draw", "gpu_power_readings/power_draw", "power_readings/gpu_power_draw",
          "power_readings/instant_power_draw", "power_readings/average_power_draw")
_SERIAL = ("serial", "serial_number")
_BUS = ("pci/pci_bus_id", "pci/bus_id")
_ECC_UE = ("ecc_errors/volatile/dram_uncorrectable", "ecc_errors/volatile/double_bit/total",
           "ecc_errors/double_bit")
_ECC_UE_SRAM = ("ecc_errors/volatile/sram_uncorrectable", "ecc_errors/volatile/sram_uncorrectable_parity",
                "ecc_errors/volatile/sram_uncorrectable_secded")


# lxml: several times faster than xml.etree on these 50-100 KB documents, and configured not to
# resolve entities, load DTDs or touch the network (the text comes from a node).
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                          remove_blank_text=True)


_PARENTS = {"temperature", "utilization", "fb_memory_usage", "memory_usage", "power_readings",
            "gpu_power_readings", "pci"}


def _leaves(gpu: etree._Element) -> dict[str, str]:
    """`tag` and `parent/tag` → text for the top-level leaves and the leaves of the parents we read:
    one pass instead of a path search per field (these documents hold hundreds of elements per GPU)."""
    out: dict[str, str] = {}
    for child in gpu:
        tag = child.tag
        if not isinstance(tag, str):
            continue                    # comments, processing instructions
        if len(child) == 0:
            if child.text:
                out[tag] = child.text
        elif tag in _PARENTS:
            for leaf in child:
                if isinstance(leaf.tag, str) and len(leaf) == 0 and leaf.text:
                    out[f"{tag}/{leaf.tag}"] = leaf.text
    return out


def _first(gpu: etree._Element, paths: tuple[str, ...], leaves: dict[str, str] | None = None) -> str | None:
    for path in paths:
        text = leaves.get(path) if leaves is not None and path.count("/") <= 1 else gpu.findtext(path)
        if text is not None and text.strip():
            return text.strip()
    return None



def parse_xml(text: str, vendor: str, command: str) -> ParseResult:
    """Cards from the `<gpu>` elements; ECC uncorrectable summed over DRAM and SRAM when reported."""
    fast = parse_xml_fast(text, vendor, command)
    if fast is not None:
        return fast
    return parse_xml_tree(text, vendor, command)


def parse_xml_tree(text: str, vendor: str, command: str) -> ParseResult:
    """The reference reader: a full tree (lxml, entities and DTDs off)."""
    start = text.find("<?xml")
    if start < 0:
        start = text.find("<")
    try:
        root = etree.fromstring((text[start:] if start >= 0 else text).encode("utf-8", "replace"), _PARSER)
    except etree.XMLSyntaxError as exc:
        return ParseResult(vendor, command, warnings=(
            f"{vendor}: {command}: not well-formed XML ({exc}); first line: {first_line(text)}",))
    warnings: list[str] = []
    cards: list[CardSample] = []
    for index, gpu in enumerate(root.findall("gpu")):
        leaves = _leaves(gpu)
        ecc = None
        if gpu.find("ecc_errors") is not None:
            ecc_parts = [integer(_first(gpu, (p,))) for p in _ECC_UE + _ECC_UE_SRAM]
            known = [e for e in ecc_parts if e is not None]
            ecc = sum(known) if known else None
        serial = _first(gpu, _SERIAL, leaves)
        card = CardSample(
            index=index, model=_first(gpu, ("product_name",), leaves),
            serial=None if serial is None or is_na(serial) else serial,
            bus_id=norm_bus_id(_first(gpu, _BUS, leaves) or gpu.get("id")), health=Health.OK,
            temperature_c=number(_first(gpu, _TEMP, leaves)), utilization_pct=number(_first(gpu, _UTIL, leaves)),
            memory_used_mib=mebibytes(_first(gpu, _MEM_USED, leaves)),
            memory_total_mib=mebibytes(_first(gpu, _MEM_TOTAL, leaves)),
            power_w=number(_first(gpu, _POWER, leaves)), ecc_uncorrected=ecc,
        )
        cards.append(sanity(card, warnings, command))
    if not cards:
        warnings.append(f"{vendor}: {command}: no <gpu> element; first line: {first_line(text)}")
    return ParseResult(vendor, command, tuple(cards), (), tuple(warnings))


# ---- fast path ----------------------------------------------------------------------------------
# A sweep reads these documents every few seconds on every node; building a tree of several hundred
# elements per GPU costs ~150 us per card. The tools write one element per line in a fixed shape,
# so the fields are read from each `<gpu id=…>` block by tag; the tree parser above stays the
# reference and the fallback for any document without that shape.

_ROOTS = ("</nvidia_smi_log>", "</ixsmi_log>", "</dlsmi_log>")


def _section(block: str | None, tag: str) -> str | None:
    """The text between `<tag>` and `</tag>` (str.find: several times faster than a regex scan)."""
    if block is None:
        return None
    i = block.find(f"<{tag}>")
    if i < 0:
        return None
    i += len(tag) + 2
    j = block.find(f"</{tag}>", i)
    return block[i:j] if j >= 0 else None


def _without(block: str, tag: str) -> str:
    """The block with every `<tag>…</tag>` element cut out."""
    i = block.find(f"<{tag}>")
    while i >= 0:
        j = block.find(f"</{tag}>", i)
        if j < 0:
            return block[:i]
        block = block[:i] + block[j + len(tag) + 3:]
        i = block.find(f"<{tag}>", i)
    return block


def _leaf(block: str | None, *tags: str) -> str | None:
    for tag in tags:
        value = _section(block, tag)
        if value is not None and "<" not in value and value.strip():
            return value.strip()
    return None


def _ecc_fast(block: str) -> int | None:
    ecc = _section(block, "ecc_errors")
    if ecc is None:
        return None
    volatile = _section(ecc, "volatile")
    parts: list[str | None]
    if volatile is not None:
        double = _section(volatile, "double_bit")
        parts = [_leaf(volatile, "dram_uncorrectable"), _leaf(double, "total"),
                 _leaf(volatile, "sram_uncorrectable", "sram_uncorrectable_parity"),
                 _leaf(volatile, "sram_uncorrectable_secded")]
    else:
        parts = [_leaf(ecc, "double_bit")]
    known = [v for v in (integer(p) for p in parts) if v is not None]
    return sum(known) if known else None


def parse_xml_fast(text: str, vendor: str, command: str) -> ParseResult | None:
    """The fast path, or None when the document does not have the usual one-GPU-per-block shape."""
    tail = text.rstrip()[-40:]
    if not any(tail.endswith(root) for root in _ROOTS):
        return None
    marks: list[int] = []
    i = text.find("<gpu id=")
    while i >= 0:
        marks.append(i)
        i = text.find("<gpu id=", i + 8)
    if not marks:
        return None
    warnings: list[str] = []
    cards: list[CardSample] = []
    for index, (a, b) in enumerate(zip(marks, marks[1:] + [len(text)], strict=True)):
        head_end = text.find(">", a)
        gpu_id = text[a + 8:head_end].strip().strip('"')
        block = _without(text[head_end + 1:b], "mig_devices")
        temp = _section(block, "temperature")
        util = _section(block, "utilization")
        mem = _section(block, "fb_memory_usage") or _section(block, "memory_usage")
        power = _leaf(_section(block, "power_readings"), "power_draw", "gpu_power_draw", "instant_power_draw",
                      "average_power_draw") or _leaf(
            _section(block, "gpu_power_readings"), "instant_power_draw", "average_power_draw", "power_draw")
        serial = _leaf(block, "serial", "serial_number")
        ecc = _ecc_fast(block)
        card = CardSample(
            index=index, model=_leaf(block, "product_name"),
            serial=None if serial is None or is_na(serial) else serial,
            bus_id=norm_bus_id(_leaf(_section(block, "pci"), "pci_bus_id", "bus_id") or gpu_id), health=Health.OK,
            temperature_c=number(_leaf(temp, "gpu_temp", "gpu_current_temp")),
            utilization_pct=number(_leaf(util, "gpu_util", "gpu")),
            memory_used_mib=mebibytes(_leaf(mem, "used")), memory_total_mib=mebibytes(_leaf(mem, "total")),
            power_w=number(power), ecc_uncorrected=ecc)
        cards.append(sanity(card, warnings, command))
    return ParseResult(vendor, command, tuple(cards), (), tuple(warnings))
