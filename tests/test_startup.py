"""Start-up: both console scripts answer `--help` without importing a heavy module, and list every command.

The time itself is measured by bench/startup.py, not here (the machines are shared).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from collector.cli import main as collector_main
from collector.cli import tool as collector_tool
from sensor.cli import main as sensor_main
from sensor.cli import tool as sensor_tool
from tests.conftest import REPO

DEMO = REPO / "sensor" / "demo" / "demo-store.pcap"
HEAVY = (
    "pydantic",
    "cryptography",
    "paho",
    "fastapi",
    "uvicorn",
    "prometheus_client",
    "scapy",
    "yaml",
    "ruamel",
)
TOOLS = {
    "sensor.cli.tool": (sensor_tool, sensor_main),
    "collector.cli.tool": (collector_tool, collector_main),
}


@pytest.mark.parametrize("module", sorted(TOOLS))
def test_help_imports_no_heavy_module(module: str) -> None:
    code = (
        "import sys\n"
        f"from {module} import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        f"print('heavy:', *sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Commands:" in done.stdout
    assert done.stdout.splitlines()[-1] == "heavy:"


@pytest.mark.parametrize("module", sorted(TOOLS))
def test_the_help_listing_matches_the_real_commands(module: str) -> None:
    tool, real = TOOLS[module]
    ctx = click.Context(real.main)
    listed = {
        name: real.main.get_command(ctx, name).get_short_help_str(limit=1000)  # type: ignore[union-attr]
        for name in real.main.list_commands(ctx)
    }
    assert listed == tool.COMMANDS, f"update {module}.COMMANDS"


def test_a_command_runs_through_the_lazy_group() -> None:
    result = CliRunner().invoke(sensor_tool.main, ["check-config", "/nonexistent.yaml"])
    assert result.exit_code == 1
    assert "/nonexistent.yaml" in result.output


def test_a_replay_to_json_lines_imports_no_broker_client_nor_yaml(tmp_path: Path) -> None:
    # A replay's start-up is paid once per capture: what only publishing or a config file needs (paho and
    # ssl, PyYAML) stays unimported, and its events are still written.
    out = tmp_path / "events.jsonl"
    code = (
        "import sys\n"
        "from sensor.cli.main import main\n"
        "try:\n"
        f"    main(['replay', {str(DEMO)!r}, '--to', 'jsonl', '--out', {str(out)!r}, '--quiet'])\n"
        "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "print('loaded:', *sorted({m.split('.')[0] for m in sys.modules} & {'paho', 'ssl', 'yaml'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "loaded:"
    assert out.read_bytes().count(b"\n") > 0
