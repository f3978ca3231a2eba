"""The `footfall-sensor` console script: answers `--help` without importing any command (footfall.cli).

The commands live in sensor.cli.main's group; this table is their listing, checked against it by
tests/test_startup.py.
"""

from __future__ import annotations

from footfall.cli import LazyGroup, tool_group

COMMANDS = {
    "calibrate": "Fit this site's numbers: the signal of a phone at the door, and the people estimate.",
    "check-config": "Validate a sensor config file and print the effective settings.",
    "doctor": "Check interface, channel, frames, capabilities, key, broker, clock and disk; say what to fix.",
    "iface": "Set up or tear down the monitor interface (footfall-iface.service runs these; needs CAP_NET_ADMIN).",
    "keys": "Store seeds and sensor salt keys (threat model: sensor/keys/keystore.py).",
    "replay": "Replay pcap/pcapng CAPTURES (several files are merged in time order) through the sensor.",
    "run": "Capture live on the configured monitor interface and publish events (until SIGTERM).",
}


@tool_group("footfall-sensor", cls=LazyGroup, target="sensor.cli.main:main", commands=COMMANDS)
def main() -> None:
    """footfall sensor: turns Wi-Fi probe requests into anonymous footfall events."""
