"""`python -m footfall_dev.generator`: write a synthetic store day (or the shipped demo) and its truth."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from footfall_dev.generator.day import scale_to_frames, truth_path, write_day, write_store
from footfall_dev.generator.model import TWO_SENSORS, StoreModel

DEMO_CAPTURE = Path(__file__).resolve().parents[3] / "sensor" / "demo" / "demo-store.pcap"
PRESETS = {"store": StoreModel, "demo": StoreModel.demo, "bench": StoreModel.bench, "mall": StoreModel.mall}


@click.command()
@click.option("--demo", is_flag=True, help=f"Regenerate the shipped demo ({DEMO_CAPTURE}) and exit.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Capture to write (.pcap).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="store", show_default=True)
@click.option("--seed", type=int, help="Seed (default: the preset's).")
@click.option("--frames", type=click.IntRange(min=1), metavar="N", help="Scale the crowd to about N probes.")
@click.option(
    "--two-sensors", is_flag=True, help="Two sensors in the store: one capture each, <name>.<sensor>.pcap."
)
def main(
    demo: bool, out: Path | None, preset: str, seed: int | None, frames: int | None, two_sensors: bool
) -> None:
    """Write a synthetic probe-request capture and its <name>.truth.json."""
    if demo:
        model, out = StoreModel.demo(), DEMO_CAPTURE
        out.parent.mkdir(parents=True, exist_ok=True)
    elif out is None:
        raise click.UsageError("give --out PATH (or --demo)")
    else:
        model = PRESETS[preset]()
        if seed is not None:
            model = dataclasses.replace(model, seed=seed)
        if frames is not None:
            model = scale_to_frames(model, frames)
        if two_sensors:
            model = dataclasses.replace(model, sensors=TWO_SENSORS)
    written = str(out)
    if len(model.sensors) > 1:
        truth, paths = write_store(model, out)
        written = " + ".join(str(p) for p in paths)
    else:
        truth = write_day(model, out)
    agg = truth.aggregates()
    click.echo(
        f"{written}: {agg['probe_requests']} probe requests + {agg['other_frames']} beacons, "
        f"{agg['visitors']} visitors, {agg['passersby']} passersby, median dwell "
        f"{agg['median_visitor_dwell_s'] / 60:.1f} min; truth in {truth_path(out)}"
    )


if __name__ == "__main__":
    main()
