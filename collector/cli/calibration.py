"""`footfall-collector calibration import FILE`: keep a sensor's `calibrate counts --report` for the dashboard."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError

from collector.cli.common import CONFIG_OPTION, DB_OPTION, load_config, opened
from collector.storage.dashboard import put_calibration
from footfall.calibration import CalibrationReport


@click.group("calibration")
def calibration() -> None:
    """Calibration reports of the sensors (`footfall-sensor calibrate counts --report FILE`)."""


@calibration.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@DB_OPTION
@CONFIG_OPTION
def import_(file: Path, db_path: Path | None, config_path: Path | None) -> None:
    """Store FILE as its sensor's latest calibration report (an older one than stored is ignored)."""
    if db_path is not None and config_path is not None:
        raise click.UsageError("give --db or --config, not both")
    try:
        report = CalibrationReport.model_validate_json(file.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise click.ClickException(f"{file}: {where}: {first['msg']} ({exc.error_count()} errors)") from None
    with opened(load_config(config_path, db_path), create=True) as db:
        kept = put_calibration(db, report)
    made = report.made_at.isoformat()
    click.echo(
        f"{file}: stored as the report of {report.store}/{report.sensor} ({made})"
        if kept
        else f"{file}: not stored, {report.store}/{report.sensor} has a newer report than {made}"
    )
