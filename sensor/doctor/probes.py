"""Probes: the only part of `footfall-sensor doctor` that touches the system.

Each probe gathers one fact (the interface's state, the tuned channel, a few seconds of frames, the
process's capabilities, the sensor key, the broker, the clock, free disk space) and returns it as plain
data; the checks in sensor/doctor/checks.py judge those facts. `Probes` bundles them so a test can replace any.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sensor.buildinfo import compiled_modules
from sensor.config import CaptureConfig, SensorConfig
from sensor.live.channels import Runner, run_command
from sensor.live.iface import IfaceState, read_state

# -- facts the probes gather ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameSample:
    """What a few seconds of capture showed: totals, how many carried a dBm signal, channels heard."""

    seconds: float
    frames: int = 0
    with_signal: int = 0
    channels: dict[int, int] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True, slots=True)
class ClockState:
    synchronized: bool | None  # None: cannot tell
    now_ns: int
    how: str  # where the answer came from


# -- the probes ----------------------------------------------------------------------------------------------

_IW_CHANNEL = re.compile(r"^\s*channel (\d+) \(")


def tuned_channel(interface: str, runner: Runner = run_command) -> int | None:
    result = runner(("iw", "dev", interface, "info"))
    if not result.ok:
        return None
    for line in result.stdout.splitlines():
        m = _IW_CHANNEL.match(line)
        if m:
            return int(m[1])
    return None


def capabilities() -> tuple[int, int]:
    """(effective capability bits, uid) of this process."""
    import os

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16), os.getuid()
    return 0, os.getuid()


def clock_state(now_ns: int | None = None) -> ClockState:
    """The kernel's view (adjtimex: TIME_ERROR = not synchronised), which NTP daemons keep up to date."""
    now = time.time_ns() if now_ns is None else now_ns
    name = ctypes.util.find_library("c")
    if name is None:
        return ClockState(None, now, "no libc")
    buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
    state = ctypes.CDLL(name, use_errno=True).adjtimex(buf)
    if state < 0:
        return ClockState(None, now, "adjtimex failed")
    return ClockState(state != 5, now, f"kernel time state {state}")


def free_space(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def key_summary(path: Path) -> str:
    from sensor.keys.keystore import KeyStore

    info = KeyStore.inspect(path)
    return f"{path}: store {info.store}, epoch {info.current.id} ({info.schedule.spec})"


def broker_error(config: SensorConfig, timeout_s: float = 5.0) -> tuple[str, str | None]:
    """(where, None) if the broker accepted a connection with the configured TLS/credentials, else the error."""
    from footfall.broker import broker_settings
    from footfall.configfile import ConfigError
    from footfall.mqtt import MqttClient, MqttError

    m = config.mqtt
    where = f"mqtt{'s' if m.tls else ''}://{m.host}:{m.port}" + (f" as {m.username}" if m.username else "")
    try:
        # Its own client id: reusing the sensor's would disconnect the running sensor.
        settings = broker_settings(config.mqtt, f"footfall-doctor-{config.site.store}-{config.site.sensor}")
        client = MqttClient(settings)
        client.connect(timeout_s)
    except ConfigError as exc:
        return where, str(exc)
    except (MqttError, ValueError) as exc:
        return where, str(exc)
    client.close()
    return where, None


def default_state_dir(config: SensorConfig) -> Path:
    import os

    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    if config.privacy.key_file is not None:
        return config.privacy.key_file.parent
    return Path("/var/lib/footfall")


def sample_frames(capture: CaptureConfig, seconds: float) -> FrameSample:
    """Capture for `seconds` and tally signal and channels from the radiotap headers."""
    from sensor.decode import dot11, radiotap
    from sensor.decode.errors import DecodeError
    from sensor.live.packetsocket import CaptureError, PacketSocket

    try:
        source = PacketSocket.open(capture)
    except CaptureError as exc:
        return FrameSample(seconds, error=str(exc))
    frames = with_signal = 0
    channels: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not source.wait(left):
                continue
            for _, data in source.read(512):
                frames += 1
                if source.linktype != 127:
                    continue
                try:
                    header = radiotap.parse(data)
                except DecodeError:
                    continue
                with_signal += header.dbm_signal is not None
                channel = dot11.freq_to_channel(header.freq_mhz) if header.freq_mhz else None
                if channel is not None:
                    channels[channel] = channels.get(channel, 0) + 1
    finally:
        source.close()
    return FrameSample(seconds, frames, with_signal, channels)


@dataclass
class Probes:
    """Where the facts come from; replace any of them in a test."""

    iface_state: Callable[[str], IfaceState] = read_state
    tuned_channel: Callable[[str], int | None] = tuned_channel
    sample: Callable[[CaptureConfig, float], FrameSample] = sample_frames
    capabilities: Callable[[], tuple[int, int]] = capabilities
    key: Callable[[Path], str] = key_summary
    broker: Callable[[SensorConfig], tuple[str, str | None]] = broker_error
    clock: Callable[[], ClockState] = clock_state
    free_space: Callable[[Path], int | None] = free_space
    build: Callable[[], tuple[str, ...]] = compiled_modules
