"""Fixtures on real parts: the public captures beside the repo and a real Mosquitto on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (the real captures); tests that need it skip with the reason when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real captures not found at {SHARED_DATA} (clone the project beside ../shared)")
    return SHARED_DATA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next((p for p in MOSQUITTO_CANDIDATES if Path(p).exists()), None)
    if found is None:
        pytest.skip("mosquitto is not installed (scripts/test installs it with apt-get)")
    return found


@dataclass
class Broker:
    """A real Mosquitto process on a free loopback port, restartable for fault tests."""

    host: str
    port: int
    conf: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port} within 10 s")

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None


def make_broker(directory: Path, extra_conf: str = "") -> Broker:
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {directory}/\n"
        "max_queued_messages 0\n"
        "log_dest stderr\n"
        + ("user root\n" if os.geteuid() == 0 and "\nuser " not in "\n" + extra_conf else "")
        + extra_conf
        # As root, Mosquitto drops to the `mosquitto` user, which cannot write pytest's 0700 temp dirs:
        # persistence (what the restart tests rely on) would silently fail.
    )
    return Broker("127.0.0.1", port, conf, directory / "mosquitto.log")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh Mosquitto for one test."""
    b = make_broker(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b.stop()
