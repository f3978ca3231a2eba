"""The report `footfall-sensor calibrate counts --report FILE` writes and the collector stores and shows.

Shared by both sides, like the events: the sensor builds it, `footfall-collector calibration import FILE`
checks it with the same model (`extra="forbid"`) and keeps the latest per sensor, and the dashboard's
calibration page draws it. It holds counts of people per 15-minute window and fitted numbers: nothing
about any device.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from footfall.events import Name

SCHEMA_CALIBRATION: Final = "footfall.calibration/1"
MAX_WINDOWS = 10_000  # 15-minute windows: about 100 days


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fit(_Model):
    """One set of estimator numbers and its error against the truth."""

    inside_rssi_dbm: int
    holdover_s: float = Field(ge=0)
    site_factor: float = Field(gt=0)
    mae: float = Field(ge=0, description="mean absolute error, people")
    mape: float | None = Field(None, ge=0, description="percent, over windows with >= 3 people")


class CalibrationWindow(_Model):
    start: AwareDatetime
    truth: float = Field(ge=0, description="people counted by hand (mean over the window)")
    before: float = Field(ge=0, description="the estimate with the numbers before the fit")
    fitted: float = Field(ge=0, description="the estimate with the fitted numbers")


class CalibrationReport(_Model):
    schema_: Literal["footfall.calibration/1"] = Field(SCHEMA_CALIBRATION, alias="schema")
    store: Name
    sensor: Name
    made_at: AwareDatetime
    before: Fit
    fitted: Fit
    windows: tuple[CalibrationWindow, ...] = Field(max_length=MAX_WINDOWS)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=1)


def made_now(at: datetime) -> datetime:
    """`made_at` to the second (the report is a record, not a measurement)."""
    return at.replace(microsecond=0)
