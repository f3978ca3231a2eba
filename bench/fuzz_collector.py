"""Fuzz a running collector: generated payloads in, exactly the valid events stored, the service alive.

    .venv/bin/python -m bench.fuzz_collector [--payloads 100000] [--backend sqlite|postgresql|both] [--mqtt 0.05]

Payloads come from two sources, about half each: values generated from the README's JSON Schema
(`footfall.events.json_schemas`, walked property by property, bounds and patterns included), and
mutations of real events (the demo capture replayed through the real sensor pipeline): a field pushed
past its range, made infinite or NaN, of the wrong type, dropped, added, a timestamp outside the wire's
window or naive, text with a control, NUL or bidi character, a truncated or non-UTF-8 payload, a wrong
schema, topic or sensor; and deliberate exact re-sends and same-id conflicts.

What is valid is decided by an oracle independent of the collector's models: the `jsonschema` library
checking the JSON Schema (with ECMA-262 anchoring: a pattern must match the whole string), plus the
rules the schema cannot say (timestamps parsed and inside the window, not past the collector's clock by
more than `ingest.max_future_s`, end not before start, the topic's store/sensor, no reserved sensor name,
finite numbers). A running collector (Collector, real Mosquitto, real SQLite or PostgreSQL) takes most
payloads through its MQTT message handler directly and a share through the broker (QoS 1, one client).

Checked: every valid event stored exactly once with the content of its first copy, nothing invalid
stored, conflicts counted as such, every rejection counted by reason (in memory and in the database),
and an event sent after the fuzz is still stored. tests/test_fuzz_collector.py runs 10,000 per backend.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import CollectorConfig
from collector.ingest.service import Collector
from collector.storage.base import Store
from footfall.events import (
    COLLECTOR_LEVELS,
    EVENT_KINDS,
    HEX_ID_PATTERN,
    NAME_PATTERN,
    SCHEMA_MODELS,
    SCHEMA_VISIT_OPEN,
    TIME_MAX,
    TIME_MIN,
    json_schemas,
)
from footfall.mqtt import Message

PREFIX = "footfall/v1"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)  # the collector's clock during the fuzz
MAX_FUTURE_S = 86_400.0
_KIND = {model.model_fields["schema_"].default: kind for kind, model in EVENT_KINDS.items()}


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
        if not isinstance(data, dict) or _KIND.get(str(data.get("schema"))) != levels[4]:
            return None
        if not self._validators[data["schema"]].is_valid(data) or not _finite(data):
            return None
        times = {k: _time(v) for k, v in data.items() if self._is_time(data["schema"], k)}
        if any(t is None or not TIME_MIN <= t < TIME_MAX or t > self._latest for t in times.values()):
            return None
        if "start" in times and "end" in times and times["end"] < times["start"]:  # type: ignore[operator]
            return None
        if (data["store"], data["sensor"]) != (levels[2], levels[3]):
            return None
        if data["sensor"].lower() in COLLECTOR_LEVELS:
            return None
        return str(data["event_id"])

    def _is_time(self, schema: str, key: str) -> bool:
        return key in self._times[schema]


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
        kind = _KIND.get(str(ref.get("schema")), "count")
        topic = f"{PREFIX}/{ref.get('store')}/{ref.get('sensor')}/{kind}"
        if how == "sensor" or self.rng.random() < 0.01:  # now and then a wrong topic
            topic = self.rng.choice([topic, f"{PREFIX}/{ref.get('store')}/s9/{kind}", f"{PREFIX}/x/{kind}"])
        payload = data if isinstance(data, bytes) else json.dumps(data).encode()
        return Case(topic, payload, how)


# -- the run ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Figures:
    backend: str
    payloads: int
    valid: int
    stored: int
    conflicts: int
    via_mqtt: int
    seconds: float
    rejected: dict[str, int] = field(default_factory=dict)
    by_case: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.rejected.items()))
        return (
            f"{self.backend:10s} {self.payloads} payloads ({self.via_mqtt} via MQTT) in {self.seconds:.1f} s:"
            f" {self.valid} valid, {self.stored} stored once, {self.conflicts} conflicts;"
            f" rejected {sum(self.rejected.values())} ({reasons})"
        )


DEMO = Path(__file__).resolve().parents[1] / "sensor" / "demo" / "demo-store.pcap"


def real_events(work: Path) -> list[dict[str, Any]]:
    """The demo capture's events, made by the real sensor pipeline (`footfall-sensor replay --to jsonl`)."""
    from sensor.cli.main import main as sensor

    out = work / "real.jsonl"
    args = ["--log-level", "error", "replay", str(DEMO), "--to", "jsonl", "--out", str(out)]
    sensor.main([*args, "--store", "paris-01", "--sensor", "s1"], standalone_mode=False)
    return [json.loads(line) for line in out.read_bytes().splitlines() if line.strip()]


def expected(cases: list[Case], oracle: Oracle) -> tuple[dict[str, bytes], int]:
    """The first valid payload of each event id, and how many later valid payloads conflict with it."""
    first: dict[str, bytes] = {}
    conflicts = 0
    for case in cases:
        eid = oracle.event_id(case.topic, case.payload)
        if eid is None:
            continue
        if eid not in first:
            first[eid] = case.payload
        elif _content(first[eid]) != _content(case.payload) and not _never_stored(first[eid]):
            conflicts += 1
    return first, conflicts


def _never_stored(payload: bytes) -> bool:
    # visit_open events feed the real-time trigger only: nothing stored, so nothing to conflict with.
    return bool(json.loads(payload)["schema"] == SCHEMA_VISIT_OPEN)


def _content(payload: bytes) -> dict[str, Any]:
    data = json.loads(payload)
    # What the store keeps: a field left out is its default, which a re-send may spell out.
    model = SCHEMA_MODELS[data["schema"]]
    return model.model_validate_json(payload, strict=True).model_dump()


def run(backend: str, store: Store, port: int, cases: list[Case], mqtt_share: float) -> Figures:
    """Feed `cases` to a running Collector on `store` (broker at 127.0.0.1:`port`); check and count."""
    oracle = Oracle()
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"port": port, "client_id": f"fuzz-{backend}", "session_expiry_s": 600},
            "ingest": {"flush_interval_s": 0.2, "batch_size": 1000, "max_future_s": MAX_FUTURE_S,
                       "rejection_log_interval_s": 60},
        }
    )  # fmt: skip
    t0 = time.monotonic()
    collector = Collector(config, store=store, clock=lambda: NOW.timestamp() + time.monotonic() - t0)
    collector.start()
    time.sleep(0.3)  # the subscription's SUBACK
    cut = int(len(cases) * (1 - mqtt_share))
    direct, by_broker = cases[:cut], [c for c in cases[cut:] if _routable(c.topic)]
    cases = [c for c in direct + by_broker if not _collector_level(c.topic)]  # what the collector takes in
    first, conflicts = expected(cases, oracle)
    started = time.monotonic()
    for case in direct:
        collector._on_message(Message(case.topic, case.payload, qos=0, retain=False))
    via_mqtt = publish(port, by_broker)
    _wait(
        lambda: collector.stats.received >= len(cases) and collector.stats.pending == 0,
        60,
        collector,
        len(cases),
    )
    collector.ingestor.flush()
    seconds = time.monotonic() - started
    stats = collector.stats
    probe = {**json.loads(first[next(iter(first))]), "event_id": "f" * 32} if first else None
    if probe is not None:  # the service is alive: one more event is still stored
        kind = _KIND[probe["schema"]]
        collector._on_message(
            Message(
                f"{PREFIX}/{probe['store']}/{probe['sensor']}/{kind}", json.dumps(probe).encode(), 0, False
            )
        )
        collector.ingestor.flush()
    collector.stop()
    stored = _stored_ids(store)
    storable = {eid for eid, p in first.items() if not _never_stored(p)}
    if probe is not None and probe["schema"] != SCHEMA_VISIT_OPEN:
        storable.add(probe["event_id"])
    assert stored == storable, (
        f"stored {len(stored)}, expected {len(storable)}: {sorted(stored ^ storable)[:5]}"
    )
    firsts = [SCHEMA_MODELS[json.loads(p)["schema"]].model_validate_json(p) for p in first.values()]
    clashing = store.conflicts(firsts)  # type: ignore[arg-type]
    assert clashing == [], f"{len(clashing)} stored events differ from their first valid copy"
    assert stats.rejected.get("conflict", 0) == conflicts, (stats.rejected, conflicts)
    invalid = len(cases) - sum(1 for c in cases if oracle.event_id(c.topic, c.payload) is not None)
    assert sum(stats.rejected.values()) == invalid + conflicts, (stats.rejected, invalid, conflicts)
    assert store.rejections() == {k: v for k, v in stats.rejected.items() if v}, "totals in the database"
    return Figures(
        backend, len(cases), len(first), len(storable), conflicts, via_mqtt, seconds, dict(stats.rejected),
        dict(Counter(c.how for c in cases)),
    )  # fmt: skip


def _routable(topic: str) -> bool:
    """Whether the broker hands a publish on `topic` to the collector's `<prefix>/+/+/+` subscription."""
    levels = topic.split("/")
    return len(levels) == 5 and "/".join(levels[:2]) == PREFIX and not set("+#\x00") & set(topic)


def _collector_level(topic: str) -> bool:
    # Our own levels (control, ack, trigger): the collector takes them for its own messages, unread.
    levels = topic.split("/")
    return len(levels) == 5 and levels[3] in COLLECTOR_LEVELS


def publish(port: int, cases: list[Case]) -> int:
    """Publish `cases` at QoS 1 through one client, all in flight at once; returns how many."""
    if not cases:
        return 0
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fuzz-publisher", protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(c.topic, c.payload, qos=1) for c in cases]
    for info in infos:
        info.wait_for_publish(timeout=60)
    client.disconnect()
    client.loop_stop()
    return len(cases)


def _stored_ids(store: Store) -> set[str]:
    rows = store.query(  # type: ignore[attr-defined]
        "list stored ids",
        "SELECT event_id FROM visits UNION ALL SELECT event_id FROM counts UNION ALL SELECT event_id FROM statuses",
    )
    ids = [str(r[0]) for r in rows]
    assert len(ids) == len(set(ids)), "an event id stored twice"
    return set(ids)


def _wait(condition: Callable[[], bool], timeout_s: float, collector: Collector, n: int) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the collector took {collector.stats.received} of {n} payloads in {timeout_s:g} s"
                f" ({collector.stats.pending} pending)"
            )
        time.sleep(0.05)


# -- the command -----------------------------------------------------------------------------------------------
@contextmanager
def broker(directory: Path) -> Iterator[int]:
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    conf = directory / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n")
    binary = next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), "mosquitto")
    process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payloads", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--mqtt", type=float, default=0.05, help="share sent through the broker (default 0.05)"
    )
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args(argv)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="footfall-fuzz-")))
        real = real_events(work)
        cases = Generator(random.Random(opts.seed), real).cases(opts.payloads)
        port = stack.enter_context(broker(work))
        for backend in ("sqlite", "postgresql") if opts.backend == "both" else (opts.backend,):
            store = stack.enter_context(_open(backend, work))
            figures = run(backend, store, port, cases, opts.mqtt)
            print(figures.line(), flush=True)
    return 0


@contextmanager
def _open(backend: str, work: Path) -> Iterator[Store]:
    if backend == "sqlite":
        from collector.storage.sqlite import SqliteStore

        db: Store = SqliteStore(work / "fuzz.db")
    else:
        import psycopg

        from collector.storage.postgres import PostgresStore
        from tests.pgserver import running_postgres

        with ExitStack() as stack:
            dsn = stack.enter_context(running_postgres())
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute('CREATE DATABASE "fuzz"')
            db = PostgresStore(dsn.replace("dbname=postgres", "dbname=fuzz"))
            try:
                yield db
            finally:
                db.close()
            return
    try:
        yield db
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
