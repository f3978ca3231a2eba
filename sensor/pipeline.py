"""The sensor pipeline: capture records → decode → pseudonymise → resolve devices → presence → events.

Everything here is plain computation over what is passed in (records, a salt source, a sink); the same
pipeline serves replay (time from the frames) and live capture (time from a clock via `advance`).
The raw transmitter address exists only between `decode` and `pseudonym` inside `feed`.

With `capture.store_networks`, frames of stations connected to the store's own access points come out of
the decoder too; they take the same privacy path as probe requests (opt-out dropped before anything,
pseudonym at once, consent token looked up on the raw address) and become `ConnectedSighting`s handed
to `on_connected`. Counting them (present, visits) is the estimator's part and not done yet (README).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from footfall.events import Event
from sensor.config import SensorConfig
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import CaptureRecord, ConnectedFrame, ConnectedSighting, Sighting
from sensor.estimate.devices import DeviceResolver
from sensor.estimate.occupancy import OccupancyEstimator
from sensor.estimate.visits import PeopleEstimate, PresenceModel
from sensor.keys.pseudonym import Pseudonymizer, SaltSource


class Sink(Protocol):
    """Where events go: MQTT, a JSON-lines file, a list in a test."""

    def send(self, event: Event) -> None: ...

    def close(self) -> None: ...


class Resolver(Protocol):
    """Groups the addresses of one device (randomized MACs) into one estimated device id."""

    def resolve(self, s: Sighting) -> str: ...

    def is_fixed(self, device: str) -> bool: ...


class AddressIsDevice:
    """No estimation: every address is its own device (the naive count)."""

    def resolve(self, s: Sighting) -> str:
        return s.address

    def is_fixed(self, device: str) -> bool:
        return False


@dataclass
class ListSink:
    """Keeps events in memory (tests, calibration, benchmarks)."""

    events: list[Event] = field(default_factory=list)

    def send(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def _ignore(sighting: ConnectedSighting) -> None:
    """Until an estimator counts connected stations, their sightings are only counted (README)."""


class Pipeline:
    def __init__(
        self,
        config: SensorConfig,
        salts: SaltSource,
        sink: Sink,
        *,
        resolver: Resolver | None = None,
        people: PeopleEstimate | None = None,
        drop_mac: Callable[[bytes], bool] | None = None,
        consent_of_mac: Callable[[bytes], str | None] | None = None,
        on_connected: Callable[[ConnectedSighting], None] = _ignore,
    ) -> None:
        self.config = config
        self._networks = config.capture.store_bssids()  # BSSID -> the store network's SSID
        self.decoder = FrameDecoder(store_bssids=self._networks)
        self._on_connected = on_connected
        self.connected = 0  # connected sightings handed on
        self.pseudonyms = Pseudonymizer(salts, config.privacy.pseudonym_bits)
        self.occupancy: OccupancyEstimator | None = None
        if resolver is None:
            if config.estimator.enabled:
                params = config.estimator.params()
                devices = DeviceResolver(params.resolver)
                resolver = devices
                if people is None:
                    self.occupancy = OccupancyEstimator(params, devices.is_fixed)
                    people = self.occupancy
            else:
                resolver = AddressIsDevice()
        self.resolver = resolver
        self.sink = sink
        self._drop_mac = drop_mac
        mode = config.privacy.mode
        self._consent_of_mac = consent_of_mac if mode == "consent" else None
        self._device_consent: dict[str, str] = {}
        self.dropped_optout = 0
        self.dropped_epoch_gone = 0
        self.presence = PresenceModel(
            config.presence.params(),
            config.site.store,
            config.site.sensor,
            sink.send,
            is_fixed=self.resolver.is_fixed,
            people=people,
            consent_of=self._device_consent.get,
            per_visit=mode != "aggregate",
            refine=None if self.occupancy is None else self.occupancy.refine,
            is_live=resolver.knows if isinstance(resolver, DeviceResolver) else None,
            unheard=resolver.scan_gaps.unheard if isinstance(resolver, DeviceResolver) else None,
        )
        self.last_ts_ns = 0

    def feed(self, ts_ns: int, linktype: int, data: bytes) -> None:
        probe = self.decoder.decode(ts_ns, linktype, data)
        if probe is None:
            return
        if isinstance(probe, ConnectedFrame):
            self._connected(probe)
            return
        mac = probe.transmitter
        if self._drop_mac is not None and self._drop_mac(mac):
            # Opted out: dropped before any other processing, not even pseudonymised.
            self.dropped_optout += 1
            return
        try:
            address = self.pseudonyms.pseudonym(mac, ts_ns)
        except LookupError:
            # The frame's epoch is gone (late frame, clock stepped back): its salt was destroyed and
            # borrowing another epoch's would file the device under the wrong pseudonym.
            self.dropped_epoch_gone += 1
            return
        sighting = Sighting(
            ts_ns,
            address,
            self.pseudonyms.epoch,
            probe.randomized,
            probe.rssi_dbm,
            probe.channel,
            probe.seq,
            probe.fingerprint,
            probe.ie_ids,
            probe.ssid != "",
        )
        device = self.resolver.resolve(sighting)
        if self._consent_of_mac is not None:
            token = self._consent_of_mac(mac)
            if token is not None:
                self._device_consent[device] = token
        if self.occupancy is not None:
            self.occupancy.observe(sighting, device)
        self.presence.observe(sighting, device)
        self.last_ts_ns = ts_ns

    def observe(self, sighting: Sighting) -> None:
        """A sighting pseudonymised elsewhere (a replay of cached sightings): the rest of `feed`.

        Consent needs the raw MAC, so consent tokens are not looked up here.
        """
        device = self.resolver.resolve(sighting)
        if self.occupancy is not None:
            self.occupancy.observe(sighting, device)
        self.presence.observe(sighting, device)
        self.last_ts_ns = sighting.ts_ns

    def _connected(self, frame: ConnectedFrame) -> None:
        """A connected station's frame: the same privacy path as a probe request's transmitter."""
        mac = frame.station
        if self._drop_mac is not None and self._drop_mac(mac):
            self.dropped_optout += 1  # opted out: not even pseudonymised
            return
        try:
            address = self.pseudonyms.pseudonym(mac, frame.ts_ns)
        except LookupError:
            self.dropped_epoch_gone += 1
            return
        token = self._consent_of_mac(mac) if self._consent_of_mac is not None else None
        self.connected += 1
        self.last_ts_ns = frame.ts_ns
        self._on_connected(
            ConnectedSighting(
                frame.ts_ns,
                address,
                self.pseudonyms.epoch,
                frame.randomized,
                self._networks[frame.bssid],
                frame.from_station,
                frame.rssi_dbm,
                frame.channel,
                frame.seq,
                frame.kind,
                token,
            )
        )

    def run(self, records: Iterable[CaptureRecord]) -> None:
        feed = self.feed
        for r in records:
            feed(r.ts_ns, r.linktype, r.data)

    def advance(self, now_ns: int) -> None:
        self.presence.advance(now_ns)

    def finish(self) -> None:
        """End of input: close open visits, emit the last interval, close the sink."""
        self.presence.flush()
        self.sink.close()
