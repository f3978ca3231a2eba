"""The hot path's values: built by their own plain __init__, yet values (equality, hash, replace) and immutable.

sensor/decode/frames.py says why they are not frozen dataclasses. Immutability is proved here for the
interpreted build, where it is mypy's (--strict rejects an assignment to a `Final` field), and in
tests/test_compiled_build.py for the compiled one, where the native class refuses it at run time.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import mypy.api
import pytest

from sensor.decode.frames import CaptureRecord, ConnectedFrame, ConnectedSighting, ProbeRequest, Sighting
from sensor.estimate.spans import VisitSpan

VALUES = [CaptureRecord, ProbeRequest, Sighting, ConnectedFrame, ConnectedSighting, VisitSpan]


def sample(cls: type, salt: int = 0) -> dict[str, object]:
    """A distinct value per field (types do not matter to the slots), so a swapped store would show."""
    return {f.name: (salt, i) for i, f in enumerate(dataclasses.fields(cls))}


@pytest.mark.parametrize("cls", VALUES)
def test_the_constructor_takes_every_field_in_order_and_stores_each_where_it_belongs(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    assert list(inspect.signature(cls.__init__).parameters)[1:] == names
    fields = sample(cls)
    value = cls(*fields.values())
    assert {name: getattr(value, name) for name in names} == fields
    assert value == cls(**fields) and hash(value) == hash(cls(**fields))
    assert value != cls(**sample(cls, salt=1))
    assert repr(value).startswith(f"{cls.__name__}({names[0]}=")


@pytest.mark.parametrize("cls", VALUES)
def test_replace_builds_a_changed_copy_and_leaves_the_value_alone(cls: type) -> None:
    fields = sample(cls)
    value = cls(**fields)
    first = next(iter(fields))
    changed = dataclasses.replace(value, **{first: "other"})
    assert getattr(changed, first) == "other" and getattr(value, first) == fields[first]


def test_mypy_rejects_an_assignment_to_any_field_of_a_hot_value(tmp_path: Path) -> None:
    lines = ["from sensor.decode.frames import *", "from sensor.estimate.spans import VisitSpan", ""]
    for cls in VALUES:
        lines.append(f"def change_{cls.__name__}(v: {cls.__name__}) -> None:")
        lines += [f"    v.{f.name} = v.{f.name}" for f in dataclasses.fields(cls)]
    snippet = tmp_path / "assign.py"
    snippet.write_text("\n".join(lines) + "\n")
    out, _, status = mypy.api.run(
        ["--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"), str(snippet)]
    )
    assert status == 1
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == sum(len(dataclasses.fields(cls)) for cls in VALUES), out
    assert all("Cannot assign to final attribute" in line for line in errors), out
