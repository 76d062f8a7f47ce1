"""The fault ladder for vendors without an event catalog: ECC, health fields, thermal and power limits.

NVIDIA Xids and Ascend codes have their own tables (collectors.nvidia, collectors.ascend); every other
vendor's faults come from the values its tool prints, mapped here to one severity and one action.
"""

from __future__ import annotations

from dataclasses import replace

from collectors.model import Action, Fault, Health, ParseResult, Severity

# Links (collectors.links). A link that is down: a card's own link (NVLink, HCCS, MLU-Link, MetaXLink …) →
# reset the card (NVIDIA's resolution for Xid 74, an NVLink error); a NIC port (RoCE, InfiniBand) → take the
# node out of scheduling until the cable or optic is fixed. A flapping link is isolated (it breaks every
# collective that crosses it, and comes back only to fail again); an error rate over its limit and a link slower
# than its peers (trained down after maintenance: the job runs at its speed) are watched.
NIC_KINDS = frozenset({"roce", "ib", "rdma"})
LINK_DOWN, LINK_FLAPPING, LINK_ERRORS, LINK_SLOW = "LINK-DOWN", "LINK-FLAPPING", "LINK-ERRORS", "LINK-SLOW"


def link_ladder(code: str, kind: str) -> tuple[Severity, Action]:
    """Severity and the one ladder action of a link condition (LINK-DOWN, LINK-FLAPPING, LINK-ERRORS, LINK-SLOW)."""
    if code == LINK_DOWN:
        return Severity.CRITICAL, Action.ISOLATE if kind in NIC_KINDS else Action.RESET_CARD
    if code == LINK_FLAPPING:
        return Severity.CRITICAL, Action.ISOLATE
    return Severity.WARNING, Action.WATCH

# Default thermal limits (°C): above WARN the card is watched, above CRIT the job should be restarted
# elsewhere and the card reset once cool. Vendors publish slowdown points around 95-105 °C.
THERMAL_WARN_C = 85.0
THERMAL_CRIT_C = 95.0


def ecc_fault(vendor: str, index: int, count: int, command: str) -> Fault:
    """Uncorrectable ECC errors on a card: reset the card (retire/remap the page); repeated → RMA."""
    return Fault("ECC-UE", Severity.CRITICAL, Action.RESET_CARD,
                 f"{vendor} card {index}: {count} uncorrectable ECC error(s) reported by {command.split()[0]}", index)


def health_fault(vendor: str, index: int, state: str, command: str, critical: bool) -> Fault:
    """A vendor health/state field that is not OK."""
    if critical:
        return Fault("HEALTH", Severity.CRITICAL, Action.ISOLATE,
                     f"{vendor} card {index}: state '{state}' reported by {command.split()[0]}", index)
    return Fault("HEALTH", Severity.WARNING, Action.WATCH,
                 f"{vendor} card {index}: state '{state}' reported by {command.split()[0]}", index)


def thermal_fault(vendor: str, index: int, temperature_c: float) -> Fault | None:
    """A card running hot; None below the warning limit. The message names the limit, not the reading,
    so a card that stays hot is one fault, not one per sweep."""
    if temperature_c >= THERMAL_CRIT_C:
        return Fault("THERMAL", Severity.CRITICAL, Action.RESTART_JOB,
                     f"{vendor} card {index}: temperature at or above {THERMAL_CRIT_C:g} °C", index)
    if temperature_c >= THERMAL_WARN_C:
        return Fault("THERMAL", Severity.WARNING, Action.WATCH,
                     f"{vendor} card {index}: temperature at or above {THERMAL_WARN_C:g} °C", index)
    return None


def apply(result: ParseResult) -> ParseResult:
    """Add the ladder's faults a vendor's values imply and its own parser did not raise: uncorrectable
    ECC, a critical vendor health/state field, temperatures over the thermal limits.

    Stateless: a nonzero ECC total is reported as a fault as it is (what `mixops parse` shows of one
    capture); the card's health stays the vendor's. A sweep keeps only the increase since the last
    stored total (console.counters): a standing count is no new fault, and the card is critical only
    in the sweep its count grows."""
    have = {(f.card_index, f.code) for f in result.faults}
    carded = {f.card_index for f in result.faults}
    extra: list[Fault] = []
    command = result.command or result.vendor
    for card in result.cards:
        if card.ecc_uncorrected and card.index not in carded:
            extra.append(ecc_fault(result.vendor, card.index, card.ecc_uncorrected, command))
        elif card.health is Health.CRITICAL and card.index not in carded:
            extra.append(health_fault(result.vendor, card.index, "critical", command, critical=True))
        if card.temperature_c is not None and (card.index, "THERMAL") not in have:
            hot = thermal_fault(result.vendor, card.index, card.temperature_c)
            if hot is not None:
                extra.append(hot)
    if not extra:
        return result
    return replace(result, faults=result.faults + tuple(extra))
