"""The sensor pipeline: capture records → decode → pseudonymise → resolve devices → presence → events.

Everything here is plain computation over what is passed in (records, a salt source, a sink); the same
pipeline serves replay (time from the frames) and live capture (time from a clock via `advance`).
The raw transmitter address exists only between `decode` and `pseudonym` inside `feed`.

With `capture.store_networks`, frames of stations connected to the store's own access points come out of
the decoder too; they take the same privacy path as probe requests (opt-out dropped before anything,
pseudonym at once, consent token looked up on the raw address) and become `ConnectedSighting`s handed
to `on_connected` and to the connected-device tracker (sensor/estimate/connected.py). The tracker's
heartbeat sightings go to the presence model and the people estimate like probe sightings, under the
station's device; a probe it surely links to a station goes there too (never two devices for it). Its
figures join the events here, at the one seam between the presence model and the sink: `connected` on
count and visit events, and its fixed stations (staff tablets on the store network) are fixed for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from footfall.events import CountEvent, Event, VisitEvent
from footfall.times import to_us
from sensor.config import SensorConfig
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import CaptureRecord, ConnectedFrame, ConnectedSighting, Sighting
from sensor.estimate.connected import ConnectedParams, ConnectedTracker
from sensor.estimate.devices import DeviceResolver, ResolverParams
from sensor.estimate.occupancy import OccupancyEstimator
from sensor.estimate.visits import PeopleEstimate, PresenceModel
from sensor.keys.consent import PrivacyFilter
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
    """No observer besides the tracker."""


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
        self.tracker: ConnectedTracker | None = None
        self._heartbeat: dict[str, int] = {}  # device -> its last connected sighting, while its visit is open
        self._store_ssids = frozenset(self._networks.values())
        resolver_params = ResolverParams()
        if resolver is None and config.estimator.enabled:
            resolver_params = config.estimator.params().resolver
        if self._networks:
            self.tracker = ConnectedTracker(
                ConnectedParams(
                    fixed_min_s=resolver_params.fixed_min_s,
                    fixed_gap_s=resolver_params.fixed_gap_s,
                    interval_s=config.presence.interval_s,
                )
            )
        if resolver is None:
            if config.estimator.enabled:
                params = config.estimator.params()
                devices = DeviceResolver(params.resolver)
                resolver = devices
                if people is None:
                    self.occupancy = OccupancyEstimator(params, self._fixed_of(devices.is_fixed))
                    people = self.occupancy
            else:
                resolver = AddressIsDevice()
        self.resolver = resolver
        # The common resolver by its own type: compiled, `resolve` is then a native call, not a
        # method looked up through the protocol on every frame.
        self._devices: DeviceResolver | None = resolver if isinstance(resolver, DeviceResolver) else None
        self.sink = sink
        self._drop_mac = drop_mac
        # The usual opt-out check, a PrivacyFilter's `drop`, called by its type: compiled, a native call
        # where the callable goes through the Python calling convention on every frame.
        owner = getattr(drop_mac, "__self__", None)
        self._privacy = owner if isinstance(owner, PrivacyFilter) and drop_mac == owner.drop else None
        mode = config.privacy.mode
        self._per_visit = mode != "aggregate"  # no visit events, no heartbeats kept for them
        self._consent_of_mac = consent_of_mac if mode == "consent" else None
        self._device_consent: dict[str, str] = {}
        self.dropped_optout = 0
        self.dropped_epoch_gone = 0
        is_live = resolver.knows if isinstance(resolver, DeviceResolver) else None
        tracker = self.tracker
        if tracker is not None and is_live is not None:
            knows = is_live
            is_live = lambda device: knows(device) or tracker.knows(device)  # noqa: E731
        self.presence = PresenceModel(
            config.presence.params(),
            config.site.store,
            config.site.sensor,
            sink.send if tracker is None else self._send_connected,
            is_fixed=self._fixed_of(self.resolver.is_fixed),
            people=people,
            consent_of=self._device_consent.get,
            per_visit=mode != "aggregate",
            refine=None if self.occupancy is None else self.occupancy.refine,
            is_live=is_live,
            unheard=resolver.scan_gaps.unheard if isinstance(resolver, DeviceResolver) else None,
        )
        self.last_ts_ns = 0

    def _fixed_of(self, resolver_fixed: Callable[[str], bool]) -> Callable[[str], bool]:
        tracker = self.tracker
        if tracker is None:
            return resolver_fixed
        return lambda device: resolver_fixed(device) or tracker.is_fixed(device)

    def _send_connected(self, event: Event) -> None:
        """The presence model's events, with the tracker's `connected` figures (only with store networks)."""
        tracker = self.tracker
        assert tracker is not None
        if isinstance(event, CountEvent):
            start_ns = to_us(event.start) * 1000
            event = event.model_copy(update={"connected": tracker.connected_in(start_ns)})
        elif isinstance(event, VisitEvent):
            # A visit closes when its timeout passes, which may be at a frame of another day (replay), so
            # the station's last heartbeat is kept here, by device, until its visit's event is made.
            start_ns, end_ns = to_us(event.start) * 1000, (to_us(event.end) + 1) * 1000
            last = self._heartbeat.get(event.device)
            if last is not None and last < end_ns:
                del self._heartbeat[event.device]
            event = event.model_copy(update={"connected": last is not None and last >= start_ns})
        self.sink.send(event)

    def feed(self, ts_ns: int, linktype: int, data: bytes) -> None:
        probe = self.decoder.decode(ts_ns, linktype, data)
        if probe is None:
            return
        if isinstance(probe, ConnectedFrame):
            self._connected(probe)
            return
        mac = probe.transmitter
        privacy = self._privacy
        if privacy is not None:
            if privacy.drop(mac):
                self.dropped_optout += 1  # opted out: dropped before any other processing
                return
        elif self._drop_mac is not None and self._drop_mac(mac):
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
        devices = self._devices
        device = devices.resolve(sighting) if devices is not None else self.resolver.resolve(sighting)
        if self.tracker is not None:
            device = self.tracker.probe(sighting, device, probe.ssid in self._store_ssids)
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
        connected = ConnectedSighting(
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
        self._on_connected(connected)
        heard = self.tracker.connected(connected) if self.tracker is not None else None
        if heard is None:
            return
        sighting, device = heard
        if token is not None:
            # The MAC the captive portal saw: the station's own, recognised while it stays connected.
            self._device_consent[device] = token
        if self.occupancy is not None:
            self.occupancy.observe(sighting, device)
        self.presence.observe(sighting, device)
        if self._per_visit:  # after observe, which may first close the device's last visit
            self._heartbeat[device] = sighting.ts_ns

    def run(self, records: Iterable[CaptureRecord]) -> None:
        for r in records:
            # `self.feed`, not a bound method kept in a local: compiled, this is a native call, where
            # the bound method goes through the Python calling convention (~2 k instructions a frame).
            self.feed(r.ts_ns, r.linktype, r.data)

    def advance(self, now_ns: int) -> None:
        self.presence.advance(now_ns)

    def finish(self) -> None:
        """End of input: close open visits, emit the last interval, close the sink."""
        self.presence.flush()
        self.sink.close()
