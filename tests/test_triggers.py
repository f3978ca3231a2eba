"""Real-time triggers: over a real Mosquitto, and a webhook with retries (a fake and a real HTTP server)."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from collector.online.triggers import Trigger, Triggers, Webhook, trigger_topic
from collector.storage.sqlite import SqliteStore
from footfall.mqtt import BrokerSettings, Message, MqttClient
from tests.conftest import Broker
from tests.test_omnichannel import NOW, TOKENS, VISITS, at, consented_visit, populate

BOB, ANON, ERIN, ALICE = VISITS[0], VISITS[1], VISITS[2], VISITS[3]
CAROL_PASSING = VISITS[-1]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "f.db")
    populate(store)
    yield store
    store.close()


class FakePost:
    """Answers with the given statuses in turn (an exception is raised instead of answered)."""

    def __init__(self, *answers: int | OSError) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        self.calls.append((url, body, dict(headers)))
        answer = self.answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer


@pytest.mark.mqtt
def test_a_consented_visitor_visit_publishes_one_trigger_with_the_profile_and_store(
    db: SqliteStore, broker: Broker
) -> None:
    received: queue.Queue[Message] = queue.Queue()
    listener = MqttClient(BrokerSettings(broker.host, broker.port, client_id="marketing"))
    sender = MqttClient(BrokerSettings(broker.host, broker.port, client_id="collector"))
    listener.connect()
    sender.connect()
    try:
        assert listener.subscribe("footfall/v1/+/trigger", received.put, wait_s=5)
        triggers = Triggers(db.profiles(), sender.publish, "footfall/v1", clock=lambda: NOW)
        sent = triggers.handle([BOB, ANON, ERIN, CAROL_PASSING])  # bob only: others lack a registered consent
        again = triggers.handle([BOB])  # the same visit re-delivered
        message = received.get(timeout=10)
    finally:
        sender.close()
    try:
        with pytest.raises(queue.Empty):
            received.get(timeout=0.5)
    finally:
        listener.close()
    assert [t.profile_id for t in sent] == ["bob"] and again == []
    assert message.topic == "footfall/v1/paris-01/trigger" and not message.retain
    body = json.loads(message.payload)
    assert body == {
        "schema": "footfall.trigger/1", "profile_id": "bob", "store": "paris-01", "sensor": "s1",
        "at": "2024-05-01T08:00:00Z", "sent": "2024-05-10T12:00:00Z", "visit": BOB.event_id,
    }  # fmt: skip
    assert TOKENS["B"] not in message.payload.decode() and BOB.device not in message.payload.decode()


def test_a_withdrawn_consent_stops_the_triggers_of_that_device(db: SqliteStore) -> None:
    published: list[tuple[str, bytes]] = []
    triggers = Triggers(db.profiles(), lambda t, b: published.append((t, b)), "footfall/v1")
    db.registry_remove("consent", [TOKENS["D1"]])
    later = consented_visit("D1", at(5, 9, 10))
    assert triggers.handle([later, consented_visit("D2", at(5, 9, 11))])[0].profile_id == "dave"
    assert [t for t, _ in published] == [trigger_topic("footfall/v1", "paris-01")]


def test_every_trigger_goes_to_the_webhook_too(db: SqliteStore) -> None:
    post = FakePost(204, 204)
    hook = Webhook("http://tool.example/hook", post=post, sleep=lambda s: None)
    triggers = Triggers(db.profiles(), lambda t, b: None, "footfall/v1", webhook=hook)
    hook.start()
    triggers.handle([BOB, ALICE])
    hook.stop()
    assert [json.loads(body)["profile_id"] for _, body, _ in post.calls] == ["bob", "alice"]
    assert hook.stats.delivered == 2


def test_the_webhook_retries_server_errors_and_timeouts_with_doubling_delays() -> None:
    post = FakePost(503, TimeoutError("timed out"), 429, 200)
    slept: list[float] = []
    hook = Webhook("http://tool.example/hook", post=post, sleep=slept.append, backoff_s=1, backoff_max_s=3)
    assert hook.deliver(b"{}")
    assert slept == [1, 2, 3] and (hook.stats.retries, hook.stats.delivered, hook.stats.failed) == (3, 1, 0)


def test_the_webhook_gives_up_after_the_attempts_or_at_once_on_a_refusal() -> None:
    slept: list[float] = []
    down = Webhook(
        "http://x/", post=FakePost(*[ConnectionRefusedError()] * 3), sleep=slept.append, attempts=3
    )
    assert not down.deliver(b"{}") and slept == [1, 2] and down.stats.failed == 1
    refused = Webhook("http://x/", post=FakePost(400), sleep=slept.append)
    assert not refused.deliver(b"{}") and slept == [1, 2] and refused.stats.failed == 1


def test_a_full_webhook_queue_drops_and_counts_instead_of_blocking() -> None:
    hook = Webhook("http://x/", post=FakePost(), queue_max=1)  # not started: nothing drains the queue
    assert hook.submit(b"1") and not hook.submit(b"2")
    assert hook.stats.dropped == 1


def test_the_webhook_posts_signed_json_to_a_real_http_server_and_retries_a_503() -> None:
    got: list[tuple[bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((body, self.headers["X-Footfall-Signature"]))
            self.send_response(503 if len(got) == 1 else 204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        hook = Webhook(url, secret=b"shared secret", sleep=lambda s: None)
        body = Trigger(profile_id="bob", store="s", sensor="s1", at=NOW, sent=NOW, visit="ab" * 8).to_json()
        assert hook.deliver(body)
    finally:
        server.shutdown()
    expected = "sha256=" + hmac.new(b"shared secret", body, hashlib.sha256).hexdigest()
    assert got == [(body, expected), (body, expected)] and hook.stats.retries == 1
