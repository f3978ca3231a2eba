"""Device classes: how each kind of phone or fixed device probes, declared once in a table.

The classes written here by hand imitate the five Baccichet single phones and the lab's fixed devices;
the phone classes of the default mix are measured per fingerprint on the lab days (lab.py); catalog.py
holds them all by name.

Each class imitates a family of real devices: its own ordered element list and capability bytes
(what a fingerprint sees), its scan rhythm, its burst shape and its address and sequence-number
behaviour. The capability bytes are written for this project in the shape real devices use; the
element orders are the ones the real captures show.

What the five Baccichet single-phone captures (Faraday bag, sniffers on channels 1, 6 and 11;
../shared/data/captures) show, measured with scapy (a scan = frames less than 1 s apart):

    phone          probes  scans  gap between scans (s)   frames/scan   addresses  seq at a change
                                  median  (quartiles)      median
    Galaxy S21       139     25     41    (9-81)               6            28      jumps (27/27)
    iPhone 12        612     45     16    (2-34)               6           325      jumps (385/391)
    iPhone 7         638     21     38    (4-86)              36            35      continues (34/34)
    iPhone XR       2223     37     26    (7-57)              75            91      jumps (86/90)
    Oppo Find X3    1185     15     20    (11-47)             93            15      jumps (14/14)

No address was seen in two scans: every phone changes it at least per scan, the iPhone 12 even
between channels of one scan (7 addresses per scan). Frames of a scan are 2-40 ms apart (median
2 ms Oppo, 20 ms iPhones, 40 ms S21); the S21 sends exactly 2 per channel; 15-25 % of scans are
short (one channel, 2-5 frames). A phone in a bag never finds its network, so it scans harder
than a phone in a pocket: the scan intervals below are set longer (20-120 s, shortened while the
screen is on), and bursts are kept at 1-3 frames per channel, as heard by a sensor on 1/6/11 in
the field (Fryza lab: ~10 frames per person-minute on one channel).

What the classes below produce (one hour inside, 20 devices each, all three channels heard):
3-10 frames a minute per phone (android_qualcomm most, ios_recent least), scan gap medians
30-60 s, 4-6 frames a scan, ios_recent 2.7 addresses a scan (~170 an hour), per-scan classes
60-115 addresses an hour, android_timed ~12, android_legacy and fixed devices one.

Fixed devices: the Fryza lab's all-in-one PCs (Intel OUI dc:fb:48 / 40:ec:99) send one or two
probes every 60.0 s all day with a global address and elements (0, 1, 50, 45, 127, 221).

Address rotation "interval" follows wpa_supplicant's `rand_addr_lifetime` (60 s default; vendors
raise it), which some Android builds use for scan addresses; "global" is the pre-randomization
behaviour Martin et al. (2017) still found on a share of Android devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from footfall_dev.craft import (
    EID_EXTENDED_CAPABILITIES,
    EID_EXTENDED_RATES,
    EID_HT_CAPABILITIES,
    EID_INTERWORKING,
    EID_SUPPORTED_RATES,
    EID_VHT_CAPABILITIES,
    EXT_HE_CAPABILITIES,
    ds_parameter_element,
    element,
    extension_element,
    ht_capabilities_element,
    rates_element,
    vendor_element,
)


class AddressPolicy(StrEnum):
    GLOBAL = "global"  # one globally administered address for life
    PER_BURST = "per_burst"  # a new random address for every scan
    PER_CHANNEL = "per_channel"  # a new random address for every channel of a scan (iPhone 12)
    INTERVAL = "interval"  # a random address kept for `rotation_s`, then replaced


class SeqPolicy(StrEnum):
    CONTINUE = "continue"  # the sequence counter runs on across an address change (iPhone 7)
    RESET = "reset"  # a new address starts at a random sequence number (most others)


SCAN_CHANNELS = (1, 6, 11)  # what phones probe on in 2.4 GHz, as the Baccichet sniffers heard them
DS = -1  # placeholder in an element template: the DS Parameter Set of the channel sent on

Template = tuple[tuple[int, bytes], ...]  # (element id or DS, encoded element)


@dataclass(frozen=True, slots=True)
class DeviceClass:
    """How one family of devices probes. Ranges are drawn uniformly unless said otherwise."""

    name: str
    like: str  # the real devices it imitates
    variants: tuple[Template, ...]  # element lists after the SSID; a device keeps one (its OS version)
    address: AddressPolicy
    seq: SeqPolicy
    interval_s: tuple[float, float]  # time between scans, screen off (log-uniform)
    frames_per_channel: tuple[int, int]
    rotation_s: tuple[float, float] = (0.0, 0.0)  # INTERVAL only: lifetime of an address, per device
    partial_share: float = 0.15  # scans that visit only one channel (measured 15-25 %)
    directed_share: float = 0.0  # probes naming a remembered network instead of the wildcard
    oui: bytes = b""  # GLOBAL only: the manufacturer prefix
    frame_gap_ms: tuple[float, float] = (1.0, 4.0)  # between frames on one channel
    screen: bool = True  # scans more often while its screen is on (phones; not fixed devices)
    channel_gap_ms: tuple[float, float] = (15.0, 40.0)  # switching to the next channel
    idle_share: float = 0.0  # gaps between scans that are idle gaps instead (phone asleep)
    idle_s: tuple[float, float] = (300.0, 1200.0)  # an idle gap (Baccichet iPhones: quiet 5-20 min)

    @property
    def randomizes(self) -> bool:
        return self.address is not AddressPolicy.GLOBAL

    def encode(self, variant: int, channel: int) -> bytes:
        """The elements after the SSID, as sent on `channel`."""
        return b"".join(
            ds_parameter_element(channel) if eid == DS else raw for eid, raw in self.variants[variant]
        )


def _e(eid: int, hex_body: str) -> tuple[int, bytes]:
    return eid, element(eid, bytes.fromhex(hex_body))


def _ds() -> tuple[int, bytes]:
    return DS, b""


RATES_B = (EID_SUPPORTED_RATES, rates_element((2, 4, 11, 22), basic=(2, 4, 11, 22)))
RATES = (EID_SUPPORTED_RATES, rates_element((2, 4, 11, 22)))
RATES_8 = (EID_SUPPORTED_RATES, rates_element((2, 4, 11, 12, 18, 22, 24, 36)))
EXT_RATES = _e(EID_EXTENDED_RATES, "0c1218243048606c")
EXT_RATES_4 = _e(EID_EXTENDED_RATES, "3048606c")
MS_WMM = (221, vendor_element(bytes.fromhex("0050f2"), 8, bytes.fromhex("002600")))
WFA_MBO = (221, vendor_element(bytes.fromhex("506f9a"), 0x16, bytes.fromhex("030101650101")))
QCOM = (221, vendor_element(bytes.fromhex("8cfdf0"), 1, bytes.fromhex("01020100")))
BRCM = (221, vendor_element(bytes.fromhex("00904c"), 4, bytes.fromhex("08bf0cb279910ffaff0000faff0020")))
BRCM2 = (221, vendor_element(bytes.fromhex("001018"), 2, bytes.fromhex("0000100000")))
WPS = (221, vendor_element(bytes.fromhex("0050f2"), 4, bytes.fromhex("104a000110103a000100")))


def _ht(info: int, ampdu: int, mcs: str) -> tuple[int, bytes]:
    return EID_HT_CAPABILITIES, ht_capabilities_element(info, ampdu, bytes.fromhex(mcs))


def _he(body: str) -> tuple[int, bytes]:
    return 255, extension_element(EXT_HE_CAPABILITIES, bytes.fromhex(body))


def _tpl(*items: tuple[int, bytes]) -> Template:
    return tuple(items)


IPHONE_RECENT = DeviceClass(
    name="ios_recent",
    like="iPhone 12-15, iOS 15+ (Baccichet iPhone 12: 7 addresses per scan)",
    variants=(
        _tpl(
            RATES_B,
            EXT_RATES,
            _ds(),
            _ht(0x402D, 0x1B, "ff"),
            _e(EID_EXTENDED_CAPABILITIES, "0000080400000040000020"),
            _he("0108081a0080203002000d00fe08000000fdfffdff"),
        ),
        _tpl(
            RATES_B,
            EXT_RATES,
            _ds(),
            _ht(0x402D, 0x1B, "ff"),
            _e(EID_EXTENDED_CAPABILITIES, "0000080400000040"),
        ),
    ),
    address=AddressPolicy.PER_CHANNEL,
    seq=SeqPolicy.RESET,
    interval_s=(30.0, 120.0),
    frames_per_channel=(1, 2),
    frame_gap_ms=(10.0, 25.0),
)
IPHONE_OLDER = DeviceClass(
    name="ios_older",
    like="iPhone 7-XR (Baccichet iPhone 7: sequence continues across addresses)",
    variants=(
        _tpl(
            RATES,
            EXT_RATES,
            _ds(),
            _ht(0x402D, 0x17, "ff"),
            _e(EID_EXTENDED_CAPABILITIES, "0000088400000040"),
            _e(EID_INTERWORKING, "0fffffffffffff"),
        ),
        _tpl(
            RATES,
            EXT_RATES,
            _ds(),
            _ht(0x402D, 0x17, "ff"),
            _e(EID_EXTENDED_CAPABILITIES, "0000080400000040"),
        ),
    ),
    address=AddressPolicy.PER_BURST,
    seq=SeqPolicy.CONTINUE,
    interval_s=(40.0, 120.0),
    frames_per_channel=(1, 3),
    frame_gap_ms=(10.0, 25.0),
)
GALAXY = DeviceClass(
    name="android_samsung",
    like="Galaxy S20-S23, Android 11+ (Baccichet S21: 2 frames per channel, new address per scan)",
    variants=(
        _tpl(
            RATES_B,
            EXT_RATES,
            _ds(),
            _ht(0x002D, 0x1B, "ffff"),
            _e(EID_EXTENDED_CAPABILITIES, "04004880014000400021"),
            _e(255, "020014"),
            _he("010808180080203002800d019e000c0000f5fff5ff"),
            BRCM,
            MS_WMM,
            BRCM2,
            WFA_MBO,
        ),
    ),
    address=AddressPolicy.PER_BURST,
    seq=SeqPolicy.RESET,
    interval_s=(20.0, 90.0),
    frames_per_channel=(2, 2),
    frame_gap_ms=(20.0, 45.0),
)
OPPO = DeviceClass(
    name="android_qualcomm",
    like="Oppo/OnePlus/Xiaomi on Qualcomm, ColorOS/MIUI (Baccichet Oppo Find X3 Neo; Fryza lab)",
    variants=(
        _tpl(
            RATES,
            EXT_RATES,
            _ds(),
            _ht(0x01EF, 0x13, "ffff"),
            _e(EID_VHT_CAPABILITIES, "92f19033faff6203faff6203"),
            MS_WMM,
            _e(EID_EXTENDED_CAPABILITIES, "00000a8200400000000120"),
            _e(255, "020046"),
            WFA_MBO,
            QCOM,
        ),
        _tpl(
            RATES,
            EXT_RATES,
            _ds(),
            _ht(0x012D, 0x13, "ff"),
            _e(EID_VHT_CAPABILITIES, "92719133feff8601feff8601"),
            MS_WMM,
            _e(255, "020026"),
            _e(EID_EXTENDED_CAPABILITIES, "00000a82004000000001"),
            WFA_MBO,
            QCOM,
        ),
    ),
    address=AddressPolicy.PER_BURST,
    seq=SeqPolicy.RESET,
    interval_s=(20.0, 60.0),
    frames_per_channel=(1, 3),
    directed_share=0.3,
)
ANDROID_TIMED = DeviceClass(
    name="android_timed",
    like="Android builds keeping a scan address for wpa_supplicant's rand_addr_lifetime or longer",
    variants=(
        _tpl(
            RATES_8,
            EXT_RATES_4,
            _ds(),
            _ht(0x016F, 0x17, "ff"),
            _e(EID_EXTENDED_CAPABILITIES, "0400000000000040"),
            _e(EID_VHT_CAPABILITIES, "31710003feff0000feff0000"),
            MS_WMM,
        ),
    ),
    address=AddressPolicy.INTERVAL,
    seq=SeqPolicy.CONTINUE,
    interval_s=(30.0, 120.0),
    frames_per_channel=(1, 2),
    rotation_s=(60.0, 900.0),
)
ANDROID_LEGACY = DeviceClass(
    name="android_legacy",
    like="older Android phones that probe with their global address (Martin et al. 2017)",
    variants=(
        _tpl(
            RATES_8,
            EXT_RATES_4,
            _ds(),
            _ht(0x096F, 0x17, "ff"),
            _e(EID_EXTENDED_CAPABILITIES, "000008800140000000"),
            MS_WMM,
        ),
    ),
    address=AddressPolicy.GLOBAL,
    seq=SeqPolicy.CONTINUE,
    interval_s=(40.0, 120.0),
    frames_per_channel=(1, 2),
    directed_share=0.4,
    oui=bytes.fromhex("98f621"),
)
WINDOWS_PC = DeviceClass(
    name="fixed_pc",
    like="all-in-one PC with an Intel card (Fryza lab dc:fb:48: probes every 60.0 s all day)",
    variants=(
        _tpl(
            RATES,
            EXT_RATES,
            _ht(0x01EF, 0x17, "ffff"),
            _e(EID_EXTENDED_CAPABILITIES, "0400000000000040"),
            WPS,
        ),
    ),
    address=AddressPolicy.GLOBAL,
    seq=SeqPolicy.CONTINUE,
    interval_s=(59.9, 60.1),
    frames_per_channel=(1, 1),  # Fryza: 1-2 per scan on one channel, with leakage
    partial_share=0.0,
    oui=bytes.fromhex("dcfb48"),
    screen=False,
)
PRINTER = DeviceClass(
    name="fixed_printer",
    like="network printer or till terminal looking for its access point (assumed: 2-3 min)",
    variants=(_tpl(RATES, EXT_RATES, _ds(), _ht(0x000C, 0x03, "ff"), WPS),),
    address=AddressPolicy.GLOBAL,
    seq=SeqPolicy.CONTINUE,
    interval_s=(120.0, 180.0),
    frames_per_channel=(1, 1),
    partial_share=0.0,
    oui=bytes.fromhex("40ec99"),
    screen=False,
)

HAND_CLASSES = (IPHONE_RECENT, IPHONE_OLDER, GALAXY, OPPO, ANDROID_TIMED, ANDROID_LEGACY, WINDOWS_PC, PRINTER)
FIXED_CLASSES = ("fixed_pc", "fixed_printer")
