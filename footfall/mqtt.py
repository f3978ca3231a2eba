"""One small typed class around paho-mqtt 2.x, the only place that touches paho.

paho's own types stay inside; callers see `Message`, `MqttError` and plain values. Reconnection is
paho's (capped exponential backoff, forever); subscriptions are renewed in `on_connect` so a broker
restart without a persistent session loses no subscription. `publish` returns the message id and
`wait_acked` / `wait_any_acked` / `take_refused` report the broker's PUBACKs, so a caller with a spool removes an event
only once it is safe. With `manual_ack` the client acknowledges a received message only when told to
(`ack`), after the caller has made it durable: a receiver killed before that gets it again.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from footfall.mqtttypes import BrokerSettings, Message, MqttError, TlsSettings, Will

__all__ = [
    "NO_MATCHING_SUBSCRIBERS",
    "BrokerSettings",
    "Handler",
    "Message",
    "MqttClient",
    "MqttError",
    "TlsSettings",
    "Will",
]

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 0x10  # PUBACK reason: accepted, but no subscription (or session) matched


Handler = Callable[[Message], None]


class MqttClient:
    """A connected MQTT v5 client running paho's network loop in a background thread."""

    def __init__(self, settings: BrokerSettings, will: Will | None = None) -> None:
        self._settings = settings
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=True,
            manual_ack=settings.manual_ack,
        )
        self._client.max_inflight_messages_set(settings.max_inflight)
        self._client.enable_logger(logging.getLogger("footfall.paho"))
        if settings.username is not None:
            self._client.username_pw_set(settings.username, settings.password)
        if settings.tls is not None:
            self._client.tls_set(
                ca_certs=str(settings.tls.ca_file),
                certfile=str(settings.tls.cert_file) if settings.tls.cert_file else None,
                keyfile=str(settings.tls.key_file) if settings.tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            self._client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self._client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._subscriptions: dict[str, tuple[int, Handler]] = {}
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._acked: set[int] = set()
        self._refused: dict[int, str] = {}
        self._ack_cond = threading.Condition(self._lock)
        self._on_connect_hooks: list[Callable[[], None]] = []
        self._closing = False
        self._suback = threading.Event()
        self._sub_pending: set[int] = set()
        self._client.on_subscribe = self._on_subscribe
        self.connects = 0
        self.disconnects = 0
        self.last_error = ""

    # -- lifecycle ------------------------------------------------------------------------------------
    def connect(self, timeout_s: float = 10.0, *, wait: bool = True) -> None:
        """Connect and start the network loop; with `wait`, fail with MqttError if not up in time."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self._settings.session_expiry_s:
            props.SessionExpiryInterval = self._settings.session_expiry_s
        if self._settings.receive_maximum:
            props.ReceiveMaximum = self._settings.receive_maximum
        try:
            self._client.connect_async(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive_s,
                clean_start=self._settings.session_expiry_s == 0,
                properties=props,
            )
        except (OSError, ValueError) as exc:
            raise MqttError(f"cannot connect to {self._where}: {exc}") from None
        self._client.loop_start()
        if wait and not self._connected.wait(timeout_s):
            detail = f": {self.last_error}" if self.last_error else ""
            self.close()
            raise MqttError(f"no connection to {self._where} within {timeout_s:g} s{detail}")

    def close(self) -> None:
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def on_connect(self, hook: Callable[[], None]) -> None:
        """Run `hook` after every (re)connection, e.g. to publish a retained `online` status."""
        self._on_connect_hooks.append(hook)

    # -- publish --------------------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Queue a message; returns its message id (0 for QoS 0). Raises MqttError if paho refuses."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise MqttError(f"publish to {topic} refused: {paho.error_string(info.rc)}")
        return int(info.mid)

    def wait_acked(self, mids: set[int], timeout_s: float) -> set[int]:
        """Wait until all `mids` are acknowledged or the time is up; returns those still unacknowledged."""
        with self._ack_cond:
            self._ack_cond.wait_for(lambda: mids <= self._acked, timeout=timeout_s)
            done = mids & self._acked
            self._acked -= done
            return mids - done

    def wait_any_acked(self, timeout_s: float) -> set[int]:
        """Message ids acknowledged since the last call, after waiting up to `timeout_s` for at least one."""
        with self._ack_cond:
            self._ack_cond.wait_for(lambda: bool(self._acked or self._refused), timeout=timeout_s)
            done, self._acked = self._acked, set()
            return done

    def take_refused(self) -> dict[int, str]:
        """Publishes the broker did not pass on, by message id, with its reason.

        Either a failure (e.g. "Not authorized") or "No matching subscribers" (MQTT 5 reason 0x10): a
        success code, so the id is also among the acknowledged, but nobody (not even an absent
        persistent session) will ever receive the message.
        """
        with self._lock:
            refused, self._refused = self._refused, {}
            return refused

    # -- receive --------------------------------------------------------------------------------------
    def ack(self, message: Message) -> bool:
        """Acknowledge a received QoS 1 message (with `manual_ack`); False if its connection is gone.

        After a reconnection the broker sends unacknowledged messages again, possibly under message ids
        that now belong to others, so an acknowledgement is sent only on the connection that delivered.
        """
        if not self._settings.manual_ack or message.qos == 0:
            return True
        if message.connection != self.connects or not self.connected:
            return False
        return self._client.ack(message.mid, message.qos) == paho.MQTT_ERR_SUCCESS

    # -- subscribe ------------------------------------------------------------------------------------
    def subscribe(self, topic: str, handler: Handler, qos: int = 1, *, wait_s: float = 0.0) -> bool:
        """Subscribe now (if connected) and again after every reconnection.

        With `wait_s`, wait that long for the broker's SUBACK; returns whether it came.
        """
        self._subscriptions[topic] = (qos, handler)
        if not self.connected:
            return False
        with self._lock:
            self._suback.clear()
            _, mid = self._client.subscribe(topic, qos=qos)
            if mid is not None:
                self._sub_pending.add(mid)
        return self._suback.wait(wait_s) if wait_s > 0 else False

    # -- paho callbacks (network thread) --------------------------------------------------------------
    @property
    def _where(self) -> str:
        return f"mqtt{'s' if self._settings.tls else ''}://{self._settings.host}:{self._settings.port}"

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.last_error = str(reason)
            log.warning("broker %s refused the connection: %s", self._where, reason)
            return
        self.connects += 1
        for topic, (qos, _) in self._subscriptions.items():
            client.subscribe(topic, qos=qos)
        log.info("connected to %s (session present: %s)", self._where, flags.session_present)
        self._connected.set()
        for hook in self._on_connect_hooks:
            hook()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if self._closing:
            log.info("disconnected from %s", self._where)
            return
        self.disconnects += 1
        self.last_error = str(reason)
        log.warning("disconnected from %s: %s; reconnecting with backoff", self._where, reason)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        message = Message(
            msg.topic, bytes(msg.payload), int(msg.qos), bool(msg.retain), int(msg.mid), self.connects
        )
        for pattern, (_, handler) in self._subscriptions.items():
            if paho.topic_matches_sub(_plain_filter(pattern), msg.topic):
                try:
                    handler(message)
                except Exception:
                    # A handler bug must not kill paho's network thread (and with it every later message).
                    log.exception("handler for %s failed on a message on %s", pattern, msg.topic)
                return
        self.ack(message)  # nobody wants it: do not leave it blocking the broker's window

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._sub_pending.discard(mid)
            if not self._sub_pending:
                self._suback.set()
        for reason in reasons:
            if reason.is_failure:
                log.warning("broker %s refused a subscription: %s", self._where, reason)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._ack_cond:
            if reason.is_failure or reason.value == NO_MATCHING_SUBSCRIBERS:
                self._refused[mid] = str(reason)
            if not reason.is_failure:
                self._acked.add(mid)
            self._ack_cond.notify_all()


def _plain_filter(pattern: str) -> str:
    """`$share/group/topic` → `topic`: the broker strips the share prefix from delivered topics."""
    if pattern.startswith("$share/"):
        return pattern.split("/", 2)[2]
    return pattern
