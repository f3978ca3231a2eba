"""The fast construction of frozen values: the same value as the plain constructor, or refused at import."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from sensor.decode.fastinit import fast_init
from sensor.decode.frames import CaptureRecord, ProbeRequest, Sighting


@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: tuple[int, ...]


def test_a_fast_constructor_builds_a_genuine_frozen_equal_value() -> None:
    point = fast_init(Point)(1, y=(2, 3))
    assert type(point) is Point and point == Point(1, (2, 3)) and hash(point) == hash(Point(1, (2, 3)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 5  # type: ignore[misc]


@pytest.mark.parametrize("frozen", [CaptureRecord, ProbeRequest, Sighting])
def test_the_hot_values_take_the_same_arguments_as_their_dataclass(frozen: type) -> None:
    names = [f.name for f in dataclasses.fields(frozen)]
    assert fast_init(frozen).__code__.co_varnames[: len(names)] == tuple(names)


@dataclass(frozen=True, slots=True)
class Validated:
    x: int

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True)
class Defaulted:
    x: int = 0


@dataclass(frozen=True, slots=True)
class Factory:
    xs: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class NoSlots:
    x: int


@dataclass(slots=True)
class Mutable:
    x: int


@pytest.mark.parametrize(
    ("cls", "why"),
    [
        (Validated, "__post_init__"),
        (Defaulted, "defaults"),
        (Factory, "defaults"),
        (NoSlots, "slots=True"),
        (Mutable, "frozen"),
        (dict, "not a dataclass"),
    ],
)
def test_a_class_a_fast_constructor_would_build_wrongly_is_refused(cls: type, why: str) -> None:
    with pytest.raises(TypeError, match=why):
        fast_init(cls)
