"""Progress bars: drawn on a terminal (a real pty here), never into a pipe, never with --quiet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BIN = Path(sys.executable).parent
CAPTURE = REPO / "sensor" / "demo" / "demo-store.pcap"


def replay_stderr(tmp_path: Path, *extra: str, tty: bool) -> str:
    """The replay's stderr, from a pseudo-terminal or from a pipe."""
    argv = [
        str(BIN / "footfall-sensor"),
        "replay",
        str(CAPTURE),
        "--to",
        "jsonl",
        "--out",
        str(tmp_path / "o"),
    ]
    env = {**os.environ, "FOOTFALL_PROGRESS_DELAY_S": "0", "COLUMNS": "200"}
    if not tty:
        done = subprocess.run([*argv, *extra], capture_output=True, env=env, check=True, timeout=120)
        return done.stderr.decode()
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen([*argv, *extra], stdout=subprocess.DEVNULL, stderr=follower, env=env)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 0
    finally:
        os.close(leader)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "pipe"])
def test_replay_draws_a_progress_bar_only_on_a_terminal(tmp_path: Path, tty: bool) -> None:
    stderr = replay_stderr(tmp_path, tty=tty)
    assert "replayed" in stderr  # the summary is always printed
    # The bar's own marks: its label and its gauge (the rate at its end may be cut at the width).
    drawn = "replay:" in stderr and "%|" in stderr
    assert drawn is tty, stderr


def test_quiet_replay_draws_no_bar_even_on_a_terminal(tmp_path: Path) -> None:
    stderr = replay_stderr(tmp_path, "--quiet", tty=True)
    assert "replayed" in stderr
    assert "%|" not in stderr and "replay:" not in stderr
