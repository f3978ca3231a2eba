"""`footfall-sensor doctor`: every check says OK, or what is wrong and what to do about it.

Each check is a pure function from facts to a `Check`; the facts come from probes (`Probes`, in
sensor/doctor/probes.py), which are the only part that touches the system, so tests feed the checks made-up facts. The CLI runs all of
them, prints one line per check (and the fix under it) and exits 1 if any failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sensor.buildinfo import HOT_MODULES
from sensor.config import CaptureConfig, SensorConfig
from sensor.doctor.probes import (
    ClockState,
    FrameSample,
    Probes,
    broker_error,
    capabilities,
    clock_state,
    default_state_dir,
    free_space,
    key_summary,
    sample_frames,
    tuned_channel,
)
from sensor.live.channels import ChannelPlan
from sensor.live.iface import IfaceState

# The probes and the facts they gather live in sensor/doctor/probes.py; they are named here too, so the CLI
# and tests reach the whole doctor through this module.
__all__ = [
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "MIN_FREE_BYTES",
    "MIN_YEAR",
    "Check",
    "ClockState",
    "FrameSample",
    "Probes",
    "Status",
    "broker_error",
    "capabilities",
    "check_broker",
    "check_build",
    "check_capabilities",
    "check_channel",
    "check_clock",
    "check_config",
    "check_disk",
    "check_frames",
    "check_interface",
    "check_key",
    "check_monitor",
    "clock_state",
    "default_state_dir",
    "fail",
    "failed",
    "free_space",
    "key_summary",
    "ok",
    "run_checks",
    "sample_frames",
    "skip",
    "tuned_channel",
    "warn",
]

CAP_NET_ADMIN, CAP_NET_RAW = 12, 13
MIN_FREE_BYTES = 100 << 20  # the spool's room for a few days offline
MIN_YEAR = 2024  # a Pi without RTC boots at its last saved time (fake-hwclock) or 1970


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        out = [f"{self.status.value:<4}  {self.name}: {self.detail}"]
        if self.fix:
            out.append(f"      -> {self.fix}")
        return out


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, Status.FAIL, detail, fix)


def skip(name: str, detail: str) -> Check:
    return Check(name, Status.SKIP, detail)


# -- the checks ---------------------------------------------------------------------------------------------


def check_config(path: Path | None, error: str | None) -> Check:
    where = str(path) if path else "built-in defaults"
    if error:
        return Check(
            "config",
            Status.FAIL,
            error,
            f"fix the key named above; check with `footfall-sensor check-config {where}`",
        )
    return ok("config", f"{where} is valid")


def check_interface(capture: CaptureConfig, state: IfaceState) -> Check:
    name = f"interface {capture.interface}"
    if not state.exists:
        fix = "footfall-sensor iface setup --config FILE (or: systemctl start footfall-iface)"
        if capture.phy is None:
            fix = "set capture.phy to the radio to create it on (`iw phy` lists them), then " + fix
        return fail(name, "does not exist", fix)
    if not state.up:
        return fail(name, "exists but is down", f"ip link set {capture.interface} up")
    return ok(name, f"exists and is up ({state.operstate or 'operstate unknown'})")


def check_monitor(state: IfaceState) -> Check:
    name = "monitor mode"
    if not state.exists:
        return skip(name, "no interface")
    if state.linktype == 127:
        return ok(name, "link type radiotap (802.11 frames with signal strength)")
    if state.monitor:
        return warn(
            name,
            f"link type {state.linktype}: 802.11 frames without radiotap, so no or Prism signal strength",
            "prefer a driver that gives radiotap (most mac80211 drivers do)",
        )
    return fail(
        name,
        f"{state.describe()}: not a monitor interface",
        "footfall-sensor iface setup --config FILE; if it says 'not supported', the driver has no monitor "
        "mode (Pi built-in Wi-Fi: install nexmon; or use a USB adapter: ath9k_htc, mt76, rt2800usb)",
    )


def check_channel(plan: ChannelPlan, tuned: int | None, sample: FrameSample | None) -> Check:
    name = "channel"
    expected = ", ".join(map(str, plan.channels))
    if tuned is None:
        heard = sorted(sample.channels) if sample else []
        if heard and set(heard) <= set(plan.channels):
            return ok(name, f"frames carry channel(s) {', '.join(map(str, heard))} ({plan.describe()})")
        return warn(
            name,
            f"cannot tell the tuned channel (expected {expected})"
            + (f"; frames say {heard}" if heard else ""),
            "install iw (apt-get install iw) so `iw dev IFACE info` can show it",
        )
    if tuned in plan.channels:
        return ok(name, f"on channel {tuned} ({plan.describe()})")
    if plan.fixed:
        return fail(
            name,
            f"on channel {tuned}, config says {expected}",
            "restart footfall-iface (or: iw dev IFACE set channel N)",
        )
    return warn(
        name,
        f"on channel {tuned}, not in the hopping plan {expected}",
        "is another program tuning the radio?",
    )


def check_frames(sample: FrameSample) -> Check:
    name = "frames"
    if sample.error:
        return fail(name, sample.error, "fix the capture error above (capabilities, interface)")
    if sample.frames == 0:
        return fail(
            name,
            f"no management frame in {sample.seconds:g} s",
            "check the channel and the antenna; a quiet channel still has beacons from nearby access points",
        )
    share = sample.with_signal / sample.frames
    heard = ", ".join(f"{c} ({n})" for c, n in sorted(sample.channels.items())) or "none"
    detail = (
        f"{sample.frames} in {sample.seconds:g} s ({sample.frames / sample.seconds:.1f}/s), "
        f"{share:.0%} with a dBm signal; channels {heard}"
    )
    if share < 0.5:
        return warn(
            name,
            detail,
            "without radiotap signal, visits cannot be told inside from passing by: check the driver",
        )
    return ok(name, detail)


def check_capabilities(capture: CaptureConfig, cap_eff: int, uid: int) -> Check:
    name = "capabilities"
    has = {
        cap: bool(cap_eff >> bit & 1)
        for cap, bit in (("CAP_NET_RAW", CAP_NET_RAW), ("CAP_NET_ADMIN", CAP_NET_ADMIN))
    }
    needs_admin = len(capture.channels) > 1 or capture.recreate
    missing = [c for c, present in has.items() if not present and (c == "CAP_NET_RAW" or needs_admin)]
    who = "root" if uid == 0 else f"uid {uid}"
    if not missing:
        return ok(name, f"{who} with " + ", ".join(c for c, present in has.items() if present))
    why = (
        ""
        if "CAP_NET_ADMIN" not in missing
        else " (CAP_NET_ADMIN: channel hopping, re-creating the interface)"
    )
    return Check(
        name,
        Status.FAIL if "CAP_NET_RAW" in missing else Status.WARN,
        f"{who} lacks {', '.join(missing)}{why}",
        "run doctor with sudo; the service gets them from footfall-sensor.service (AmbientCapabilities=)",
    )


def check_key(key_file: Path | None, inspect: Callable[[Path], str]) -> Check:
    name = "sensor key"
    if key_file is None:
        return fail(
            name,
            "privacy.key_file is not set",
            "footfall-sensor keys provision, then set privacy.key_file",
        )
    try:
        detail = inspect(key_file)
    except Exception as exc:  # KeyFileError and OSError both carry the file and the reason
        return fail(
            name,
            str(exc),
            "re-provision: footfall-sensor keys provision --force (0600, owner footfall)",
        )
    return ok(name, detail)


def check_broker(where: str, error: str | None) -> Check:
    name = "broker"
    if error is None:
        return ok(name, f"connected to {where}")
    hints = (
        ("refused", "is the broker running, and are mqtt.host/port right?"),
        ("not authori", "check mqtt.username and the password credential"),
        ("password", "check mqtt.username and the password credential"),
        ("certificate", "check mqtt.tls.ca_file (and the client certificate) against the broker's"),
        ("cannot read", "the credential file: see systemd LoadCredential in footfall-sensor.service"),
        ("within", "no answer: firewall, wrong host or port, or TLS to a plain port"),
    )
    fix = next((h for needle, h in hints if needle in error.lower()), "check the mqtt section of the config")
    return fail(name, error, fix)


def check_clock(clock: ClockState) -> Check:
    name = "clock"
    year = time.gmtime(clock.now_ns // 1_000_000_000).tm_year
    if year < MIN_YEAR:
        return fail(
            name,
            f"the clock says {year}",
            "set up time sync (timedatectl set-ntp true) before starting the sensor: salt epochs and visits follow the clock",
        )
    if clock.synchronized is None:
        return warn(
            name,
            f"cannot tell whether the clock is synchronised ({clock.how})",
            "timedatectl status",
        )
    if not clock.synchronized:
        return fail(
            name,
            f"not synchronised ({clock.how})",
            "timedatectl set-ntp true; check that NTP (udp/123) reaches a server",
        )
    return ok(name, f"synchronised ({clock.how})")


def check_disk(path: Path, free_bytes: int | None, need_bytes: int = MIN_FREE_BYTES) -> Check:
    name = "spool disk"
    if free_bytes is None:
        return fail(
            name,
            f"{path} does not exist",
            "install with scripts/install (systemd creates it as StateDirectory)",
        )
    mib = free_bytes >> 20
    if free_bytes < need_bytes:
        return Check(
            name,
            Status.WARN if free_bytes > need_bytes // 10 else Status.FAIL,
            f"{mib} MiB free on {path}, {need_bytes >> 20} MiB wanted",
            "free space or move the state directory",
        )
    return ok(name, f"{mib} MiB free on {path}")


def check_build(compiled: tuple[str, ...], hot: tuple[str, ...] = HOT_MODULES) -> Check:
    """Which build of the hot path runs (sensor.buildinfo): compiled, pure Python, or a stale mix."""
    if len(compiled) == len(hot):
        return ok("build", f"compiled (mypyc): all {len(hot)} hot-path modules")
    if not compiled:
        return ok(
            "build",
            "pure Python (no C compiler at install): ~2.5x slower per frame, ample for a store's traffic",
        )
    stale = ", ".join(sorted(set(hot) - set(compiled)))
    return warn(
        "build",
        f"mixed: {len(compiled)} of {len(hot)} hot-path modules compiled, not {stale}",
        "rebuild: sudo scripts/install (or FOOTFALL_COMPILE=1 python setup.py build_ext --inplace)",
    )


def run_checks(
    config: SensorConfig, probes: Probes, *, sample_s: float = 5.0, state_dir: Path
) -> list[Check]:
    capture = config.capture
    state = probes.iface_state(capture.interface)
    checks = [check_interface(capture, state), check_monitor(state)]
    cap_eff, uid = probes.capabilities()
    caps = check_capabilities(capture, cap_eff, uid)
    sample = None
    if state.exists and state.monitor:
        sample = probes.sample(capture, sample_s)
    tuned = probes.tuned_channel(capture.interface) if state.exists else None
    checks.append(
        check_channel(ChannelPlan.from_config(capture), tuned, sample)
        if state.exists
        else skip("channel", "no interface")
    )
    checks.append(
        check_frames(sample) if sample is not None else skip("frames", "no monitor interface to listen on")
    )
    checks += [caps, check_key(config.privacy.key_file, probes.key)]
    where, error = probes.broker(config)
    checks += [
        check_broker(where, error),
        check_clock(probes.clock()),
        check_disk(state_dir, probes.free_space(state_dir)),
        check_build(probes.build()),
    ]
    return checks


def failed(checks: list[Check]) -> bool:
    return any(c.status is Status.FAIL for c in checks)
