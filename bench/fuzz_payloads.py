"""The fuzz's payloads and its oracle: generated from the JSON Schema and mutated from real events.

`Generator` makes `Case`s (topic, payload, how it was made); `Oracle` says whether a payload is a valid
event without the collector's models: the `jsonschema` library on the README's JSON Schema (patterns
anchored as ECMA-262 does, integers strict) plus the rules a schema cannot say. Used by
bench/fuzz_collector.py and tests/test_fuzz_collector.py.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema

from footfall.events import (
    COLLECTOR_LEVELS,
    EVENT_KINDS,
    HEX_ID_PATTERN,
    NAME_PATTERN,
    SCHEMA_MODELS,
    TIME_MAX,
    TIME_MIN,
    json_schemas,
)

PREFIX = "footfall/v1"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)  # the collector's clock during the fuzz
MAX_FUTURE_S = 86_400.0
KIND = {model.model_fields["schema_"].default: kind for kind, model in EVENT_KINDS.items()}


# -- the oracle ------------------------------------------------------------------------------------------------
def _whole_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    # ECMA-262 `$` is the end of the input; Python's also matches before a final newline.
    if (
        isinstance(instance, str)
        and re.fullmatch(pattern.removeprefix("^").removesuffix("$"), instance) is None
    ):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _strict_types() -> Any:
    base = jsonschema.Draft202012Validator.TYPE_CHECKER
    # The wire is strict: 3.0 is not an integer (JSON Schema says it is; the collector's models do not).
    return base.redefine("integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, validators={"pattern": _whole_pattern}, type_checker=_strict_types()
)


class Oracle:
    """Is a (topic, payload) valid? Decided from the JSON Schema and the written rules, not the models."""

    def __init__(self, now: datetime = NOW, max_future_s: float = MAX_FUTURE_S, max_bytes: int = 65_536):
        schemas = json_schemas()
        self._validators = {name: _Validator(schema) for name, schema in schemas.items()}
        self._times = {
            name: {k for k, p in schema["properties"].items() if p.get("format") == "date-time"}
            for name, schema in schemas.items()
        }
        self._latest = now + timedelta(seconds=max_future_s)
        self._max_bytes = max_bytes

    def event_id(self, topic: str, payload: bytes) -> str | None:
        """The payload's event_id if it is a valid event for `topic`, else None."""
        levels = topic.split("/")
        if len(levels) != 5 or "/".join(levels[:2]) != PREFIX or levels[4] not in EVENT_KINDS:
            return None
        if len(payload) > self._max_bytes:
            return None
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(data, dict) or KIND.get(str(data.get("schema"))) != levels[4]:
            return None
        if not self._validators[data["schema"]].is_valid(data) or not _finite(data):
            return None
        times = {k: _time(v) for k, v in data.items() if self._is_time(data["schema"], k)}
        if any(t is None or not TIME_MIN <= t < TIME_MAX or t > self._latest for t in times.values()):
            return None
        if "start" in times and "end" in times and times["end"] < times["start"]:  # type: ignore[operator]
            return None
        if not _interval_holds(data):
            return None
        if (data["store"], data["sensor"]) != (levels[2], levels[3]):
            return None
        if data["sensor"].lower() in COLLECTOR_LEVELS:
            return None
        return str(data["event_id"])

    def _is_time(self, schema: str, key: str) -> bool:
        return key in self._times[schema]


def _interval_holds(data: dict[str, Any]) -> bool:
    """A count's 80 % interval: both ends or neither, and present_low <= present <= present_high."""
    low, high = data.get("present_low"), data.get("present_high")
    if (low is None) != (high is None):
        return False
    return low is None or bool(low <= data["present"] <= high)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$")


def _time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp with its offset (the generator writes no other form), else None."""
    if not isinstance(value, str) or not _ISO.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# -- the generator ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Case:
    topic: str
    payload: bytes
    how: str  # schema, real, a mutation's name, resend, conflict


_PRINTABLE = "abcXYZ019 _.-/:éß漢🙂"
_NASTY = ["\x00", "\x1b[31m", "\u202e", "\u2066", "\n", "\x7f", "\u0085", "\u200f"]


class Generator:
    def __init__(self, rng: random.Random, real: list[dict[str, Any]]) -> None:
        self.rng = rng
        self.real = real
        self.schemas = json_schemas()
        self.names = list(SCHEMA_MODELS)
        self._n = 0

    def fresh_id(self) -> str:
        self._n += 1
        return f"{self.rng.getrandbits(64):016x}{self._n:016x}"

    # values from the JSON Schema
    def value(self, prop: dict[str, Any]) -> Any:
        rng = self.rng
        options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
        if prop.get("anyOf"):
            return None if rng.random() < 0.2 else self.value({**prop, **options[0], "anyOf": []})
        if "const" in prop:
            return prop["const"]
        if "enum" in prop:
            return rng.choice(prop["enum"])
        kind = prop.get("type")
        if kind == "integer":
            lo, hi = prop.get("minimum", 0), prop.get("maximum", 2**31 - 1)
            return rng.choice([lo, hi, rng.randint(lo, min(hi, lo + 100)), rng.randint(lo, hi)])
        if kind == "number":
            lo, hi = float(prop.get("minimum", 0)), float(prop.get("maximum", 1e6))
            return rng.choice([lo, hi, round(rng.uniform(lo, min(hi, lo + 100)), 3), rng.uniform(lo, hi)])
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "object":
            return {self.text(10): rng.randint(0, 1000) for _ in range(rng.randint(0, 3))}
        if prop.get("format") == "date-time":
            return self.time(TIME_MIN.replace(year=2020), NOW)
        pattern = prop.get("pattern")
        if pattern == HEX_ID_PATTERN:
            return "".join(f"{rng.getrandbits(32):08x}" for _ in range(rng.randint(1, 8)))
        if pattern == NAME_PATTERN:
            return self.name()
        if pattern and pattern.startswith("^(?:[A-Za-z0-9]"):  # the epoch
            return rng.choice(["", "20261124T0300Z", self.name()])
        return self.text(min(prop.get("maxLength", 20), 20))

    def name(self) -> str:
        return self.rng.choice(["paris-01", "lyon-02", "s1", "door-1", "A.b_c-9", "x" * 63])

    def text(self, n: int) -> str:
        return "".join(self.rng.choice(_PRINTABLE) for _ in range(self.rng.randint(0, n)))

    def time(self, lo: datetime, hi: datetime) -> str:
        t = lo + (hi - lo) * self.rng.random()
        return (
            t.replace(microsecond=t.microsecond if self.rng.random() < 0.5 else 0)
            .isoformat()
            .replace("+00:00", "Z")
        )

    def from_schema(self) -> dict[str, Any]:
        name = self.rng.choice(self.names)
        schema = self.schemas[name]
        required = set(schema["required"])
        data = {
            key: self.value(prop)
            for key, prop in schema["properties"].items()
            if key in required or self.rng.random() < 0.7
        }
        data = {k: v for k, v in data.items() if v is not None or k not in required}
        if "start" in data and "end" in data and data["end"] < data["start"]:
            data["start"], data["end"] = data["end"], data["start"]
        if (
            "start" in data
            and "at" in data
            and name == "footfall.visit_open/1"
            and data["at"] < data["start"]
        ):
            data["start"], data["at"] = data["at"], data["start"]
        data["event_id"] = self.fresh_id()
        return data

    def from_real(self) -> dict[str, Any]:
        return {**self.rng.choice(self.real), "event_id": self.fresh_id()}

    # mutations
    def mutate(self, data: dict[str, Any]) -> tuple[dict[str, Any] | bytes, str]:
        rng = self.rng
        key = rng.choice(sorted(data))
        value = data[key]
        choices: list[tuple[str, Callable[[], Any]]] = [
            ("drop", lambda: {k: v for k, v in data.items() if k != key}),
            ("extra", lambda: {**data, "unexpected": 1}),
            ("type", lambda: {**data, key: rng.choice([[], {}, "x", 1.5, True, None])}),
        ]
        if isinstance(value, int) and not isinstance(value, bool):
            choices.append(
                ("int_range", lambda: {**data, key: rng.choice([-1, 2**31, 2**63, 2**64, 10**30])})
            )
            choices.append(("int_as_float", lambda: {**data, key: float(value)}))
        if isinstance(value, float):
            choices.append(
                ("float_range", lambda: {**data, key: rng.choice([float("inf"), float("nan"), -0.5, 1e300])})
            )
        if isinstance(value, str) and _time(value) is not None:
            bad = ["0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                   value.rstrip("Z"), "2024-13-01T00:00:00Z", "yesterday", (NOW + timedelta(days=3)).isoformat()]  # fmt: skip
            choices.append(("time", lambda: {**data, key: rng.choice(bad)}))
        if isinstance(value, str) and key not in ("schema",):
            choices.append(("text", lambda: {**data, key: value[:3] + rng.choice(_NASTY) + value[3:]}))
            choices.append(("long", lambda: {**data, key: value + "a" * 300}))
        choices.append(("truncated", lambda: json.dumps(data).encode()[: rng.randint(0, 40)]))
        choices.append(("not_utf8", lambda: json.dumps(data).encode().replace(b'"', b'"\xff', 1)))
        choices.append(
            ("schema", lambda: {**data, "schema": rng.choice([*self.names, "footfall.visit/2", ""])})
        )
        choices.append(
            ("sensor", lambda: {**data, "sensor": rng.choice(["other", "control", "ack", "a/b", ""])})
        )
        how, make = rng.choice(choices)
        return make(), how

    def cases(self, n: int) -> list[Case]:
        out: list[Case] = []
        rng = self.rng
        while len(out) < n:
            how = "schema" if rng.random() < 0.5 or not self.real else "real"
            data = self.from_schema() if how == "schema" else self.from_real()
            roll = rng.random()
            if roll < 0.4:
                out.append(self.case(data, how))
            elif roll < 0.45:  # the same event twice: a re-send
                out += [self.case(data, how), self.case(data, "resend")]
            elif roll < 0.5:  # the same id, other content: a conflict (if both are valid)
                other = {**data, "epoch": "other-epoch" if data.get("epoch") != "other-epoch" else "x"}
                out += [self.case(data, how), self.case(other, "conflict")]
            else:
                mutated, how = self.mutate(data)
                out.append(self.case(mutated, how, data))
        return out[:n]

    def case(self, data: dict[str, Any] | bytes, how: str, base: dict[str, Any] | None = None) -> Case:
        ref = base if isinstance(data, bytes) or base is not None else data
        assert ref is not None
        kind = KIND.get(str(ref.get("schema")), "count")
        topic = f"{PREFIX}/{ref.get('store')}/{ref.get('sensor')}/{kind}"
        if how == "sensor" or self.rng.random() < 0.01:  # now and then a wrong topic
            topic = self.rng.choice([topic, f"{PREFIX}/{ref.get('store')}/s9/{kind}", f"{PREFIX}/x/{kind}"])
        payload = data if isinstance(data, bytes) else json.dumps(data).encode()
        return Case(topic, payload, how)
