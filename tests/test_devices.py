"""Device resolution: what survives address randomization groups addresses into devices."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import Sighting
from sensor.estimate.devices import DeviceResolver, ResolverParams
from sensor.keys.pseudonym import FixedSalt, Pseudonymizer

S = 1_000_000_000
PHONE = "a1" * 8  # fingerprints
PC = "c0" * 8


def sighting(
    t_s: float,
    address: str,
    seq: int,
    rssi: int = -60,
    fingerprint: str = PHONE,
    randomized: bool = True,
    epoch: str = "e1",
) -> Sighting:
    return Sighting(
        ts_ns=int(t_s * S),
        address=address,
        epoch=epoch,
        randomized=randomized,
        rssi_dbm=rssi,
        channel=6,
        seq=seq,
        fingerprint=fingerprint,
        ie_ids=(0, 1, 50, 3, 45, 127),
        directed=False,
    )


def phone_bursts(
    start_s: float, every_s: float, bursts: int, seq0: int, rssi: int, tag: str, seq_step: int = 3
) -> list[Sighting]:
    """A phone that takes a new random address for every scan burst of three frames."""
    out = []
    seq = seq0
    for b in range(bursts):
        address = f"{tag}{b:04x}".ljust(16, "0")
        for f in range(3):
            out.append(sighting(start_s + b * every_s + f * 0.02, address, seq % 4096, rssi))
            seq += 1
        seq += seq_step
    return out


def resolve_all(resolver: DeviceResolver, sightings: list[Sighting]) -> list[str]:
    return [resolver.resolve(s) for s in sorted(sightings, key=lambda s: s.ts_ns)]


def test_a_phone_changing_address_every_burst_with_running_sequence_numbers_is_one_device() -> None:
    sightings = phone_bursts(0, 40, bursts=30, seq0=100, rssi=-60, tag="aa")
    ids = resolve_all(DeviceResolver(), sightings)
    assert len({s.address for s in sightings}) == 30
    assert len(set(ids)) == 1


def test_the_sequence_match_links_even_when_the_signal_jumps() -> None:
    # Sequence continuity is the stronger evidence: a 15 dB jump (phone out of a pocket) still links.
    a = phone_bursts(0, 30, bursts=5, seq0=10, rssi=-50, tag="aa")
    b = phone_bursts(150, 30, bursts=5, seq0=a[-1].seq + 4, rssi=-65, tag="bb")
    resolver = DeviceResolver()
    assert len(set(resolve_all(resolver, a + b))) == 1
    assert resolver.stats.links_by_seq >= 1


def test_two_phones_of_one_model_with_unrelated_sequence_numbers_and_different_signal_are_two() -> None:
    near = phone_bursts(0, 20, bursts=20, seq0=100, rssi=-45, tag="aa", seq_step=211)
    far = phone_bursts(7, 20, bursts=20, seq0=2900, rssi=-78, tag="bb", seq_step=307)
    resolver = DeviceResolver()
    ids = resolve_all(resolver, near + far)
    by_phone: dict[str, set[str]] = {s.address[:2]: set() for s in near + far}
    for s, device in zip(sorted(near + far, key=lambda s: s.ts_ns), ids, strict=True):
        by_phone[s.address[:2]].add(device)
    assert len(by_phone["aa"]) == 1
    assert len(by_phone["bb"]) == 1
    assert by_phone["aa"] != by_phone["bb"]


def test_a_new_address_after_the_link_window_is_a_new_device() -> None:
    # Another phone of the model is around, so the lone-phone rule does not apply (see below).
    params = ResolverParams(link_window_s=120)
    first = phone_bursts(0, 30, bursts=3, seq0=10, rssi=-60, tag="aa", seq_step=500)
    other = phone_bursts(200, 30, bursts=1, seq0=1500, rssi=-85, tag="cc", seq_step=500)
    later = phone_bursts(60 + 200, 30, bursts=3, seq0=3000, rssi=-60, tag="bb", seq_step=500)
    ids = resolve_all(DeviceResolver(params), first + other + later)
    assert len(set(ids)) == 3
    assert (
        len(set(resolve_all(DeviceResolver(dataclasses.replace(params, lone_link_s=0)), first + later))) == 2
    )


def test_a_phone_alone_of_its_kind_stays_one_device_across_a_fifteen_minute_silence() -> None:
    # An idle phone sleeps 15 minutes and scans again with a new address and a new sequence counter:
    # nothing else of its kind was heard meanwhile, so it is the same phone, not a second visitor.
    first = phone_bursts(0, 30, bursts=5, seq0=10, rssi=-60, tag="aa", seq_step=500)
    later = phone_bursts(120 + 900, 30, bursts=5, seq0=3000, rssi=-63, tag="bb", seq_step=500)
    resolver = DeviceResolver()
    assert len(set(resolve_all(resolver, first + later))) == 1
    assert resolver.stats.links_by_lone == 1


def test_after_a_silence_a_phone_of_its_kind_heard_meanwhile_makes_the_next_address_a_stranger() -> None:
    first = phone_bursts(0, 30, bursts=5, seq0=10, rssi=-60, tag="aa", seq_step=500)
    passer = phone_bursts(100, 30, bursts=1, seq0=1500, rssi=-82, tag="cc", seq_step=500)  # another phone
    later = phone_bursts(120 + 900, 30, bursts=5, seq0=3000, rssi=-63, tag="bb", seq_step=500)
    resolver = DeviceResolver()
    ids = resolve_all(resolver, first + passer + later)
    assert ids[0] != ids[-1]
    assert resolver.stats.links_by_lone == 0


def on_channel(s: Sighting, channel: int, rssi: int) -> Sighting:
    return dataclasses.replace(s, channel=channel, rssi_dbm=rssi)


def test_a_lone_phone_whose_bursts_swing_across_channels_keeps_a_new_address_inside_its_swing() -> None:
    # As the Baccichet iPhone XR: each burst reads -20 and -66 dBm on channel 1 and -50 on channel 11;
    # a new address on channel 11 at -62 is 12 dB under that channel's range, past the fingerprint
    # rule's 10 dB, but inside the phone's own swing over its channels.
    bursts = phone_bursts(0, 30, bursts=4, seq0=10, rssi=-60, tag="aa", seq_step=500)
    level = [(1, -20), (1, -66), (11, -50)]
    swinging = [on_channel(s, *level[i % 3]) for i, s in enumerate(bursts)]
    new = [on_channel(s, 11, -62) for s in phone_bursts(130, 30, bursts=1, seq0=3000, rssi=-62, tag="bb")]
    resolver = DeviceResolver()
    assert len(set(resolve_all(resolver, swinging + new))) == 1
    assert resolver.stats.links_by_lone == 1
    # Another phone of its family heard meanwhile: no longer alone, the fingerprint rule decides.
    other = [on_channel(s, 11, -80) for s in phone_bursts(100, 30, bursts=1, seq0=1500, rssi=-80, tag="cc")]
    assert len(set(resolve_all(DeviceResolver(), swinging + other + new))) == 3


def test_a_lone_phone_does_not_take_a_frame_far_outside_its_swing() -> None:
    steady = phone_bursts(0, 30, bursts=4, seq0=10, rssi=-50, tag="aa", seq_step=500)
    far = phone_bursts(130, 30, bursts=1, seq0=3000, rssi=-75, tag="bb")  # 25 dB under all it read
    assert len(set(resolve_all(DeviceResolver(), steady + far))) == 2


def test_a_weak_phone_on_the_street_is_not_linked_across_a_silence() -> None:
    first = phone_bursts(0, 30, bursts=3, seq0=10, rssi=-85, tag="aa", seq_step=500)
    later = phone_bursts(900, 30, bursts=3, seq0=3000, rssi=-85, tag="bb", seq_step=500)
    assert len(set(resolve_all(DeviceResolver(), first + later))) == 2


def test_a_pc_probing_every_minute_with_one_global_address_is_flagged_fixed() -> None:
    pc = [
        sighting(m * 60.0 + f * 0.01, "pc" * 8, (m * 2 + f) % 4096, -50, PC, randomized=False)
        for m in range(12)
        for f in range(2)
    ]
    phone = phone_bursts(3, 60, bursts=12, seq0=10, rssi=-55, tag="aa")
    resolver = DeviceResolver()
    ids = dict(zip(sorted(pc + phone, key=lambda s: s.ts_ns), resolve_all(resolver, pc + phone), strict=True))
    pc_ids = {ids[s] for s in pc}
    phone_ids = {ids[s] for s in phone}
    assert len(pc_ids) == 1
    assert resolver.is_fixed(next(iter(pc_ids)))
    assert not any(resolver.is_fixed(d) for d in phone_ids)
    assert resolver.fixed_devices == frozenset(pc_ids)


def test_two_pcs_of_one_model_that_first_look_like_one_device_are_split_and_both_flagged() -> None:
    pcs = [
        sighting(m * 60.0 + offset, name * 8, (m * 2) % 4096 + k * 1000, -52 + k, PC, randomized=False)
        for m in range(15)
        for k, (name, offset) in enumerate((("p1", 0.0), ("p2", 5.0)))
    ]
    resolver = DeviceResolver()
    ids = resolve_all(resolver, pcs)
    final = {s.address: d for s, d in zip(sorted(pcs, key=lambda s: s.ts_ns), ids, strict=True)}
    assert final["p1" * 8] != final["p2" * 8]
    assert all(resolver.is_fixed(d) for d in final.values())


def test_a_device_heard_without_a_long_gap_for_the_staff_threshold_is_flagged() -> None:
    params = ResolverParams(fixed_min_s=3600, fixed_regular_bursts=10_000)
    # One global address, irregular gaps (no clock), heard for 70 minutes.
    gaps = [37, 53, 91, 29, 140, 61]
    t, sightings = 0.0, []
    for i in range(60):
        sightings.append(sighting(t, "st" * 8, i, -60, "5a" * 8, randomized=False))
        t += gaps[i % len(gaps)]
    resolver = DeviceResolver(params)
    ids = resolve_all(resolver, sightings)
    assert resolver.is_fixed(ids[-1])
    assert t > 3600


def test_resolution_is_deterministic() -> None:
    traffic = (
        phone_bursts(0, 20, bursts=15, seq0=100, rssi=-45, tag="aa", seq_step=211)
        + phone_bursts(7, 25, bursts=12, seq0=2900, rssi=-70, tag="bb", seq_step=307)
        + phone_bursts(3, 30, bursts=10, seq0=50, rssi=-60, tag="cc")
    )
    assert resolve_all(DeviceResolver(), traffic) == resolve_all(DeviceResolver(), traffic)


def test_nothing_links_across_a_salt_epoch() -> None:
    before = phone_bursts(0, 30, bursts=3, seq0=10, rssi=-60, tag="aa")
    after = [
        sighting(s.ts_ns / S + 90, s.address.replace("aa", "bb"), s.seq + 9, -60, epoch="e2") for s in before
    ]
    resolver = DeviceResolver()
    ids = resolve_all(resolver, before + after)
    assert set(ids[:9]).isdisjoint(ids[9:])


def test_silent_devices_are_forgotten_so_memory_follows_recent_traffic() -> None:
    resolver = DeviceResolver(ResolverParams(forget_s=600))
    for i in range(50):  # 50 phone models (fingerprints and element families)
        s = sighting(i * 0.5, f"{i:016x}", i * 300, -60, f"{i:016x}")
        resolver.resolve(dataclasses.replace(s, ie_ids=(0, 1, 100 + i)))
    assert resolver.live_devices == 50
    resolver.resolve(sighting(2000, "ff" * 8, 1, -60))
    assert resolver.live_devices == 1


def test_an_old_random_address_that_speaks_again_was_another_phone_and_is_split_off() -> None:
    # Two phones of one model side by side, each keeping its random address for minutes (the
    # Android "rotation interval" kind): the second is linked to the first at sight, but when the
    # first address comes back, they are two.
    a = [sighting(t, "aa" * 8, 100 + i * 7, -60) for i, t in enumerate(range(0, 600, 40))]
    b = [sighting(t + 20, "bb" * 8, 3000 + i * 5, -61) for i, t in enumerate(range(0, 600, 40))]
    resolver = DeviceResolver()
    ids = dict(zip(sorted(a + b, key=lambda s: s.ts_ns), resolve_all(resolver, a + b), strict=True))
    assert ids[a[-1]] != ids[b[-1]]
    assert resolver.stats.splits >= 1


def test_a_weak_passerby_does_not_absorb_the_next_one_with_the_same_phone_model() -> None:
    first = phone_bursts(0, 30, bursts=2, seq0=10, rssi=-82, tag="aa", seq_step=500)
    second = phone_bursts(30 + 180, 30, bursts=2, seq0=3000, rssi=-81, tag="bb", seq_step=500)
    assert len(set(resolve_all(DeviceResolver(), first + second))) == 2


def test_an_inside_phone_is_continued_across_the_same_silence() -> None:
    before = phone_bursts(0, 30, bursts=2, seq0=10, rssi=-55, tag="aa", seq_step=500)
    after = phone_bursts(30 + 180, 30, bursts=2, seq0=3000, rssi=-56, tag="bb", seq_step=500)
    assert len(set(resolve_all(DeviceResolver(), before + after))) == 1


def test_a_second_probe_kind_joins_the_only_live_phone_of_its_family() -> None:
    # The Oppo way: most scans with one element list, some with the vendor elements reordered.
    main = phone_bursts(0, 40, bursts=10, seq0=10, rssi=-50, tag="aa", seq_step=500)
    other = [
        Sighting(s.ts_ns + 20 * S, s.address.replace("aa", "cc"), "e1", True, -51, 6, (s.seq + 2000) % 4096,
                 "b2" * 8, (0, 1, 50, 3, 221, 45, 127), False)
        for s in main[::6]
    ]  # fmt: skip
    resolver = DeviceResolver()
    assert len(set(resolve_all(resolver, main + other))) == 1
    assert resolver.stats.links_by_family >= 1


def test_a_second_probe_kind_is_its_own_device_while_two_phones_of_its_family_are_live() -> None:
    one = phone_bursts(0, 40, bursts=10, seq0=10, rssi=-50, tag="aa", seq_step=500)
    two = phone_bursts(10, 40, bursts=10, seq0=2000, rssi=-70, tag="dd", seq_step=500)
    other = [
        Sighting(
            int(205 * S), "cc" * 8, "e1", True, -51, 6, 900, "b2" * 8, (0, 1, 50, 3, 221, 45, 127), False
        )
    ]
    resolver = DeviceResolver()
    ids = dict(
        zip(
            sorted(one + two + other, key=lambda s: s.ts_ns),
            resolve_all(resolver, one + two + other),
            strict=True,
        )
    )
    assert ids[other[0]] not in {ids[one[0]], ids[two[0]]}
    assert resolver.stats.links_by_family == 0


def test_a_global_address_is_never_linked_to_another_address() -> None:
    laptop = [sighting(m * 45.0, "cd" * 8, m, -55, PHONE, randomized=False) for m in range(5)]
    phone = phone_bursts(5, 45, bursts=5, seq0=6, rssi=-55, tag="aa", seq_step=0)
    ids = resolve_all(DeviceResolver(), laptop + phone)
    assert len(set(ids)) == 2


def test_a_pc_sending_a_straggler_scan_after_each_beat_is_still_flagged_fixed() -> None:
    # The Fryza lab PCs: a probe every 60.0 s and now and then a second one 2-6 s later.
    frames = [sighting(m * 60.0, "pc" * 8, m * 3 % 4096, -50, PC, randomized=False) for m in range(12)]
    frames += [
        sighting(m * 60.0 + 4, "pc" * 8, m * 3 + 1, -50, PC, randomized=False) for m in range(0, 12, 2)
    ]
    resolver = DeviceResolver()
    ids = resolve_all(resolver, frames)
    assert resolver.is_fixed(ids[-1])


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_candidates", 0), ("weak_rssi_dbm", 5), ("rssi_tolerance_db", -1), ("resident_rssi_dbm", 3)],
)
def test_resolver_parameters_out_of_range_are_refused_with_the_value(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"got {value}"):
        ResolverParams(**{field: value})


def test_resolver_forgets_the_same_addresses_when_frames_go_back_in_time() -> None:
    # A frame older than the last minute's housekeeping (a second radio's frames merged late) puts
    # its address among the stragglers, outside the order heard: it must still be forgotten when it
    # would have been had the frames come in order. One global address beats every 10 s, so the
    # housekeeping falls on each whole minute in both orders.
    beats = [sighting(t, "c1" * 8, t // 10, -50, PC, randomized=False) for t in range(0, 1500, 10)]
    late = [  # visitor k heard once at 60k + 25 s, delivered after the beat at 60k + 90 s
        sighting(60 * k + 25, f"{k:02x}" * 8, k, -60, f"{k:016x}", randomized=False) for k in range(1, 21)
    ]
    in_order = sorted(beats + late, key=lambda s: s.ts_ns)
    delivered = sorted(
        [(s.ts_ns, 0, s) for s in beats] + [(s.ts_ns + 65 * S, 1, s) for s in late],
        key=lambda item: item[:2],
    )
    ticks = [sighting(t, "c1" * 8, t // 10, -50, PC, randomized=False) for t in range(1500, 2200, 10)]
    again = [dataclasses.replace(s, ts_ns=2200 * S) for s in late]

    def run(frames: list[Sighting]) -> tuple[list[str], list[int], list[str], int]:
        resolver = DeviceResolver(ResolverParams(forget_s=600))
        ids = {(s.address, s.ts_ns): resolver.resolve(s) for s in frames}
        live = []
        for s in ticks:  # the visitors fall silent for forget_s one after the other
            resolver.resolve(s)
            live.append(resolver.live_devices)
        addresses = resolver.stats.addresses
        reheard = [resolver.resolve(s) for s in again]  # forgotten: new addresses, new devices
        return (
            [ids[s.address, s.ts_ns] for s in in_order],
            live,
            reheard,
            resolver.stats.addresses - addresses,
        )

    expected = run(in_order)
    assert run([s for *_, s in delivered]) == expected
    _, live, _, new_addresses = expected
    assert live[0] > live[-1] == 1  # forgetting did happen during the ticks, down to the beating PC
    assert new_addresses == len(late)


# -- real single-phone captures (Baccichet: one phone in a Faraday bag, three radios) ----------------

PHONES = ["S21Ultra-M", "iPhone12-M", "iPhone7-F", "OppoFindX3Neo-A", "iPhoneXR-L"]


def real_phone(shared_data: Path, phone: str) -> list[Sighting]:
    """A single-phone capture as sightings in time order. The publisher replaced every MAC with 6 random
    bytes, so the locally administered bit is random too; these phones sent randomized addresses (iOS
    14+, Android 10+): every sighting is marked randomized."""
    decoder = FrameDecoder()
    names = Pseudonymizer(FixedSalt(b"k" * 32))
    out = []
    for r in read_capture(shared_data / "captures" / f"baccichet_{phone}_anonymized.pcap"):
        p = decoder.decode(r.ts_ns, r.linktype, r.data)
        if p is not None:
            out.append(
                Sighting(
                    r.ts_ns, names.pseudonym(p.transmitter, r.ts_ns), names.epoch, True,
                    p.rssi_dbm, p.channel, p.seq, p.fingerprint, p.ie_ids, p.ssid != "",
                )
            )  # fmt: skip
    return sorted(out, key=lambda s: s.ts_ns)


@pytest.mark.realdata
@pytest.mark.parametrize("phone", PHONES)
def test_one_real_phone_with_many_random_addresses_is_at_most_two_devices(
    shared_data: Path, phone: str
) -> None:
    sightings = real_phone(shared_data, phone)  # three radios, merged in time order
    devices = set(resolve_all(DeviceResolver(), sightings))
    assert len({s.address for s in sightings}) >= 15
    assert len(devices) <= 2


@pytest.mark.realdata
@pytest.mark.parametrize("phone", ["S21Ultra-M", "iPhone7-F", "iPhone12-M", "iPhoneXR-L"])
def test_these_real_phones_are_one_device(shared_data: Path, phone: str) -> None:
    """The S21's last burst reads +15 dBm (a broken signal field): linked as if no signal were known,
    it stays with the phone instead of starting a second device. The iPhone 12's second probe kind
    and the iPhone XR's new addresses lie outside the phone's range on their channel but inside its
    swing over all channels: alone of their kind, they are the phone (`Linker.envelope`)."""
    sightings = real_phone(shared_data, phone)
    resolver = DeviceResolver()
    assert len(set(resolve_all(resolver, sightings))) == 1
    if phone == "S21Ultra-M":
        assert max(s.rssi_dbm or -100 for s in sightings) > 0
    if phone in ("iPhone12-M", "iPhoneXR-L"):
        assert resolver.stats.links_by_lone >= 1


@pytest.mark.realdata
@pytest.mark.parametrize("silence_min", [12, 20])
def test_a_real_phone_that_goes_quiet_for_minutes_and_scans_again_stays_one_device(
    shared_data: Path, silence_min: int
) -> None:
    # The iPhone 7 capture (35 addresses, one device) cut in two, the second half moved on by a
    # silence: it comes back with new addresses and a sequence counter past the sequence rule's reach.
    sightings = real_phone(shared_data, "iPhone7-F")
    half = len(sightings) // 2
    while sightings[half].address == sightings[half - 1].address:
        half += 1  # cut between two scans, where the phone takes a new address
    middle = sightings[half].ts_ns
    shift = silence_min * 60 * S
    moved = [dataclasses.replace(s, ts_ns=s.ts_ns + shift) if s.ts_ns >= middle else s for s in sightings]
    resolver = DeviceResolver()
    assert len(set(resolve_all(resolver, moved))) == 1
    assert resolver.stats.links_by_lone >= 1
    without = DeviceResolver(ResolverParams(lone_link_s=0))
    assert len(set(resolve_all(without, moved))) == 2  # what the sensor read before the rule


STAFF = "5f" * 8


def scans(
    start_s: float, every_s: float, until_s: float, rssi: int, fingerprint: str, tag: str
) -> list[Sighting]:
    """A phone with a new random address and unrelated sequence numbers for every scan (three frames)."""
    out = []
    t, n = start_s, 0
    while t < until_s:
        address = f"{tag}{n:06x}".ljust(16, "0")
        out += [sighting(t + f * 0.02, address, (n * 977 + f) % 4096, rssi, fingerprint) for f in range(3)]
        t, n = t + every_s, n + 1
    return out


def fixed_by_scan_time(resolver: DeviceResolver, sightings: list[Sighting]) -> dict[float, bool]:
    ordered = sorted(sightings, key=lambda s: s.ts_ns)
    ids = resolve_all(resolver, ordered)
    return {s.ts_ns / S: resolver.is_fixed(d) for s, d in zip(ordered, ids, strict=True)}


def test_a_staff_phone_that_randomizes_is_flagged_once_its_fingerprint_has_been_inside_for_hours() -> None:
    # Every scan 400 s apart (past the link window): each is a new device, none lives for hours (the
    # lone-phone rule off, as when other phones of its family are around: it would link the scans).
    staff = scans(0, 400, 5 * 3600, -60, STAFF, "st")
    visitor = scans(4.5 * 3600, 60, 4.5 * 3600 + 600, -50, PHONE, "vi")  # 10 dB off: no family link
    resolver = DeviceResolver(ResolverParams(lone_link_s=0))
    fixed = fixed_by_scan_time(resolver, staff + visitor)
    staff_times = sorted({round(s.ts_ns / S) for s in staff})
    assert len(staff_times) == 45
    assert not any(fixed[s.ts_ns / S] for s in staff if s.ts_ns < 4 * 3600 * S)
    assert all(fixed[s.ts_ns / S] for s in staff if s.ts_ns > 4 * 3600 * S)
    assert not any(fixed[s.ts_ns / S] for s in visitor)  # another fingerprint: a visitor


def test_a_lone_staff_phone_that_randomizes_is_one_device_flagged_after_hours_inside() -> None:
    staff = scans(0, 400, 5 * 3600, -60, STAFF, "st")
    resolver = DeviceResolver()
    ids = resolve_all(resolver, staff)
    # One phone across its silences until it is found staff (4 h); its later scans are the
    # resident's next pieces, flagged at birth. None of it is a visitor.
    assert len({d for s, d in zip(staff, ids, strict=True) if s.ts_ns < 4 * 3600 * S}) == 1
    assert all(resolver.is_fixed(d) for d in ids)


def test_a_silence_longer_than_the_gap_restarts_the_fingerprints_run() -> None:
    before = scans(0, 400, 3 * 3600, -60, STAFF, "aa")
    after = scans(3 * 3600 + 1200, 400, 5.5 * 3600, -60, STAFF, "bb")  # 20 minutes unheard
    fixed = fixed_by_scan_time(DeviceResolver(), before + after)
    assert not any(fixed.values())


def test_a_fingerprint_heard_only_weak_all_day_has_no_resident() -> None:
    street = scans(0, 200, 6 * 3600, -80, STAFF, "pb")  # the same model passing by, all day
    fixed = fixed_by_scan_time(DeviceResolver(), street)
    assert not any(fixed.values())


def test_resident_fingerprints_can_be_turned_off() -> None:
    staff = scans(0, 400, 5 * 3600, -60, STAFF, "st")
    fixed = fixed_by_scan_time(DeviceResolver(ResolverParams(resident_rssi_dbm=None)), staff)
    assert not any(fixed.values())
