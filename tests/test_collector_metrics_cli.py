"""`footfall-collector run --metrics-port` serves Prometheus metrics while it runs."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Broker, free_port

pytestmark = pytest.mark.mqtt


def test_run_serves_prometheus_metrics_on_the_given_port(tmp_path: Path, broker: Broker) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"mqtt:\n  port: {broker.port}\n  client_id: metrics-test\nstore:\n  path: {tmp_path}/f.db\n"
    )
    port = free_port()
    exe = Path(sys.executable).parent / "footfall-collector"
    proc = subprocess.Popen(
        [exe, "run", "--config", config, "--until-idle", "4", "--metrics-port", str(port)],
        stderr=subprocess.PIPE,
    )
    try:
        text = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "footfall_collector" not in text:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
                    text = response.read().decode()
            except OSError:
                time.sleep(0.1)
        assert "footfall_collector" in text
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
