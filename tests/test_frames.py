"""The fast construction of frozen values: a drifted draft class fails at import, never silently."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sensor.decode.frames import check_draft


@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int


class GoodDraft:
    __slots__ = ("x", "y")


class MissingField:
    __slots__ = ("x",)


class ExtraField:
    __slots__ = ("x", "y", "z")


def test_a_draft_with_the_same_slots_passes() -> None:
    check_draft(Point, GoodDraft)


@pytest.mark.parametrize("draft", [MissingField, ExtraField])
def test_a_draft_whose_slots_drifted_from_the_dataclass_is_refused(draft: type) -> None:
    with pytest.raises(TypeError, match=r"tests\.test_frames\.Point changed: update .*Field"):
        check_draft(Point, draft)
