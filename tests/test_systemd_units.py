"""The systemd units: `systemd-analyze verify` accepts them, and they hold the promised restrictions.

verify checks that ExecStart binaries exist, so it runs on copies whose /opt/footfall/venv/bin/ paths
point at stubs, and once more over a root laid out by scripts/install. It needs Debian's `systemd`
package (systemd-analyze); without it those tests skip and say so.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from sensor.live.loop import TICK_S
from tests.conftest import REPO

UNITS = ("footfall-sensor.service", "footfall-iface.service", "footfall-collector.service")
VENV_BIN = "/opt/footfall/venv/bin/"
HOST_UNITS = Path("/usr/lib/systemd/system")


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is missing: apt-get install systemd")
    return found


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """section → key → values (a key may repeat)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in (REPO / "systemd" / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out[section] = {}
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key, []).append(value)
    return out


def stub_bin(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("footfall-sensor", "footfall-collector"):
        (directory / name).write_text("#!/bin/sh\nexit 0\n")
        (directory / name).chmod(0o755)


def our_warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if "footfall" in line]


def test_units_verify_as_shipped(tmp_path: Path) -> None:
    tool = analyze()
    stub_bin(tmp_path / "bin")
    for name in UNITS:
        text = (REPO / "systemd" / name).read_text().replace(VENV_BIN, f"{tmp_path}/bin/")
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [tool, "verify", *(str(tmp_path / n) for n in UNITS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not our_warnings(result.stdout + result.stderr), result.stderr


def test_installed_units_verify_under_the_install_root(tmp_path: Path) -> None:
    tool = analyze()
    if not (HOST_UNITS / "sysinit.target").exists():
        pytest.skip(f"no systemd units in {HOST_UNITS} to resolve the default dependencies against")
    root = tmp_path / "root"
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install"), "--root", str(root), "--skip-venv", "--collector"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stub_bin(root / VENV_BIN.strip("/"))
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    result = subprocess.run(
        [tool, "verify", f"--root={root}", *UNITS], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not our_warnings(result.stdout + result.stderr), result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_every_unit_runs_unprivileged_and_hardened(name: str) -> None:
    service = unit(name)["Service"]
    assert service["User"] == ["footfall"] and service["Group"] == ["footfall"]
    for key, value in (
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("SystemCallFilter", "@system-service"),
    ):
        assert service[key] == [value], key


@pytest.mark.parametrize(
    ("name", "caps"),
    [
        ("footfall-sensor.service", "CAP_NET_RAW CAP_NET_ADMIN"),
        ("footfall-iface.service", "CAP_NET_ADMIN"),
        ("footfall-collector.service", ""),
    ],
)
def test_each_unit_gets_only_the_capabilities_it_needs(name: str, caps: str) -> None:
    service = unit(name)["Service"]
    assert service["CapabilityBoundingSet"] == [caps]
    assert service.get("AmbientCapabilities", [""]) == [caps]


@pytest.mark.parametrize("name", ["footfall-sensor.service", "footfall-collector.service"])
def test_services_keep_state_restart_on_failure_and_load_secrets_as_credentials(name: str) -> None:
    service = unit(name)["Service"]
    assert service["StateDirectory"] == ["footfall"] and service["StateDirectoryMode"] == ["0700"]
    assert service["Restart"] == ["on-failure"]
    # The directory scripts/install creates (0700 root): every file in it becomes footfall_<file>.
    assert service["LoadCredential"] == ["footfall:/etc/footfall/credentials"]
    assert service["LimitCORE"] == ["0"]


def test_the_sensor_is_watched_by_the_watchdog_the_capture_loop_feeds() -> None:
    service = unit("footfall-sensor.service")["Service"]
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert float(service["WatchdogSec"][0]) >= 10 * TICK_S  # fed every tick: plenty of margin
    assert "AF_PACKET" in service["RestrictAddressFamilies"][0]


def test_the_sensor_wants_the_interface_step_before_it() -> None:
    sensor, iface = unit("footfall-sensor.service"), unit("footfall-iface.service")
    assert "footfall-iface.service" in sensor["Unit"]["Wants"][0].split()
    assert "footfall-iface.service" in sensor["Unit"]["After"][0].split()
    assert iface["Service"]["Type"] == ["oneshot"] and iface["Service"]["RemainAfterExit"] == ["yes"]
    assert iface["Service"]["ExecStart"][0].endswith(
        "footfall-sensor iface setup --config /etc/footfall/sensor.yaml"
    )


def test_units_parse_as_ini() -> None:
    for name in UNITS:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string((REPO / "systemd" / name).read_text())
        assert {"Unit", "Service", "Install"} <= set(parser.sections())
