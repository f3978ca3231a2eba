"""Fingerprint diversity and per-fingerprint scan behaviour of the real lab days, as the sensor sees them.

    .venv/bin/python bench/fingerprints.py [--data ../shared/data] [--days fryza-lab|all] [--top 45]
    .venv/bin/python bench/fingerprints.py --emit dev/footfall_dev/generator/fingerprints.json

Every probe request of the Fryza lab days (position 1; `--days all` adds the 95 `fryza-lab-more` days) is
decoded by the sensor's own decoder, so a fingerprint here is exactly `sensor/decode/dot11.py`'s. Per
fingerprint it measures, on the one channel the lab sniffer listened to:

- scans: bursts of one address (frames less than `BURST_GAP_S` apart), their share of all scans, their
  median size (frames per scan on the channel);
- the address policy: `factory` (a globally administered address), `per_scan` (a random address heard in
  one scan only), `timed` (a random address kept over several scans; its median lifetime);
- the gap between an address's scans (scan interval) for addresses heard in two scans or more;
- sequence numbers at a change of address: the share of new random addresses whose first sequence number
  is 1..64 after the last one of the same fingerprint heard less than 10 s before (`continues`), else
  `jumps`.

Then the diversity: distinct fingerprints, how many cover 50/80/90 % of scans, per day. `--emit` writes
the top fingerprints with their element bytes (vendor payloads left out: the fingerprint keeps OUI and
type only, and a WPS payload names the device) for the generator's table (footfall_dev.generator.fingerprints).
No MAC is printed or written: addresses are only counted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from footfall.times import NS
from sensor.decode.capture import iter_capture_bytes
from sensor.decode.decoder import FrameDecoder
from sensor.decode.dot11 import FC_FLAG_ORDER, HEADER_LEN, HT_CONTROL_LEN

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

BURST_GAP_S = 1.0
SEQ_WINDOW = 64
SEQ_LOOKBACK_S = 10.0
IDLE_S = 300.0  # a gap between two scans of a fingerprint longer than this is an idle gap
FIXED_LIFE_S = 3 * 3600.0  # a global address heard over more than this is a fixed device, not a phone
VENDORS = {"0017f2": "apple", "0050f2": "microsoft", "506f9a": "wfa", "8cfdf0": "qualcomm", "00904c": "broadcom",
           "001018": "broadcom", "000ce7": "mediatek", "0000f0": "samsung", "00e04c": "realtek",
           "0013ef": "intel"}  # fmt: skip


@dataclass(slots=True)
class Address:
    first_ns: int
    last_ns: int
    bursts: list[int] = field(default_factory=list)  # frames per burst
    burst_starts: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Print:
    """What one fingerprint did over the days read."""

    ids: tuple[int, ...] = ()
    body: bytes = b""  # the elements after the SSID of one frame (template for the generator)
    days: set[str] = field(default_factory=set)
    frames: int = 0
    global_addresses: int = 0
    random_addresses: int = 0
    addresses: list[Address] = field(default_factory=list)
    seq_continue: int = 0
    seq_jump: int = 0
    print_gaps: list[float] = field(default_factory=list)  # between consecutive scans of the fingerprint


def lab_days(data: Path, which: str) -> Iterator[tuple[str, bytes]]:
    for pcap in sorted((data / "fryza-lab").glob("*.pcap")):
        yield pcap.stem, pcap.read_bytes()
    if which == "all":
        for gz in sorted((data / "fryza-lab-more").glob("*.pcap.gz")):
            yield gz.name.removesuffix(".pcap.gz"), gzip.decompress(gz.read_bytes())


def measure(days: Iterator[tuple[str, bytes]]) -> tuple[dict[str, Print], dict[str, int]]:
    prints: dict[str, Print] = defaultdict(Print)
    per_day: dict[str, int] = {}
    for name, blob in days:
        decoder = FrameDecoder()
        live: dict[bytes, tuple[str, Address, int]] = {}  # address -> fingerprint, record, last seq
        last_of_print: dict[
            str, tuple[int, int]
        ] = {}  # fingerprint -> (last ns, last seq) of a random address
        last_scan: dict[str, int] = {}  # fingerprint -> start of its last scan (any address)
        seen: set[str] = set()
        for rec in iter_capture_bytes(blob, name):
            probe = decoder.decode(rec.ts_ns, rec.linktype, rec.data)
            if probe is None:
                continue
            fp = prints[probe.fingerprint]
            seen.add(probe.fingerprint)
            fp.days.add(name)
            fp.frames += 1
            if not fp.ids:
                fp.ids = probe.ie_ids
                fp.body = _elements_after_ssid(rec.data)
            ts, addr = probe.ts_ns, probe.transmitter
            known = live.get(addr)
            new_scan = (
                known is None or known[0] != probe.fingerprint or ts - known[1].last_ns > BURST_GAP_S * NS
            )
            if new_scan:
                prev_scan = last_scan.get(probe.fingerprint)
                if prev_scan is not None and ts - prev_scan > BURST_GAP_S * NS:
                    fp.print_gaps.append((ts - prev_scan) / NS)
                last_scan[probe.fingerprint] = ts
            if known is None or known[0] != probe.fingerprint:
                a = Address(ts, ts, [1], [ts])
                fp.addresses.append(a)
                if probe.randomized:
                    fp.random_addresses += 1
                    prev = last_of_print.get(probe.fingerprint)
                    if prev is not None and ts - prev[0] < SEQ_LOOKBACK_S * NS:
                        if 1 <= (probe.seq - prev[1]) % 4096 <= SEQ_WINDOW:
                            fp.seq_continue += 1
                        else:
                            fp.seq_jump += 1
                else:
                    fp.global_addresses += 1
            else:
                a = known[1]
                if ts - a.last_ns > BURST_GAP_S * NS:
                    a.bursts.append(1)
                    a.burst_starts.append(ts)
                else:
                    a.bursts[-1] += 1
                a.last_ns = ts
            live[addr] = (probe.fingerprint, a, probe.seq)
            if probe.randomized:
                last_of_print[probe.fingerprint] = (ts, probe.seq)
        per_day[name] = len(seen)
    return prints, per_day


def _elements_after_ssid(data: bytes) -> bytes:
    frame = data[int.from_bytes(data[2:4], "little") :]
    body_offset = HEADER_LEN + (HT_CONTROL_LEN if frame[1] & FC_FLAG_ORDER else 0)
    body = frame[body_offset:]
    return body[2 + body[1] :] if body[:1] == b"\x00" else body


def vendors(body: bytes) -> list[str]:
    out, pos = [], 0
    while pos + 2 <= len(body):
        eid, n = body[pos], body[pos + 1]
        if eid == 221 and n >= 4:
            out.append(VENDORS.get(body[pos + 2 : pos + 5].hex(), body[pos + 2 : pos + 5].hex()))
        pos += 2 + n
    return out


def behaviour(fp: Print) -> dict[str, object]:
    scans = sum(len(a.bursts) for a in fp.addresses)
    sizes = [b for a in fp.addresses for b in a.bursts]
    multi = [a for a in fp.addresses if len(a.bursts) > 1]
    gaps = [(b - a) / NS for ad in multi for a, b in zip(ad.burst_starts, ad.burst_starts[1:], strict=False)]
    life = [(a.last_ns - a.first_ns) / NS for a in multi]
    if fp.global_addresses >= fp.random_addresses:
        policy = "factory"
    elif fp.random_addresses and len([a for a in multi]) / len(fp.addresses) > 0.3:
        policy = "timed"
    else:
        policy = "per_scan"
    seq_n = fp.seq_continue + fp.seq_jump
    return {
        "scans": scans,
        "burst_median": statistics.median(sizes) if sizes else 0,
        "burst_p90": statistics.quantiles(sizes, n=10)[-1] if len(sizes) >= 10 else max(sizes, default=0),
        "policy": policy,
        "multi_scan_share": round(len(multi) / len(fp.addresses), 3) if fp.addresses else 0.0,
        "gap_median_s": round(statistics.median(gaps), 1) if gaps else None,
        "gap_q": [round(q, 1) for q in statistics.quantiles(gaps, n=4)] if len(gaps) >= 4 else None,
        "lifetime_median_s": round(statistics.median(life), 1) if life else None,
        "print_gap_q": [round(q, 1) for q in statistics.quantiles(fp.print_gaps, n=4)]
        if len(fp.print_gaps) >= 4
        else None,
        "idle_share": round(sum(g > IDLE_S for g in fp.print_gaps) / len(fp.print_gaps), 3)
        if fp.print_gaps
        else 0.0,
        "fixed": policy == "factory" and _fixed(life, gaps),
        "seq": "continues" if seq_n and fp.seq_continue / seq_n > 0.5 else "jumps",
        "seq_continue_share": round(fp.seq_continue / seq_n, 2) if seq_n else None,
        "vendors": vendors(fp.body),
    }


def _fixed(life: list[float], gaps: list[float]) -> bool:
    """A global address heard for hours, or probing like a clock (the lab PCs' 60.0 s): not a phone."""
    if life and statistics.median(life) >= FIXED_LIFE_S:
        return True
    if len(gaps) < 4:
        return False
    q1, q2, _ = statistics.quantiles(gaps, n=4)
    return q2 >= 30.0 and q2 - q1 < 1.0


def coverage(shares: list[int], parts: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)) -> list[int]:
    """How many of the largest shares it takes to reach each part of the total."""
    total, ordered, out = sum(shares), sorted(shares, reverse=True), []
    for part in parts:
        acc = n = 0
        while n < len(ordered) and acc < total * part:
            acc += ordered[n]
            n += 1
        out.append(n)
    return out


def print_table(title: str, keys: list[str], prints: dict[str, Print], rows: dict[str, dict[str, object]],
                scans: dict[str, int]) -> None:  # fmt: skip
    total = sum(scans[k] for k in keys) or 1
    print(f"\n{title}")
    print(
        f"{'fingerprint':<16} {'days':>4} {'scans':>6} {'share':>6} {'policy':<8} {'burst':>5} {'p90':>4} "
        f"{'multi':>5} {'addr gap q1-q2-q3 s':<20} {'print gap q1-q2-q3':<20} {'idle':>5} {'life s':>7} "
        f"{'seq':<9} vendors / elements"
    )
    for k in keys:
        r, p = rows[k], prints[k]
        print(
            f"{k:<16} {len(p.days):>4} {scans[k]:>6} {100 * scans[k] / total:>5.1f}% {r['policy']!s:<8} "
            f"{r['burst_median']!s:>5} {r['burst_p90']!s:>4} {r['multi_scan_share']!s:>5} "
            f"{_q(r['gap_q']):<20} {_q(r['print_gap_q']):<20} {r['idle_share']!s:>5} "
            f"{'-' if r['lifetime_median_s'] is None else r['lifetime_median_s']!s:>7} {r['seq']!s:<9} "
            f"{','.join(map(str, r['vendors'])) or '-'} {list(p.ids)}"  # type: ignore[call-overload]
        )


def _q(value: object) -> str:
    return "-" if not isinstance(value, list) else "-".join(f"{q:g}" for q in value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--days", choices=("fryza-lab", "all"), default="all")
    ap.add_argument("--top", type=int, default=64, help="phone fingerprints to list (and emit)")
    ap.add_argument("--emit", type=Path, help="write the top phone fingerprints as JSON for the generator")
    args = ap.parse_args()
    prints, per_day = measure(lab_days(args.data, args.days))
    rows = {k: behaviour(v) for k, v in prints.items()}
    scans = {k: int(r["scans"]) for k, r in rows.items()}  # type: ignore[call-overload]
    total = sum(scans.values())
    fixed = [k for k in prints if rows[k]["fixed"]]
    phones = [k for k in prints if not rows[k]["fixed"]]
    randomized = [k for k in phones if prints[k].random_addresses > prints[k].global_addresses]
    print(f"{len(per_day)} lab days, {sum(p.frames for p in prints.values())} probe requests, {total} scans")
    print(
        f"distinct fingerprints: {len(prints)}: {len(fixed)} fixed devices (a global address heard over "
        f"{FIXED_LIFE_S / 3600:g} h or probing like a clock), {len(phones)} phones of which {len(randomized)} randomize; per day median "
        f"{statistics.median(per_day.values()):g} (range {min(per_day.values())}-{max(per_day.values())})"
    )
    print(
        f"scans: {100 * sum(scans[k] for k in fixed) / total:.1f} % from fixed devices; phone fingerprints "
        f"covering 50/80/90/95 % of phone scans: {'/'.join(map(str, coverage([scans[k] for k in phones])))}"
    )
    policies = Counter(str(rows[k]["policy"]) for k in phones if scans[k] >= 20)
    seqs = Counter(str(rows[k]["seq"]) for k in randomized if scans[k] >= 20)
    print(
        f"address policy of the {sum(policies.values())} phone fingerprints with >= 20 scans: {dict(policies)}"
    )
    print(f"sequence numbers at an address change (randomizing, >= 20 scans): {dict(seqs)}")
    top = sorted(phones, key=lambda k: -scans[k])[: args.top]
    print_table(f"The {len(top)} phone fingerprints with the most scans", top, prints, rows, scans)
    covered = sum(scans[k] for k in top)
    print(f"they cover {100 * covered / sum(scans[k] for k in phones):.1f} % of phone scans")
    print_table("Fixed devices", sorted(fixed, key=lambda k: -scans[k])[:6], prints, rows, scans)
    if args.emit:
        table = [
            {
                "fingerprint": k,
                "scan_share": round(scans[k] / covered, 5),
                "elements": prints[k].body.hex(),
                **rows[k],
            }
            for k in top
        ]
        args.emit.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.emit}")


if __name__ == "__main__":
    main()
