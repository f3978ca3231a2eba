"""The README is the front door: its generated reference sections and its commands match the code."""

from __future__ import annotations

import re

from footfall_dev.docs import README, demo_report, render

from tests.conftest import REPO


def test_generated_sections_match_the_models() -> None:
    text = README.read_text()
    assert render(text, skip=frozenset({"demo-report"})) == text, (
        "README is stale: run `.venv/bin/python -m footfall_dev.docs`"
    )


def test_what_the_demo_prints_is_what_the_demo_pipeline_prints() -> None:
    block = re.search(
        r"<!-- generated:demo-report -->\n(.*?)\n<!-- /generated:demo-report -->", README.read_text(), re.S
    )
    assert block is not None, "README lost its demo-report block"
    report = demo_report()
    assert "Fixed devices" in report and "Total" in report
    assert block.group(1) == report, (
        "README's demo output is stale: run `.venv/bin/python -m footfall_dev.docs`"
    )


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().split()
    assert "./scripts/test" in ci
    assert "scripts/test     # the tests" in README.read_text()


def test_every_console_script_command_in_the_readme_exists() -> None:
    from click.testing import CliRunner

    from collector.cli.main import main as collector
    from sensor.cli.main import main as sensor

    text = README.read_text()
    for name, group in (("footfall-sensor", sensor), ("footfall-collector", collector)):
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                command = line.split()[1].split("|")[0]
                result = CliRunner().invoke(group, [command, "--help"])
                assert result.exit_code == 0, f"README names `{name} {command}`, which does not exist"
