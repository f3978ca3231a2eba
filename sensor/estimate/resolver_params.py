"""The numbers of device resolution (sensor/estimate/devices.py) and what it counts as it works."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResolverParams:
    """How addresses are grouped into devices; the defaults were chosen on the Fryza lab captures."""

    # A device silent for longer cannot take a new address. 300 s (was 600) links idle phones as well on
    # the lab days and merges fewer same-model strangers in a busy generated store (bench/accuracy.py).
    link_window_s: float = 300.0
    rssi_tolerance_db: float = 10.0  # dB a new address may lie outside the device's recent RSSI range
    seq_window: int = 64  # first seq of a new address 1..this after the device's last: same device
    seq_link_s: float = 600.0  # ...if the device was heard within this long
    rssi_decay_db: float = 0.5  # per frame, the device's recent RSSI range narrows by this much
    burst_gap_s: float = 1.0  # frames closer than this are one scan burst
    weak_rssi_dbm: int = -75  # a device never heard stronger than this is on the street...
    weak_link_s: float = 120.0  # ...and takes a new address only this soon after its last frame
    family_tolerance_db: float = 4.0  # a sibling probe kind joins a device only this close in signal
    # A phone alone of its kind: a new address whose family no other device used for this long goes
    # to the family's last device if that was heard inside-strong within this long (an idle phone
    # that slept 10-20 minutes). 0: off.
    lone_link_s: float = 1800.0
    max_candidates: int = 32  # newest devices of a fingerprint examined per new address (O(1))
    fixed_regular_bursts: int = 6  # scans on a steady period (one address) that make a device fixed
    fixed_min_period_s: float = 10.0  # shortest period that counts as clock-like
    fixed_jitter_s: float = 0.6  # how far a scan may stray from the period and still count
    fixed_min_s: float = 4 * 3600.0  # heard this long without a long gap: fixed or staff
    fixed_gap_s: float = 900.0  # a silence longer than this restarts the presence run
    # A fingerprint heard this strong (dBm) from randomized addresses for fixed_min_s without a
    # fixed_gap_s silence has a resident (a staff phone that randomizes): a new device born inside
    # with it is flagged too (sensor/estimate/fixed.py, ResidentFingerprints). None: off.
    resident_rssi_dbm: int | None = -70
    forget_s: float = 3600.0  # devices silent this long are dropped (bounded memory)

    def __post_init__(self) -> None:
        if self.max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, got {self.max_candidates}")
        if not -120 <= self.weak_rssi_dbm <= 0:
            raise ValueError(f"weak_rssi_dbm must be in -120..0 dBm, got {self.weak_rssi_dbm}")
        if self.resident_rssi_dbm is not None and not -120 <= self.resident_rssi_dbm <= 0:
            raise ValueError(
                f"resident_rssi_dbm must be in -120..0 dBm or None, got {self.resident_rssi_dbm}"
            )
        if self.rssi_tolerance_db < 0:  # Linker.best's bound relies on it
            raise ValueError(f"rssi_tolerance_db must be >= 0 dB, got {self.rssi_tolerance_db}")


@dataclass(slots=True)
class ResolverStats:
    """What the resolver did over its life, for reports."""

    addresses: int = 0  # distinct addresses (per epoch) it was asked about
    devices: int = 0  # devices made
    links_by_seq: int = 0
    links_by_rssi: int = 0
    links_by_family: int = 0  # a new probe kind joined a device
    links_by_lone: int = 0  # a device alone of its family took a new address after a silence
    splits: int = 0  # an old address came back: it was another device
    fixed: int = 0  # devices flagged fixed or staff
