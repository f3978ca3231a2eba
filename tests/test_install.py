"""scripts/install against a temporary root: layout, modes, idempotence, what it keeps, --uninstall."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

INSTALL = REPO / "scripts" / "install"


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--skip-venv", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under root → (mode, symlink target or file content digest)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = (0, os.readlink(path))
        elif path.is_file():
            out[rel] = (mode(path), path.read_text(errors="replace"))
        else:
            out[rel] = (mode(path), "")
    return out


def test_install_lays_out_user_config_keys_and_enabled_units_with_the_right_modes(tmp_path: Path) -> None:
    key, password = tmp_path / "k", tmp_path / "pw"
    key.write_bytes(b"key bytes")
    password.write_text("secret\n")
    root = tmp_path / "root"
    result = install(root, "--collector", "--key", str(key), "--mqtt-password", str(password))
    assert result.returncode == 0, result.stderr
    assert "footfall:x:999:999:" in (root / "etc/passwd").read_text()
    assert mode(root / "etc/footfall") == 0o750
    assert mode(root / "etc/footfall/sensor.yaml") == mode(root / "etc/footfall/collector.yaml") == 0o640
    assert mode(root / "etc/footfall/credentials") == 0o700
    assert mode(root / "etc/footfall/credentials/mqtt-password") == 0o600
    assert mode(root / "var/lib/footfall") == 0o700
    assert mode(root / "var/lib/footfall/sensor.key") == 0o600
    sensor_yaml = (root / "etc/footfall/sensor.yaml").read_text()
    assert "\n  key_file: /var/lib/footfall/sensor.key" in sensor_yaml
    assert "\n  path: /var/lib/footfall/footfall.db" in (root / "etc/footfall/collector.yaml").read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants"
    for unit in ("footfall-sensor.service", "footfall-iface.service", "footfall-collector.service"):
        assert (root / "etc/systemd/system" / unit).read_text() == (REPO / "systemd" / unit).read_text()
        assert os.readlink(wants / unit) == f"/etc/systemd/system/{unit}"


def test_the_installed_config_is_valid(tmp_path: Path) -> None:
    from sensor.config import load

    root = tmp_path / "root"
    assert install(root).returncode == 0
    config = load(root / "etc/footfall/sensor.yaml")
    assert config.privacy.key_file == Path("/var/lib/footfall/sensor.key")


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert install(root, "--collector").returncode == 0
    before = snapshot(root)
    again = install(root, "--collector")
    assert again.returncode == 0, again.stderr
    assert snapshot(root) == before
    passwd = (root / "etc/passwd").read_text().splitlines()
    assert "kept" in again.stdout and sum(line.startswith("footfall:") for line in passwd) == 1


def test_edited_config_and_a_ratcheted_key_are_kept_but_their_modes_fixed(tmp_path: Path) -> None:
    root, key = tmp_path / "root", tmp_path / "k"
    key.write_bytes(b"original")
    assert install(root, "--key", str(key)).returncode == 0
    config = root / "etc/footfall/sensor.yaml"
    config.write_text("site: {store: edited}\n")
    config.chmod(0o666)
    (root / "var/lib/footfall/sensor.key").write_bytes(b"ratcheted")
    key.write_bytes(b"stale copy")
    result = install(root, "--key", str(key))
    assert result.returncode == 0
    assert config.read_text() == "site: {store: edited}\n" and mode(config) == 0o640
    assert (root / "var/lib/footfall/sensor.key").read_bytes() == b"ratcheted"
    assert "--force-key replaces it" in result.stdout


def test_uninstall_removes_units_and_software_but_keeps_config_and_keys_unless_purged(tmp_path: Path) -> None:
    root, key = tmp_path / "root", tmp_path / "k"
    key.write_bytes(b"k")
    assert install(root, "--collector", "--key", str(key)).returncode == 0
    assert install(root, "--uninstall").returncode == 0
    assert not list((root / "etc/systemd/system").rglob("footfall-*"))
    assert not (root / "opt/footfall").exists()
    assert (root / "etc/footfall/sensor.yaml").exists() and (root / "var/lib/footfall/sensor.key").exists()
    assert install(root, "--uninstall").returncode == 0  # idempotent
    assert install(root, "--uninstall", "--purge").returncode == 0
    assert not (root / "etc/footfall").exists() and not (root / "var/lib/footfall").exists()
    assert "footfall:" not in (root / "etc/passwd").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--purge"], "--purge goes with --uninstall"),
        (["--no-sensor"], "nothing to install"),
        (["--bogus"], "unknown option"),
    ],
)
def test_bad_options_fail_with_a_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    result = install(tmp_path / "root", *args)
    assert result.returncode != 0 and message in result.stderr


@pytest.mark.slow
def test_the_virtual_environment_step_installs_the_console_scripts(tmp_path: Path) -> None:
    # The real venv step, made quicker: the source tree without its dependencies (the build backend
    # still comes from the package index); the mypyc build has its own test (test_compiled_build.py).
    root = tmp_path / "root"
    env = {**os.environ, "PIP_NO_DEPS": "1", "FOOTFALL_COMPILE": "0"}
    result = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--python", str(Path(os.sys.executable))],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    log = root / "opt/footfall/install.log"
    assert result.returncode == 0, result.stderr + (log.read_text() if log.exists() else "")
    assert (root / "opt/footfall/venv/bin/footfall-sensor").exists()
    assert "pure-Python build (FOOTFALL_COMPILE=0)" in result.stdout
