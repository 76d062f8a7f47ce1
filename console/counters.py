"""Cumulative vendor counters as deltas: a running total is a new event only when it grows.

Vendor tools print running totals (NVIDIA's volatile uncorrectable ECC count, Cambricon's Ecc-Error,
Ascend's HBM/DDR double-bit counts, AMD's UEC). Reported as they are, the same total became a "new"
fault at every sweep and again at every collector start, and a card with an old count stayed
critical for ever. Here each total is compared with the last value stored for that card
(`card_counters`): the increase is the event; the first sighting is the baseline (nothing new); a
total below the baseline is a counter reset (driver reload, card reset), after which the whole new
total counts, as Prometheus's `increase()` does. A card whose total is standing (no increase) is
`warning`, not `critical`: it carries old errors, nothing happened now.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from collectors.ladder import ecc_fault
from collectors.model import CardSample, Health, NodeReport

CounterKey = tuple[str, int, int, str]            # node, card index, chip (-1 when none), counter name
ECC = "ecc_uncorrected"
ECC_CODE = "ECC-UE"                               # collectors.ladder.ecc_fault


@dataclass(frozen=True, slots=True)
class CounterChange:
    """A counter's new total for one card (stored in card_counters)."""

    node: str
    idx: int
    chip: int
    name: str
    value: int
    ts: float
    increase: int


def increase(previous: int | None, total: int) -> int:
    """What happened since the previous total: 0 at the first sighting, the whole total after a reset."""
    if previous is None:
        return 0
    return total - previous if total >= previous else total


def apply(report: NodeReport, baseline: dict[CounterKey, int]) -> tuple[NodeReport, list[CounterChange]]:
    """The report with counter faults for increases only, and the totals that changed (baseline updated)."""
    if not report.ok or not report.cards:
        return report, []
    changes: list[CounterChange] = []
    grown: dict[int, tuple[int, int]] = {}          # card index -> (increase, total) over its chips
    cards: list[CardSample] = []
    touched = False
    for card in report.cards:
        total = card.ecc_uncorrected
        if total is None:
            cards.append(card)
            continue
        key = (report.node, card.index, -1 if card.chip is None else card.chip, ECC)
        previous = baseline.get(key)
        new = increase(previous, total)
        if previous != total:
            baseline[key] = total
            changes.append(CounterChange(report.node, card.index, key[2], ECC, total, report.started, new))
        if new > 0:
            inc, tot = grown.get(card.index, (0, 0))
            grown[card.index] = (inc + new, tot + total)
            health = Health.CRITICAL
        elif total > 0 and card.health is Health.OK:
            health = Health.WARNING                 # old errors on the card, nothing new
        else:
            health = card.health
        if health is not card.health:
            card = replace(card, health=health)
            touched = True
        cards.append(card)
    # the ladder's stateless ECC faults (one per nonzero total) give way to one fault per card that grew
    faults = [f for f in report.faults if f.code != ECC_CODE]
    touched = touched or len(faults) != len(report.faults) or bool(grown)
    vendor = report.vendor or "card"
    for idx, (new, total) in grown.items():
        base = ecc_fault(vendor, idx, total, vendor)
        faults.append(replace(base, message=f"{vendor} card {idx}: {new} new uncorrectable ECC error(s), "
                                            f"{total} in all"))
    if not touched:
        return report, changes
    return replace(report, cards=tuple(cards), faults=tuple(faults)), changes
