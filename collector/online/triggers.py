"""Real-time triggers: a consented visitor is in the store, so the marketing tool may act at once.

For every visitor visit whose consent token is registered to a profile, one trigger (schema
`footfall.trigger/1`: profile id, store, sensor, when the visit started, when it was sent) goes to
`<prefix>/<store>/trigger` (QoS 1, not retained: a stale "is in the store" must not be replayed to a
new subscriber) and, when configured, to a webhook. The trigger carries the profile id only, never the
device's pseudonym or consent token.

The webhook is POSTed from a background thread with retries and exponential backoff, so a slow
marketing tool never holds up ingestion; 2xx is delivered, 408/429/5xx and network errors are retried,
any other 4xx is given up at once (the receiver refused it; retrying would not help). With a secret,
`X-Footfall-Signature: sha256=<HMAC-SHA256 of the body>` lets the receiver check where it came from.
The HTTP client and the sleep are passed in, so tests run the backoff in no time.

Sensors publish a visit when it closes today, so a trigger comes when the visitor leaves; a sensor-side
"visit open" event (see the report) would make it fire while the person is still in the store.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from collector.config import TriggersConfig
from collector.storage.base import ProfileStore, Store, StoreError
from collector.storage.trigger_log import LoggedTrigger, log_triggers
from footfall.configfile import ConfigError
from footfall.events import Event, VisitEvent, VisitOpenEvent

log = logging.getLogger("footfall.collector.triggers")

SCHEMA_TRIGGER: Final = "footfall.trigger/1"
TRIGGER_KINDS = frozenset({"visitor"})  # a passerby never came in; a fixed device is not a customer
RETRY_STATUSES = frozenset({408, 429})
SEEN_MAX = 100_000

Post = Callable[[str, bytes, Mapping[str, str], float], int]
"""(url, body, headers, timeout_s) -> HTTP status; raises OSError when no answer came."""


class Trigger(BaseModel):
    """What the marketing tool gets: who is in which store since when."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["footfall.trigger/1"] = Field(SCHEMA_TRIGGER, alias="schema")
    profile_id: str
    store: str
    sensor: str
    at: datetime = Field(description="when the visit started, UTC")
    sent: datetime = Field(description="when the collector sent this trigger, UTC")
    visit: str = Field(description="the visit's event id: a receiver can drop a repeat")

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def trigger_topic(prefix: str, store: str) -> str:
    return f"{prefix}/{store}/trigger"


def urllib_post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
    """POST with the standard library (no extra dependency on the collector); the status, any status."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass
class WebhookStats:
    delivered: int = 0
    retries: int = 0
    failed: int = 0  # gave up: attempts used up or refused by the receiver
    dropped: int = 0  # the queue was full


class Webhook:
    """POSTs trigger bodies to one URL, retrying with exponential backoff; `submit` never blocks."""

    def __init__(
        self,
        url: str,
        *,
        secret: bytes | None = None,
        post: Post = urllib_post,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = 5,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        timeout_s: float = 5.0,
        queue_max: int = 1000,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.url = url
        self._secret = secret
        self._post = post
        self._sleep = sleep
        self._attempts = attempts
        self._backoff = (backoff_s, backoff_max_s)
        self._timeout_s = timeout_s
        self._queue: queue.Queue[bytes | None] = queue.Queue(queue_max)
        self._thread: threading.Thread | None = None
        self.stats = WebhookStats()

    def headers(self, body: bytes) -> dict[str, str]:
        out = {"Content-Type": "application/json", "User-Agent": "footfall-collector"}
        if self._secret:
            out["X-Footfall-Signature"] = "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        return out

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1, 2, ...): doubling, capped."""
        base, cap = self._backoff
        return float(min(cap, base * 2 ** (retry - 1)))

    def deliver(self, body: bytes) -> bool:
        """Send one body now, retrying as needed; True once the receiver answered 2xx."""
        headers = self.headers(body)
        for attempt in range(1, self._attempts + 1):
            try:
                status = self._post(self.url, body, headers, self._timeout_s)
                why = f"HTTP {status}"
            except OSError as exc:
                status, why = 0, f"{type(exc).__name__}: {exc}"
            if 200 <= status < 300:
                self.stats.delivered += 1
                return True
            if status and status < 500 and status not in RETRY_STATUSES:
                log.warning("webhook %s refused a trigger (%s); not retried", self.url, why)
                break
            if attempt < self._attempts:
                self.stats.retries += 1
                log.info("webhook %s: %s; retry %d in %.1f s", self.url, why, attempt, self.delay(attempt))
                self._sleep(self.delay(attempt))
            else:
                log.warning("webhook %s: %s; gave up after %d attempts", self.url, why, attempt)
        self.stats.failed += 1
        return False

    def submit(self, body: bytes) -> bool:
        """Queue a body for the background thread; False (counted, logged) when the queue is full."""
        try:
            self._queue.put_nowait(body)
            return True
        except queue.Full:
            self.stats.dropped += 1
            log.warning("webhook %s: queue full, trigger dropped (%d so far)", self.url, self.stats.dropped)
            return False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (within `timeout_s`), then end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while (body := self._queue.get()) is not None:
            self.deliver(body)


def webhook_from_config(config: TriggersConfig) -> Webhook | None:
    """The configured webhook (not started), or None; the secret is read from its file now."""
    if config.webhook_url is None:
        return None
    secret = None
    if config.webhook_secret_file is not None:
        try:
            secret = config.webhook_secret_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ConfigError(
                config.webhook_secret_file,
                [
                    f"triggers.webhook_secret_file: cannot read {config.webhook_secret_file}: {exc.strerror or exc}"
                ],
            ) from None
    return Webhook(config.webhook_url, secret=secret, attempts=config.attempts, backoff_s=config.backoff_s)


class Triggers:
    """Turns stored visit events into triggers; call `handle` with events once they are stored."""

    def __init__(
        self,
        profiles: ProfileStore,
        publish: Callable[[str, bytes], object],
        prefix: str,
        *,
        webhook: Webhook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        log: Callable[[Sequence[Trigger]], object] | None = None,
    ) -> None:
        self._profiles = profiles
        self._log = log  # the trigger log the omnichannel page shows (`logged_in`)
        self._publish = publish
        self._prefix = prefix
        self._webhook = webhook
        self._clock = clock
        self._seen: OrderedDict[str, None] = OrderedDict()  # a re-delivered visit triggers once
        self.sent = 0

    def handle(self, events: Sequence[Event]) -> list[Trigger]:
        """Publish a trigger for each new consented visit among `events`; returns them.

        A visit triggers once: at its `visit_open` event (the person was just heard inside), or, from a
        sensor that sent none, when its closed `visitor` visit arrives. Re-deliveries and the closing
        event of a visit already triggered at its opening are recognised by the visit's identity.
        """
        fresh: dict[str, VisitEvent | VisitOpenEvent] = {}
        for e in events:
            if not isinstance(e, VisitEvent | VisitOpenEvent) or not e.consent:
                continue
            if isinstance(e, VisitEvent) and e.kind not in TRIGGER_KINDS:
                continue
            key = _visit_key(e)
            if key not in self._seen and key not in fresh:
                fresh[key] = e
        if not fresh:
            return []
        profiles = self._profiles.consent_profiles([v.consent for v in fresh.values() if v.consent])
        out = []
        for key, v in fresh.items():
            self._remember(key)
            profile = profiles.get(v.consent or "")
            if profile is None:  # token not (or no longer) registered: the device is not joined
                continue
            trigger = Trigger(
                profile_id=profile,
                store=v.store,
                sensor=v.sensor,
                at=v.at if isinstance(v, VisitOpenEvent) else v.start,
                sent=self._clock(),
                visit=v.event_id,
            )
            body = trigger.to_json()
            self._publish(trigger_topic(self._prefix, v.store), body)
            if self._webhook is not None:
                self._webhook.submit(body)
            out.append(trigger)
        self.sent += len(out)
        if self._log is not None and out:
            try:
                self._log(out)
            except StoreError as exc:  # the triggers went out: a missing log line must not hold up ingestion
                log.warning("%d triggers sent but not logged: %s", len(out), exc)
        return out

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)


def logged_in(store: Store) -> Callable[[Sequence[Trigger]], int]:
    """A `log` for `Triggers`: keeps each sent trigger in the store's trigger log."""

    def log_sent(triggers: Sequence[Trigger]) -> int:
        return log_triggers(
            store, [LoggedTrigger(t.visit, t.store, t.sensor, t.profile_id, t.at, t.sent) for t in triggers]
        )

    return log_sent


def _visit_key(e: VisitEvent | VisitOpenEvent) -> str:
    """What identifies a visit across its opening and closing events (and re-deliveries)."""
    return f"{e.store}/{e.sensor}/{e.epoch}/{e.device}/{e.start.isoformat()}"
