"""10,000 generated payloads through a running collector on each backend (bench/fuzz_collector.py runs 100,000).

Half from the README's JSON Schema, half mutations of the demo capture's real events, re-sends and same-id
conflicts; most fed to the service's MQTT message handler, a tenth through a real Mosquitto. Every valid
event (decided by an oracle built on the `jsonschema` library, not on the collector's models) is stored
exactly once with its first copy's content, nothing invalid is stored, conflicts and every rejection are
counted by reason, and the service still stores an event afterwards (`run` asserts all of it).
"""

from __future__ import annotations

import random

import pytest

from bench.fuzz_collector import real_events, run
from bench.fuzz_payloads import Case, Generator, Oracle
from collector.storage.base import Store
from tests.conftest import Broker
from tests.pgserver import each_store, postgres_dsn, postgres_server  # noqa: F401

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
N = 10_000


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return Generator(random.Random(12), real_events(tmp_path_factory.mktemp("real"))).cases(N)


@pytest.fixture
def store(each_store: Store) -> Store:  # noqa: F811
    return each_store


def test_every_valid_event_is_stored_once_and_every_reject_is_counted_by_reason(
    cases: list[Case], store: Store, broker: Broker
) -> None:
    figures = run(type(store).__name__, store, broker.port, cases, mqtt_share=0.1)
    print(figures.line())
    assert figures.payloads >= N - 200 and figures.via_mqtt > 500
    assert figures.stored > N // 5 and figures.conflicts > 0
    assert {"invalid", "not_json", "wrong_schema", "topic_mismatch", "conflict"} <= set(figures.rejected)


def test_the_generated_payloads_cover_valid_and_every_kind_of_mutation(cases: list[Case]) -> None:
    oracle = Oracle()
    valid = sum(1 for c in cases if oracle.event_id(c.topic, c.payload) is not None)
    assert 0.3 * N < valid < 0.7 * N
    hows = {c.how for c in cases}
    assert {
        "schema",
        "real",
        "resend",
        "conflict",
        "int_range",
        "float_range",
        "time",
        "text",
        "truncated",
    } <= hows
