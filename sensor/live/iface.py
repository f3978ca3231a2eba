"""The monitor interface: what state it is in (from /sys), and setting it up or tearing it down (iw, ip).

Which radios can do it. A monitor interface needs a driver that supports monitor mode:
- USB adapters with in-kernel drivers work directly: Atheros AR9271 (ath9k_htc), MediaTek MT7601U,
  MT7610U/MT7612U (mt76x0u/mt76x2u), MT7921AU (mt7921u), Ralink RT3070/RT5370 (rt2800usb).
- The Raspberry Pi's built-in Broadcom radio (brcmfmac: Pi 3B+, 4, 5, Zero 2 W) does not, unless its
  firmware is patched with nexmon (github: seemoo-lab/nexmon); then `iw phy phy0 interface add mon0
  type monitor` works like on a USB adapter. Without nexmon use a USB adapter and keep wlan0 for the
  network.
`iw phy` lists the radios (phy0, phy1...) and `iw list` shows "Supported interface modes: monitor".

Setup, as the systemd step footfall-iface.service runs it (needs CAP_NET_ADMIN):
    iw phy PHY interface add IFACE type monitor      (only when capture.phy is set and IFACE is missing)
    ip link set IFACE down; iw dev IFACE set type monitor   (only when IFACE exists in another mode)
    ip link set IFACE up
    iw dev IFACE set channel N                       (the plan's first channel)
Every failing command becomes an `IfaceError` naming the command, its exit code and output, and what to
do about it (from `_HINTS`).
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sensor.config import CaptureConfig
from sensor.live.channels import CommandResult, Runner, run_command, set_channel_argv

log = logging.getLogger(__name__)

SYS_NET = Path("/sys/class/net")
IFF_UP = 0x1
# ARPHRD (the interface's hardware type, /sys/class/net/X/type) → pcap link type of what it captures.
LINKTYPE_OF_ARPHRD = {803: 127, 801: 105, 802: 119}  # radiotap, bare 802.11, Prism
ARPHRD_NAMES = {1: "ethernet", 801: "802.11", 802: "prism", 803: "radiotap", 772: "loopback", 65534: "none"}


class IfaceError(Exception):
    """Setting up or tearing down the interface failed; the message says what to do."""


@dataclass(frozen=True, slots=True)
class IfaceState:
    """An interface as the kernel shows it in /sys (no privileges needed to read it)."""

    name: str
    exists: bool
    up: bool = False
    arphrd: int | None = None
    operstate: str = ""

    @property
    def monitor(self) -> bool:
        """Captures 802.11 frames with a radio header (what a monitor interface or the test TAP does)."""
        return self.arphrd in LINKTYPE_OF_ARPHRD

    @property
    def linktype(self) -> int | None:
        return LINKTYPE_OF_ARPHRD.get(self.arphrd) if self.arphrd is not None else None

    def describe(self) -> str:
        if not self.exists:
            return f"{self.name}: no such interface"
        kind = ARPHRD_NAMES.get(self.arphrd or -1, f"type {self.arphrd}")
        return (
            f"{self.name}: {'up' if self.up else 'down'}, link type {kind}, operstate {self.operstate or '?'}"
        )


def read_state(name: str, sys_net: Path = SYS_NET) -> IfaceState:
    base = sys_net / name
    try:
        arphrd = int((base / "type").read_text().strip())
        flags = int((base / "flags").read_text().strip(), 16)
    except (OSError, ValueError):
        return IfaceState(name, exists=False)
    try:
        operstate = (base / "operstate").read_text().strip()
    except OSError:
        operstate = ""
    return IfaceState(name, True, bool(flags & IFF_UP), arphrd, operstate)


StateReader = Callable[[str], IfaceState]


# (substring of a failing command's output, what to do): the first match is added to the error.
_HINTS: tuple[tuple[str, str], ...] = (
    ("command not found", "install it: apt-get install iw iproute2"),
    ("Operation not permitted", "needs CAP_NET_ADMIN: run as root or through footfall-iface.service"),
    (
        "Operation not supported",
        "the driver has no monitor mode: on the Pi's built-in Wi-Fi install nexmon, "
        "or use a USB adapter with a monitor-capable driver (ath9k_htc, mt76, rt2800usb)",
    ),
    ("No such device", "no such radio: `iw phy` lists them; set capture.phy accordingly"),
    (
        "Device or resource busy",
        "the radio is in use: stop NetworkManager/wpa_supplicant on it, or use another adapter",
    ),
    (
        "Invalid argument",
        "the driver refuses this channel here (regulatory domain?): `iw reg get`, `iw list`",
    ),
    ("RF-kill", "the radio is blocked: rfkill unblock wifi"),
)


def _check(result: CommandResult, doing: str) -> None:
    if result.ok:
        return
    text = result.stderr + result.stdout
    hint = next((h for needle, h in _HINTS if needle.lower() in text.lower()), "")
    raise IfaceError(f"{doing}: {result.describe()}" + (f" — {hint}" if hint else ""))


def setup(
    capture: CaptureConfig,
    runner: Runner = run_command,
    state_of: StateReader = read_state,
) -> list[str]:
    """Bring `capture.interface` up in monitor mode on the plan's first channel; returns what was done."""
    name, phy = capture.interface, capture.phy
    done: list[str] = []

    def run(argv: Sequence[str], doing: str) -> None:
        _check(runner(argv), doing)
        done.append(" ".join(argv))

    state = state_of(name)
    if not state.exists:
        if phy is None:
            raise IfaceError(
                f"interface {name} does not exist and capture.phy is not set: set capture.phy to the radio "
                "to create it on (`iw phy` lists them), or create it yourself"
            )
        run(("iw", "phy", phy, "interface", "add", name, "type", "monitor"), f"creating {name} on {phy}")
    elif not state.monitor:
        run(("ip", "link", "set", name, "down"), f"taking {name} down to change its mode")
        run(("iw", "dev", name, "set", "type", "monitor"), f"switching {name} to monitor mode")
    run(("ip", "link", "set", name, "up"), f"bringing {name} up")
    run(set_channel_argv(name, capture.channels[0]), f"tuning {name} to channel {capture.channels[0]}")
    after = state_of(name)
    if not (after.exists and after.up and after.monitor):
        raise IfaceError(f"after setup, {after.describe()}: expected up with a radiotap link type")
    return done


def teardown(
    capture: CaptureConfig, runner: Runner = run_command, state_of: StateReader = read_state
) -> list[str]:
    """Undo `setup`: delete the interface if footfall created it (capture.phy set), else take it down."""
    name = capture.interface
    if not state_of(name).exists:
        return []
    argv: tuple[str, ...] = (
        ("iw", "dev", name, "del") if capture.phy is not None else ("ip", "link", "set", name, "down")
    )
    _check(runner(argv), f"tearing down {name}")
    return [" ".join(argv)]


class RadiotapTap:
    """A TAP device with the radiotap link type: a stand-in monitor interface for tests and benchmarks.

    Set to ARPHRD_IEEE80211_RADIOTAP (ioctl TUNSETLINK, before it is brought up), it shows up like a
    monitor interface, and every frame written to it is received by packet sockets as link type 127.
    Needs /dev/net/tun and CAP_NET_ADMIN; `OSError` otherwise.
    """

    TUNSETIFF, TUNSETLINK = 0x400454CA, 0x400454CD
    IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
    ARPHRD_IEEE80211_RADIOTAP = 803

    def __init__(self, name: str, runner: Runner = run_command) -> None:
        self.name = name
        self._fd = os.open("/dev/net/tun", os.O_RDWR)
        try:
            fcntl.ioctl(
                self._fd, self.TUNSETIFF, struct.pack("16sH", name.encode(), self.IFF_TAP | self.IFF_NO_PI)
            )
            fcntl.ioctl(self._fd, self.TUNSETLINK, self.ARPHRD_IEEE80211_RADIOTAP)
            result = runner(("ip", "link", "set", name, "up"))
            if not result.ok:
                raise OSError(f"cannot bring {name} up: {result.describe()}")
        except BaseException:
            os.close(self._fd)
            raise
        self.write = self._writer()

    def _writer(self) -> Callable[[bytes], int]:
        return functools.partial(os.write, self._fd)

    def close(self) -> None:
        """Closing the descriptor of a non-persistent TAP deletes the interface."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RadiotapTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
