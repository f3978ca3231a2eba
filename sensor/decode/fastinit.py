"""Fast constructors for frozen slotted dataclasses: the sensor's one trick against the interpreter.

`fast_init(Frozen)` returns a function with Frozen's own signature (mypy sees it through the
ParamSpec) that builds a genuine, equal, frozen `Frozen`. Why: a frozen dataclass's generated
__init__ cannot assign its fields (the frozen __setattr__ refuses), so it calls object.__setattr__
once per field, about 100-150 ns each; for the ten fields of a ProbeRequest or a Sighting that is
more than the decoding of the frame. The function made here instead fills a writable twin class
with the same slots (plain attribute stores) and then assigns `__class__`, which Python allows
between classes of identical slot layout.

Measured with `.venv/bin/python bench/pipeline.py` (its frames per CPU second, the figure a shared
machine does not distort) on the generated 1,000,237-frame busy-mall capture, this tree against the same
tree with `fast_init` returning the plain dataclass constructors: the decoder does 138 k frames per CPU
second against 90-92 k without the trick (it is worth 1.5x), the whole pipeline 34 k against 27 k
(1.26x). Not a small cost, so the trick stays, here and nowhere else; behind this plain constructor it
costs one call more than the hand-inlined drafts it replaced (decoder 138 k frames per CPU second
before and after, pipeline 34-35 k before, 34 k after). Compiling the hot path with mypyc would make
it unnecessary.

Nothing is skipped: `fast_init` refuses (TypeError, at import of the caller) a class that is not a
frozen slotted dataclass, has a __post_init__, field defaults or init=False fields, and checks that
its function builds a value equal to the plain constructor's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def fast_init(frozen: Callable[P, T]) -> Callable[P, T]:
    """A constructor for the frozen slotted dataclass `frozen`, same arguments, same value, faster."""
    where = f"{getattr(frozen, '__module__', '?')}.{getattr(frozen, '__qualname__', frozen)}"
    if isinstance(frozen, type) and "__mypyc_attrs__" in frozen.__dict__:
        # Compiled by mypyc (sensor.buildinfo): a native class refuses a `__class__` assignment, so
        # its own constructor it is.
        return frozen
    if not (isinstance(frozen, type) and dataclasses.is_dataclass(frozen)):
        raise TypeError(f"{where} is not a dataclass")
    cls: Any = frozen  # below, `frozen` is used as the class it is checked to be
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    if not cls.__dataclass_params__.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{where} must be a frozen dataclass with slots=True")
    if hasattr(frozen, "__post_init__"):
        raise TypeError(f"{where} has a __post_init__, which a fast constructor would skip")
    if any(
        not f.init or f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in fields
    ):
        raise TypeError(
            f"{where} has defaults or init=False fields, which a fast constructor does not reproduce"
        )
    draft = type(f"_{frozen.__name__}Draft", (), {"__slots__": names, "__module__": __name__})
    args = ", ".join(names)
    stores = "".join(f"    value.{name} = {name}\n" for name in names)
    source = f"def {frozen.__name__}({args}):\n    value = _new(_draft)\n{stores}    value.__class__ = _frozen\n    return value\n"
    namespace: dict[str, Any] = {"_new": object.__new__, "_draft": draft, "_frozen": frozen}
    exec(source, namespace)  # as dataclasses itself makes __init__: the stores must be plain bytecode
    build: Callable[P, T] = namespace[frozen.__name__]
    build.__qualname__ = f"fast_init({frozen.__qualname__})"
    build.__doc__ = (
        f"{frozen.__qualname__}({args}), built without object.__setattr__ (sensor/decode/fastinit.py)."
    )
    sample = tuple(range(len(names)))
    untyped: Any = build  # any values do for the check: slots hold whatever they are given
    made = untyped(*sample)
    if type(made) is not cls or made != cls(*sample):
        raise TypeError(f"fast_init({where}) does not build an equal {frozen.__qualname__}")
    return build
