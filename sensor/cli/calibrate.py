"""`footfall-sensor calibrate`: fit this site's numbers from captures (the fitting is sensor.calibrate).

    footfall-sensor calibrate signal walk.pcap --device MAC --at 10:02=1 --at 10:04=3 --door-distance 4
    footfall-sensor calibrate counts day.pcap --truth people.csv --config sensor.yaml --write

`signal` reads the installer's own phone by its MAC, given on the command line: the MAC is compared
with the raw transmitter bytes in memory only and is never stored, logged or printed whole (it is
shown masked). `counts` replays captures through the real pipeline against a people count, fits the
site factor on part of it and judges it on the rest (sensor/estimate/holdout.py).
`--write` edits the config file in place keeping its comments and layout (ruamel.yaml round trip),
and only after the edited file passes the config checks.
"""

from __future__ import annotations

import io
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from footfall import mac as mac_grammar
from footfall.calibration import CalibrationReport, CalibrationWindow, Fit, made_now
from footfall.configfile import ConfigError
from footfall.times import NS
from sensor import config as sensor_config
from sensor.cli import progress
from sensor.decode.capture import CaptureError, merge_captures, read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import CaptureRecord, ProbeRequest
from sensor.estimate.calibrate import (
    CalibrationError,
    DistanceSpan,
    SignalFit,
    Window,
    fit_log_distance,
    label_frames,
    parse_at,
    parse_distance_csv,
    read_truth,
    truth_format,
    truth_windows,
    window_means,
)
from sensor.estimate.holdout import HeldOutFit, Unit, fit_held_out
from sensor.estimate.occupancy import EstimatorParams
from sensor.replay import count_series, with_estimator


def parse_mac(text: str) -> bytes:
    """A MAC in any spelling of footfall/mac.py → 6 bytes (the text is never echoed)."""
    try:
        return mac_grammar.parse_mac(text)
    except mac_grammar.MacError as exc:
        raise click.BadParameter(str(exc)) from None


def masked(mac: bytes) -> str:
    """Enough to tell the installer which phone, not enough to identify it: first and last octet."""
    return f"{mac[0]:02x}:**:**:**:**:{mac[-1]:02x}"


def _records(captures: Sequence[Path]) -> list[CaptureRecord]:
    try:
        return list(merge_captures(captures))
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None


def _config(path: Path | None) -> sensor_config.SensorConfig:
    try:
        return sensor_config.load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def write_config(path: Path, section: str, values: dict[str, Any]) -> None:
    """Set `section.key` for each of `values` in the YAML file, keeping comments, order and layout.

    The edited text is checked with the sensor's config loader before it replaces the file, so a
    value the config refuses never lands.
    """
    yaml = YAML()
    yaml.preserve_quotes = True
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise click.ClickException(f"{path}: cannot read it as YAML: {str(exc).splitlines()[0]}") from None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise click.ClickException(f"{path}: the top level is not a mapping")
    target = doc.get(section)
    if target is None:
        target = doc[section] = CommentedMap()
    if not isinstance(target, CommentedMap):
        raise click.ClickException(f"{path}: '{section}' is not a mapping")
    for key, value in values.items():
        target[key] = value
    out = io.StringIO()
    yaml.dump(doc, out)
    tmp = path.with_name(f".{path.name}.calibrate-{os.getpid()}")
    tmp.write_text(out.getvalue(), encoding="utf-8")
    try:
        sensor_config.load(tmp)
    except ConfigError as exc:
        tmp.unlink()
        raise click.ClickException(f"not written, the result would not load: {exc}") from None
    tmp.replace(path)


def calibration_report(
    config: sensor_config.SensorConfig, base: EstimatorParams, fit: HeldOutFit, days: Sequence[_Day]
) -> CalibrationReport:
    """What `--report` writes: both site factors, their error on the held-out part, every window."""

    def numbers(factor: float, error: float) -> Fit:
        return Fit(inside_rssi_dbm=base.inside_rssi_dbm, holdover_s=base.holdover_s, site_factor=factor,
                   mae=error, mape=None)  # fmt: skip

    return CalibrationReport(
        store=config.site.store,
        sensor=config.site.sensor,
        made_at=made_now(datetime.now(UTC)),
        before=numbers(fit.default_factor, fit.mae_default),
        fitted=numbers(fit.factor, fit.mae_fitted),
        windows=tuple(
            CalibrationWindow(
                start=datetime.fromtimestamp(start / NS, UTC),
                truth=y,
                before=x * fit.default_factor,
                fitted=x * fit.factor,
            )
            for d in days
            for start, x, y in zip(d.starts, d.devices, d.truth, strict=True)
        ),
    )


@click.group("calibrate")
def calibrate() -> None:
    """Fit this site's numbers: the signal of a phone at the door, and the people estimate."""


# -- signal --------------------------------------------------------------------------------------------


@calibrate.command("signal")
@click.argument(
    "captures", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--device",
    "devices",
    multiple=True,
    required=True,
    metavar="MAC",
    help="MAC of the phone walked to known distances; repeat it for every MAC a randomizing phone used.",
)
@click.option(
    "--distances",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE.csv",
    help="CSV of start,end,meters (times: +SECONDS from the capture start, HH:MM[:SS] or ISO 8601).",
)
@click.option(
    "--at", "marks", multiple=True, metavar="TIME=METERS", help="The phone is at METERS from TIME on."
)
@click.option(
    "--door-distance", type=click.FloatRange(min=0, min_open=True), metavar="M", help="Sensor to door."
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Sigmas below the door mean.",
)
@click.option(
    "--follow-fingerprint",
    is_flag=True,
    help="Also take frames whose fingerprint the MAC's frames had (its next random MACs; and any "
    "phone of the same model nearby, so walk alone).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sensor config (time zone; the file --write edits).",
)
@click.option("--write", "write", is_flag=True, help="Write presence.visitor_rssi into --config.")
def signal(
    captures: tuple[Path, ...],
    devices: tuple[str, ...],
    distances: Path | None,
    marks: tuple[str, ...],
    door_distance: float | None,
    margin: float,
    follow_fingerprint: bool,
    config_path: Path | None,
    write: bool,
) -> None:
    """Fit rssi = P1m - 10 n log10(d) to a phone carried to known distances; suggest visitor_rssi."""
    macs = [parse_mac(d) for d in devices]
    if distances is None and not marks:
        raise click.UsageError("give the distances: --distances FILE.csv or --at TIME=METERS (repeated)")
    if write and (config_path is None or door_distance is None):
        raise click.UsageError("--write needs --config FILE and --door-distance M")
    config = _config(config_path)
    tz = ZoneInfo(config.site.timezone)
    records = _records(captures)
    if not records:
        raise click.ClickException("the capture has no records")
    start, end = records[0].ts_ns, records[-1].ts_ns
    own, names = _phone_probes(records, macs, follow_fingerprint=follow_fingerprint)
    try:
        spans: list[DistanceSpan] = (
            parse_distance_csv(distances.read_text(encoding="utf-8"), start, tz) if distances else []
        )
        spans += parse_at(marks, start, end, tz)
        samples = label_frames(((p.ts_ns, p.rssi_dbm) for p in own if p.rssi_dbm is not None), spans)
        fit = fit_log_distance(samples)
    except CalibrationError as exc:
        raise click.ClickException(str(exc)) from None
    _print_fit(fit, f"phone {names}: {len(own)} probe requests, {len(samples)} at a known distance")
    if door_distance is None:
        return
    try:
        suggested = fit.visitor_rssi(door_distance, margin)
    except CalibrationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"door at {door_distance:g} m: mean {fit.rssi_at(door_distance):.1f} dBm; "
        f"suggested presence.visitor_rssi: {suggested} (mean - {margin:g} sigma)"
    )
    if write:
        assert config_path is not None
        write_config(config_path, "presence", {"visitor_rssi": suggested})
        click.echo(f"wrote presence.visitor_rssi: {suggested} to {config_path}")


def _phone_probes(
    records: Sequence[CaptureRecord], macs: Sequence[bytes], *, follow_fingerprint: bool
) -> tuple[list[ProbeRequest], str]:
    """The installer's phone's probe requests (and its masked MACs), or one clear error if it is not there."""
    decoder = FrameDecoder()
    probes = [
        p for r in records if isinstance(p := decoder.decode(r.ts_ns, r.linktype, r.data), ProbeRequest)
    ]
    wanted = set(macs)
    own = [p for p in probes if p.transmitter in wanted]
    names = ", ".join(masked(m) for m in macs)
    if not own:
        others = len({p.transmitter for p in probes})
        raise click.ClickException(
            f"MAC {names} not found in the capture ({len(probes)} probe requests from {others} other "
            "transmitters); a randomizing phone changes its MAC: give each with --device or add "
            "--follow-fingerprint"
        )
    if any(m[0] & 0x02 for m in macs):
        click.echo(
            f"note: {names} is a randomized (locally administered) MAC; the phone may change it, and "
            "frames after a change are missed unless every MAC is given or --follow-fingerprint is used"
        )
    if follow_fingerprint:
        prints = {p.fingerprint for p in own}
        own = [p for p in probes if p.transmitter in wanted or p.fingerprint in prints]
    return own, names


def _print_fit(fit: SignalFit, heading: str) -> None:
    click.echo(heading)
    click.echo(f"{'distance m':>10} {'frames':>7} {'mean dBm':>9} {'model dBm':>10}")
    for d, frames, mean in fit.points:
        click.echo(f"{d:>10g} {frames:>7} {mean:>9.1f} {fit.rssi_at(d):>10.1f}")
    click.echo(
        f"P1m {fit.p1m_dbm:.1f} dBm at 1 m, path-loss exponent n {fit.exponent:.2f}, "
        f"residual sigma {fit.sigma_db:.1f} dB, R² {fit.r2:.2f}"
    )
    if fit.r2 < 0.5:
        click.echo("warning: R² below 0.5, the signal hardly follows the distance (walls? body in between?)")


# -- counts --------------------------------------------------------------------------------------------


@calibrate.command("counts")
@click.argument(
    "captures", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--truth",
    "truth_paths",
    required=True,
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="People counts: a timestamp,count CSV (one for all captures, or one per capture), or a "
    "Fryza-lab CSV (';', idx and occupancy columns) per capture, in the captures' order.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sensor config to start from (and the file --write edits).",
)
@click.option(
    "--write",
    is_flag=True,
    help="Write the fitted site factor into --config, only if it beats the defaults on the held-out part.",
)
@click.option("--windows", "show_windows", is_flag=True, help="Also print every 15-minute window.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the windows and both fits as JSON (footfall-collector calibration import FILE).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (one is drawn on a terminal).")
def counts(
    captures: tuple[Path, ...],
    truth_paths: tuple[Path, ...],
    config_path: Path | None,
    write: bool,
    show_windows: bool,
    report_path: Path | None = None,
    quiet: bool = False,
) -> None:
    """Fit the site factor on part of the ground truth, judge it on the rest, write it only if it helps."""
    if write and config_path is None:
        raise click.UsageError("--write needs --config FILE (the file to update)")
    if len(truth_paths) not in (1, len(captures)):
        raise click.UsageError(
            f"give one --truth for all captures or one per capture: {len(captures)} captures, "
            f"{len(truth_paths)} truths"
        )
    config = _config(config_path)
    base = config.estimator.params()
    unit_config = with_estimator(config, replace(base, site_factor=1.0))
    days = []
    bar = progress.Counter(show=progress.wanted(quiet), unit="captures", desc="calibrate")
    try:
        for i, capture in enumerate(captures):
            truth_path = truth_paths[i if len(truth_paths) > 1 else 0]
            days.append(_day(capture, truth_path, unit_config, len(truth_paths) == 1 and len(captures) > 1))
            bar.add(1)
        bar.close()
        fit = fit_held_out(days, base.site_factor)
    except CalibrationError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(f"cannot judge a fit: {exc}") from None
    windows = sum(len(d.truth) for d in days)
    truth = [y for d in days for y in d.truth]
    click.echo(
        f"{len(days)} capture(s), {windows} windows of 15 minutes, mean truth {statistics.fmean(truth):.1f} people"
    )
    click.echo(f"fitted on: {', '.join(fit.fit_units)}")
    click.echo(f"held out:  {', '.join(fit.held_units)}")
    click.echo(
        f"site factor: default {fit.default_factor:.3f}, least squares on the fit part {fit.raw_factor:.3f}, "
        f"shrunk toward the default (weight {fit.weight:g}, chosen on the fit part) -> {fit.factor:.3f}"
    )
    click.echo(f"{'held-out part':<14}{'site_factor':>12}{'MAE':>7}")
    click.echo(f"{'before':<14}{fit.default_factor:>12.3f}{fit.mae_default:>7.2f}")
    click.echo(f"{'fitted':<14}{fit.factor:>12.3f}{fit.mae_fitted:>7.2f}")
    if show_windows:
        click.echo(f"{'window (UTC)':<18}{'truth':>7}{'before':>8}{'fitted':>8}")
        for d in days:
            for start, x, y in zip(d.starts, d.devices, d.truth, strict=True):
                click.echo(f"{_utc(start):<18}{y:>7.1f}{x * fit.default_factor:>8.1f}{x * fit.factor:>8.1f}")
    click.echo(fit.reason())
    if report_path is not None:
        report = calibration_report(config, base, fit, days)
        report_path.write_text(report.to_json() + "\n", encoding="utf-8")
        click.echo(f"wrote the calibration report to {report_path}")
    if write:
        assert config_path is not None
        if not fit.beats:
            raise click.ClickException(f"not written: {fit.reason()}; the defaults stay")
        write_config(config_path, "estimator", {"site_factor": fit.factor})
        click.echo(f"wrote estimator site_factor: {fit.factor} to {config_path}")


@dataclass(frozen=True, slots=True)
class _Day(Unit):
    starts: tuple[int, ...] = ()


def _day(capture: Path, truth_path: Path, config: sensor_config.SensorConfig, shared_truth: bool) -> _Day:
    """One capture replayed against its truth: device counts (site factor 1) per covered window."""
    text = truth_path.read_text(encoding="utf-8")
    kind = truth_format(text)
    if kind == "fryza" and shared_truth:
        raise CalibrationError(
            f"a Fryza-lab truth indexes the frames of one capture: give one --truth per capture ({truth_path})"
        )
    records = _one(capture)
    if not records:
        raise CalibrationError(f"{capture}: the capture has no records")
    steps = read_truth(text, [r.ts_ns for r in records], ZoneInfo(config.site.timezone))
    span = (records[0].ts_ns, records[-1].ts_ns)
    windows = [w for w in truth_windows(steps) if _covered(w, span)]
    if not windows:
        raise CalibrationError(f"{capture}: no 15-minute window where the truth and the capture overlap")
    devices = window_means(count_series(config, records), windows, span)
    return _Day(
        capture.stem, tuple(devices), tuple(w.truth for w in windows), tuple(w.start_ns for w in windows)
    )


def _one(path: Path) -> list[CaptureRecord]:
    try:
        return list(read_capture(path))
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None


def _covered(w: Window, span: tuple[int, int]) -> bool:
    return min(w.b_ns, span[1]) - max(w.a_ns, span[0]) >= (w.b_ns - w.a_ns) // 3


def _utc(ts_ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts_ns / NS, UTC).strftime("%Y-%m-%d %H:%M")
