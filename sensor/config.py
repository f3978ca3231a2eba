"""The sensor's configuration: one small model per YAML section, mirroring config/sensor.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from footfall.broker import MqttSection
from footfall.configfile import Section, load_model, validate_model
from footfall.events import Name, SensorName
from footfall.mac import MacError, parse_mac
from sensor.estimate.count_model import CountModel, shipped_model
from sensor.estimate.devices import ResolverParams
from sensor.estimate.occupancy import EstimatorParams
from sensor.estimate.scale import ScaleParams
from sensor.estimate.visits import PresenceParams

Rssi = Annotated[int, Field(ge=-120, le=0)]
_P = PresenceParams()


class SiteConfig(Section):
    store: Name = Field("demo", description="store id; sensors of one store share its key seed")
    sensor: SensorName = Field("sensor-1", description="this sensor's id within the store")
    timezone: str = Field("Europe/Paris", description="IANA zone of the store (salt epochs, reports)")

    @field_validator("sensor")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == "control":
            raise ValueError("'control' is reserved for the store's control topic")
        return value


class MqttConfig(MqttSection):
    """The broker, as footfall/broker.py declares it for both sides (the client id is the site's)."""


class PresenceConfig(Section):
    """The visit model (sensor/estimate/visits.py): defaults are the common industry ones."""

    visit_timeout_s: float = Field(
        _P.visit_timeout_s, gt=0, le=86_400, description="close a visit after this long unheard"
    )
    visitor_rssi: Rssi = Field(
        _P.visitor_rssi, description="a visit whose strongest frame reached this (dBm) is inside"
    )
    min_dwell_s: float = Field(
        _P.min_dwell_s, ge=0, le=86_400, description="...and that lasted at least this long"
    )
    interval_s: int = Field(_P.interval_s, ge=10, le=3600, description="count events every this many seconds")
    visitor_factor: float = Field(
        _P.visitor_factor,
        ge=0,
        le=100,
        description="people per visitor visit (phone-carrying share, phones heard): visitors_est; "
        "the default fitted on generated stores",
    )
    passerby_factor: float = Field(
        _P.passerby_factor,
        ge=0,
        le=100,
        description="people per street burst (null street_rssi: per passerby visit): passersby_est; "
        "the default fitted on generated stores",
    )
    street_rssi: Rssi | None = Field(
        _P.street_rssi,
        description="a scan burst whose first frame is weaker (dBm, not moved with the scale) is the street's; "
        "null: passersby_est from the passerby visits",
    )

    @model_validator(mode="after")
    def _interval_divides_hour(self) -> PresenceConfig:
        if 3600 % self.interval_s:
            raise ValueError(
                f"interval_s must divide 3600 so intervals align to the hour, got {self.interval_s}"
            )
        return self

    def params(self) -> PresenceParams:
        return PresenceParams(**self.model_dump())


class PrivacyConfig(Section):
    mode: Literal["aggregate", "pseudonymous", "consent"] = Field(
        "pseudonymous",
        description="aggregate: interval counts only; pseudonymous: plus per-visit events with epoch "
        "pseudonyms; consent: plus stable consent tokens for opted-in devices",
    )
    key_file: Path | None = Field(
        None,
        description="sensor key (footfall-sensor keys provision); replay without one uses a throwaway key",
    )
    pseudonym_bits: int = Field(64, ge=32, le=256, multiple_of=32)
    token_key_file: Path | None = Field(
        None,
        description="the deployment's token key (footfall-collector tokens init), 0600: without it opt-outs "
        "and consents cannot be recognised",
    )
    control_wait_s: float = Field(
        5,
        ge=0,
        le=600,
        description="with a token key, publishing to MQTT waits this long for the retained opt-out list "
        "and refuses to start without it",
    )


_R = ResolverParams()
_E = EstimatorParams()
_S = ScaleParams()


class ScaleConfig(Section):
    """The learned signal scale (sensor/estimate/scale.py): thresholds follow the sensor's own RSSI scale."""

    enabled: bool = Field(_S.enabled, description="false: the dBm thresholds stay as configured")
    quantile: float = Field(_S.quantile, ge=0.05, le=0.95, description="of randomized frames' signal")
    nominal_dbm: float = Field(
        _S.nominal_dbm, ge=-120, le=0, description="the reference on the scale the thresholds were chosen on"
    )
    gain: float = Field(
        _S.gain, ge=0, le=1, description="dB of threshold shift per dB of offset past the dead zone"
    )
    deadzone_db: float = Field(
        _S.deadzone_db, ge=0, le=60, description="reference offsets this small are the crowd: no shift"
    )
    half_life_s: float = Field(_S.half_life_s, gt=0, le=30 * 86_400)
    min_weight: float = Field(_S.min_weight, ge=0, description="frames before the reference is trusted")
    max_up_db: float = Field(_S.max_up_db, ge=0, le=60)
    max_down_db: float = Field(_S.max_down_db, ge=0, le=60)
    drift_db: float = Field(
        _S.drift_db, ge=0, le=60, description="a reference offset this large is reported as a drift"
    )


class ResolverConfig(Section):
    """Device resolution (sensor/estimate/devices.py): linking a phone's randomized addresses into one device."""

    link_window_s: float = Field(
        _R.link_window_s, gt=0, description="a device silent longer takes no new address"
    )
    rssi_tolerance_db: float = Field(_R.rssi_tolerance_db, ge=0, le=60)
    seq_window: int = Field(_R.seq_window, ge=1, le=4095)
    seq_link_s: float = Field(_R.seq_link_s, gt=0)
    rssi_decay_db: float = Field(_R.rssi_decay_db, ge=0, le=20)
    burst_gap_s: float = Field(_R.burst_gap_s, gt=0, le=60)
    fixed_regular_bursts: int = Field(_R.fixed_regular_bursts, ge=2)
    fixed_min_period_s: float = Field(_R.fixed_min_period_s, gt=0)
    fixed_jitter_s: float = Field(_R.fixed_jitter_s, ge=0)
    fixed_min_s: float = Field(
        _R.fixed_min_s, gt=0, description="heard this long without a long gap: fixed/staff"
    )
    fixed_gap_s: float = Field(_R.fixed_gap_s, gt=0)
    resident_rssi_dbm: Rssi | None = Field(
        _R.resident_rssi_dbm,
        description="a fingerprint heard this strong for fixed_min_s has a resident (a staff phone that "
        "randomizes): devices born inside with it are staff; null: off",
    )
    forget_s: float = Field(_R.forget_s, gt=0)
    weak_rssi_dbm: Rssi = Field(
        _R.weak_rssi_dbm, description="a device never heard stronger is on the street"
    )
    weak_link_s: float = Field(
        _R.weak_link_s, gt=0, description="...and takes a new address only this soon after its last frame"
    )
    lone_link_s: float = Field(
        _R.lone_link_s,
        ge=0,
        le=86_400,
        description="a phone alone of its family keeps its device across a silence this long (0: off)",
    )
    family_tolerance_db: float = Field(
        _R.family_tolerance_db,
        ge=0,
        le=60,
        description="a second probe kind joins the only live phone this close",
    )
    max_candidates: int = Field(
        _R.max_candidates, ge=1, le=4096, description="devices examined per new address"
    )


class EstimatorConfig(Section):
    """People estimation (sensor/estimate/occupancy.py); `footfall-sensor calibrate counts` fits these per site."""

    enabled: bool = Field(True, description="false: every address counts as a device (the naive count)")
    inside_rssi_dbm: int = Field(_E.inside_rssi_dbm, ge=-120, le=0)
    holdover_s: float = Field(_E.holdover_s, gt=0, le=86_400)
    site_factor: float = Field(_E.site_factor, ge=0, le=100, description="people per counted device")
    global_weight: float = Field(_E.global_weight, ge=0, le=1)
    exit_margin_db: float = Field(
        _E.exit_margin_db, ge=0, le=100, description="a burst this far below inside_rssi_dbm: the device left"
    )
    interval_low: float = Field(
        _E.interval_low, ge=0, le=1, description="80 % interval of present: low end = present x this"
    )
    interval_high: float = Field(_E.interval_high, ge=1, le=10, description="...high end = present x this")
    interval_floor: float = Field(
        _E.interval_floor, ge=0, le=100, description="...and at least this many people either side"
    )
    count_model: bool = Field(
        True,
        description="blend inside devices with open visitor visits (the shipped count model); false: devices only",
    )
    resolver: ResolverConfig = ResolverConfig()
    scale: ScaleConfig = ScaleConfig()

    def params(self) -> EstimatorParams:
        values = self.model_dump(exclude={"enabled", "resolver", "scale", "count_model"})
        return EstimatorParams(
            **values,
            resolver=ResolverParams(**self.resolver.model_dump()),
            scale=ScaleParams(**self.scale.model_dump()),
            model=shipped_model() if self.count_model else CountModel(),
        )


IFNAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$"
"""A Linux interface name: at most 15 characters, none of them '/' or white space."""

CHANNELS = frozenset([*range(1, 15), *range(32, 69, 4), *range(96, 145, 4), *range(149, 178, 4)])
"""Channels `iw dev X set channel N` accepts: 2.4 GHz 1-14 and the 20 MHz channels of 5 GHz."""


def _bssid(value: object) -> bytes:
    """An access point's address, in any spelling of footfall/mac.py's one grammar."""
    if not isinstance(value, str):
        # YAML reads 11:22:33:44:55:66 as a base-60 number and 001122334455 as an octal one.
        raise ValueError("a BSSID must be a quoted string (YAML reads some unquoted MACs as numbers)")
    try:
        mac = parse_mac(value)
    except MacError as exc:
        raise ValueError(str(exc)) from None
    if mac[0] & 0x01:
        raise ValueError("a group (multicast/broadcast) address is no access point's BSSID")
    return mac


Bssid = Annotated[bytes, BeforeValidator(_bssid)]


class StoreNetwork(Section):
    """One of the store's own Wi-Fi networks: stations exchanging frames with these BSSIDs are connected."""

    ssid: str = Field(min_length=1, max_length=32, description="the network's name (a label here)")
    bssids: tuple[Bssid, ...] = Field(
        max_length=64,
        description="its access points' BSSIDs, quoted ('aa:bb:cc:dd:ee:ff'); `iw dev X scan` lists them",
        json_schema_extra={"doc_type": "list[MAC]"},
    )

    @field_validator("ssid")
    @classmethod
    def _ssid_fits(cls, ssid: str) -> str:
        if len(ssid.encode()) > 32:
            raise ValueError(f"an SSID is at most 32 bytes, this one is {len(ssid.encode())} in UTF-8")
        return ssid

    @field_validator("bssids")
    @classmethod
    def _some(cls, bssids: tuple[bytes, ...]) -> tuple[bytes, ...]:
        if not bssids:
            raise ValueError("list at least one BSSID: the kernel filter matches frames on them")
        return bssids


class CaptureConfig(Section):
    """Live capture (`footfall-sensor run`): the monitor interface and where it listens."""

    interface: str = Field("mon0", pattern=IFNAME, description="monitor-mode interface to capture on")
    phy: str | None = Field(
        None,
        pattern=r"^phy[0-9]{1,3}$",
        description="create `interface` on this wiphy (iface setup); unset: the interface exists already",
    )
    channels: tuple[int, ...] = Field(
        (1,), min_length=1, max_length=64, description="one channel: fixed; several: hop over them"
    )
    dwell_s: float = Field(0.25, ge=0.05, le=3600, description="time on each channel when hopping")
    stall_timeout_s: float = Field(
        60, ge=1, le=3600, description="no frame for this long: check the interface and reopen the capture"
    )
    filter: Literal["management", "probe_requests"] = Field(
        "management", description="what the kernel filter lets through to Python"
    )
    store_networks: tuple[StoreNetwork, ...] = Field(
        (),
        max_length=16,
        description="the store's own networks: their stations' data, null, power-save, authentication and "
        "association frames (headers only) pass the kernel filter too; needs filter: probe_requests",
    )
    recreate: bool = Field(
        True, description="when the interface disappears, set it up again (needs CAP_NET_ADMIN)"
    )
    rcvbuf_bytes: int = Field(
        4 << 20, ge=65_536, le=256 << 20, description="socket receive buffer: absorbs bursts"
    )

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: tuple[int, ...]) -> tuple[int, ...]:
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}: use 1-14 (2.4 GHz) or 20 MHz 5 GHz channels")
        if len(set(channels)) != len(channels):
            raise ValueError(f"channels {list(channels)} repeat a channel")
        return channels

    @field_validator("store_networks")
    @classmethod
    def _store_frames_only(
        cls, networks: tuple[StoreNetwork, ...], info: ValidationInfo
    ) -> tuple[StoreNetwork, ...]:
        kind = info.data.get("filter")
        if networks and kind != "probe_requests":
            raise ValueError(
                f"needs filter: probe_requests, not {kind!r} (management lets every network's management "
                "frames through; probe_requests plus store_networks lets only the store's own pass)"
            )
        seen: set[bytes] = set()
        for bssid in (b for network in networks for b in network.bssids):
            if bssid in seen:
                raise ValueError(f"BSSID {bssid.hex(':')} is listed twice: a BSSID belongs to one network")
            seen.add(bssid)
        return networks

    def store_bssids(self) -> dict[bytes, str]:
        """BSSID -> SSID of every store network (what the kernel filter and the decoder match on)."""
        return {bssid: network.ssid for network in self.store_networks for bssid in network.bssids}


class HomeAssistantConfig(Section):
    """Home Assistant MQTT discovery: people present and visitors today appear as HA sensors."""

    enabled: bool = False
    discovery_prefix: str = Field("homeassistant", pattern=r"^[^#+/][^#+]*[^#+/]$")
    state_prefix: str = Field(
        "footfall-ha",
        pattern=r"^[^#+/][^#+]*[^#+/]$",
        description="HA state goes to <state_prefix>/<store>/<sensor>/state (outside the event topics)",
    )


class HealthConfig(Section):
    """Status events and Prometheus metrics."""

    status_interval_s: float = Field(
        60, ge=5, le=3600, description="retained status event this often (and on change)"
    )
    metrics_port: int = Field(9891, ge=0, le=65535, description="Prometheus metrics port; 0: off")
    metrics_host: str = Field("127.0.0.1", description="address the metrics listen on (local only)")
    home_assistant: HomeAssistantConfig = HomeAssistantConfig()


class SpoolConfig(Section):
    """The store-and-forward spool (sensor/publish/spool.py): every event is on disk before it is sent."""

    path: Path | None = Field(
        None,
        description="SQLite file (e.g. /var/lib/footfall/spool.db); unset: a temporary file, so events "
        "still unsent when the process dies are lost (fine for a replay, not for a sensor)",
    )
    max_bytes: int = Field(
        64 * 1024 * 1024, ge=64 * 1024, le=1 << 40, description="payload bytes kept; beyond, on_full applies"
    )
    max_events: int = Field(
        1_000_000, ge=100, le=100_000_000, description="events kept; beyond, on_full applies"
    )
    max_age_s: float = Field(
        7 * 86_400, gt=0, le=366 * 86_400, description="events older than this are dropped unsent (counted)"
    )
    on_full: Literal["drop_visits_first", "drop_oldest"] = Field(
        "drop_visits_first",
        description="drop_visits_first: drop the oldest visit events, then statuses, counts last; "
        "drop_oldest: drop the oldest events whatever their kind",
    )
    keep_acked_s: float = Field(
        120,
        ge=0,
        le=86_400,
        description="events the broker acknowledged this recently are sent again after a reconnection, "
        "in case a crashed broker lost them (the collector drops duplicates)",
    )
    release: Literal["stored", "broker"] = Field(
        "stored",
        description="stored: an event leaves the spool once the collector says it is stored (end to end, "
        "survives a broker that loses what it acknowledged); broker: on the broker's PUBACK (keep_acked_s "
        "then covers a broker crash; with stored, acknowledged events are kept until stored or max_age_s), "
        "for a collector that sends no store acknowledgements",
    )
    inflight: int = Field(100, ge=1, le=65_535, description="events awaiting the broker's PUBACK at once")
    sync: Literal["full", "normal"] = Field(
        "full",
        description="full: an event survives a power cut once queued; normal: faster, survives a crash "
        "of the process but may lose the last events on a power cut",
    )


class SensorConfig(Section):
    site: SiteConfig = SiteConfig()
    mqtt: MqttConfig = MqttConfig()
    spool: SpoolConfig = SpoolConfig()
    presence: PresenceConfig = PresenceConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    estimator: EstimatorConfig = EstimatorConfig()
    capture: CaptureConfig = CaptureConfig()
    health: HealthConfig = HealthConfig()


def load(path: Path | None) -> SensorConfig:
    """The file's settings, or the embedded defaults when no file is given."""
    if path is None:
        return validate_model(SensorConfig, {})
    return load_model(path, SensorConfig)
