"""Phone classes measured on the real lab days: one per fingerprint, with its share and scan behaviour.

`fingerprints.json` beside this module is what `bench/fingerprints.py --emit` measured on the 103
position-1 days of the Fryza lab (`../shared/data/fryza-lab` and `fryza-lab-more`, 1.66 M probe requests,
965 k scans): the 64 phone fingerprints with the most scans (fixed devices left out: a global address heard
for 3 h or more, or probing like a clock), each with its element bytes after the SSID, burst sizes,
quartiles of the gaps between scans, address policy, address lifetime and sequence-number behaviour.
How a measurement becomes a `DeviceClass`, and why:

- elements: the frame's own bytes, so the sensor computes the very fingerprint the lab showed (a test
  checks it); the DS Parameter Set is rewritten per channel, vendor elements keep their OUI and type only
  (all the fingerprint keeps, and a WPS payload carries a device UUID).
- skipped: fingerprints whose median gap between scans is under 10 s (Windows laptops and connected PCs
  probing every 5 s: a lab has them open on desks, a shop's visitors do not).
- address: `factory` → a global address for life; `per_scan` (a random address heard in one scan only)
  → a new one per scan; `timed` (kept over several scans) → kept for 0.5-2 x its measured median
  lifetime, within 60-3600 s (the measured lifetime is a lower bound: the lab heard only part of it).
- sequence numbers: `continues` when most new random addresses of the fingerprint started 1..64 after
  the previous one's last number (43 of 337 randomizing fingerprints), else a fresh random start.
- scans: frames per channel from the median to the 90th percentile of the measured burst (at most 6; the
  lab sniffer heard one channel, the generator sends the burst on each of 1, 6 and 11); the gap between
  scans log-uniform over the measured quartiles (of the address's own scans when it kept its address,
  else of the fingerprint's consecutive scans, which a crowd shortens), at least 8 s and at most 300 s;
  the measured share of gaps over 300 s are idle gaps of 5-20 min instead (the single iPhones of the Baccichet captures stay quiet that long).
  No screen-on speed-up: the measured gaps include it.
- share: a fingerprint's share of scans over its scans per device-hour (one scan per median gap), so a
  model that scans twice as often is not taken for twice as many people.
- assumed, not measured: 10 % directed probes (the lab's SSIDs are anonymised), 15 % one-channel scans
  (the Baccichet captures: 15-25 %), and a global address's manufacturer prefix (never published).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

from footfall_dev.craft import EID_DS_PARAMETER, EID_VENDOR, element
from footfall_dev.generator.devices import DS, AddressPolicy, DeviceClass, SeqPolicy, Template

MIN_GAP_S = 10.0  # median gap below this: a laptop or PC, not a phone (see the docstring)
MAX_FRAMES = 6
IDLE_S = 300.0  # bench/fingerprints.py's idle gap: a gap longer than this is counted in `idle_share`
ROTATION_S = (60.0, 3600.0)
FACTORY_OUI = bytes.fromhex("98f621")  # a phone maker's prefix as the lab CSV shows one (Xiaomi)


@dataclass(frozen=True, slots=True)
class LabPhone:
    """One measured fingerprint turned into a class, with the share of phones it stands for."""

    cls: DeviceClass
    share: float


def template(hex_elements: str) -> Template:
    """The measured elements after the SSID, as a template: DS per channel, vendor payloads dropped."""
    raw, pos, out = bytes.fromhex(hex_elements), 0, []
    while pos + 2 <= len(raw):
        eid, n = raw[pos], raw[pos + 1]
        body = raw[pos + 2 : pos + 2 + n]
        pos += 2 + n
        if eid == EID_DS_PARAMETER:
            out.append((DS, b""))
        elif eid == EID_VENDOR:
            out.append((eid, element(eid, body[:4])))
        else:
            out.append((eid, element(eid, body)))
    return tuple(out)


def _gaps(row: dict[str, Any]) -> list[float] | None:
    own, printwise = row.get("gap_q"), row.get("print_gap_q")
    return printwise if row["policy"] == "per_scan" or not own else own


def lab_class(row: dict[str, Any]) -> DeviceClass | None:
    """The class of one measured fingerprint, or None when it is skipped (see the docstring)."""
    gaps = _gaps(row)
    if not gaps or gaps[1] < MIN_GAP_S:
        return None
    q1, _, q3 = gaps
    low = max(q1, 8.0)
    high = max(min(q3, IDLE_S), low * 1.5)  # longer gaps are the idle gaps, drawn apart
    burst = max(1, round(row["burst_median"]))
    policy = {"factory": AddressPolicy.GLOBAL, "per_scan": AddressPolicy.PER_BURST}.get(
        row["policy"], AddressPolicy.INTERVAL
    )
    life = row.get("lifetime_median_s") or ROTATION_S[0]
    rotation = (
        (max(ROTATION_S[0], life / 2), min(ROTATION_S[1], max(life * 2, ROTATION_S[0] * 2)))
        if policy is AddressPolicy.INTERVAL
        else (0.0, 0.0)
    )
    vendors = ",".join(row["vendors"]) or "no vendor elements"
    return DeviceClass(
        name=f"lab_{row['fingerprint'][:8]}",
        like=f"lab fingerprint {row['fingerprint']} ({vendors}; {row['policy']}, seq {row['seq']})",
        variants=(template(row["elements"]),),
        address=policy,
        seq=SeqPolicy.CONTINUE if row["seq"] == "continues" else SeqPolicy.RESET,
        interval_s=(low, high),
        frames_per_channel=(burst, max(burst, min(MAX_FRAMES, round(row["burst_p90"])))),
        rotation_s=rotation,
        directed_share=0.1,
        oui=FACTORY_OUI if policy is AddressPolicy.GLOBAL else b"",
        screen=False,
        idle_share=float(row["idle_share"]),
    )


def load() -> tuple[LabPhone, ...]:
    """The measured table, as classes with their phone shares (normalised to 1)."""
    rows = json.loads((resources.files("footfall_dev.generator") / "fingerprints.json").read_text("utf-8"))
    made = []
    for row in rows:
        cls = lab_class(row)
        if cls is not None:
            per_hour = 3600.0 / math.sqrt(cls.interval_s[0] * cls.interval_s[1])  # scans per device-hour
            made.append((cls, row["scan_share"] / per_hour))
    total = sum(w for _, w in made)
    return tuple(LabPhone(cls, round(w / total, 5)) for cls, w in made)
